/* test_dead_letters.c - what an operator reads about a workflow beyond its runs: the dead letters
 * (queue entries a claim moved aside to P:{W}:dead, wf_dead_letters) and which workflows each
 * live worker serves (wf_worker_info.workflows, from the presence record). A real wf-worker on
 * the test workflows (worker_env.h) claims bad entries written by hand. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_env.h"

TestSuite(dead, .init = worker_setup, .fini = worker_teardown, .timeout = 120);

/* XADDs to echo's queue an entry with field `field` = the run record of `id` (NULL: `raw`). */
static void add_entry(const char *field, const char *id, const char *raw)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (id) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "v", 1);
        msgpack_pack_int(&pk, 1);
        msgpack_pack_str_with_body(&pk, "id", 2);
        msgpack_pack_str_with_body(&pk, id, strlen(id));
        msgpack_pack_str_with_body(&pk, "a", 1);
        msgpack_pack_int(&pk, 1);
    } else {
        msgpack_sbuffer_write(&sb, raw, strlen(raw));
    }
    redisReply *r = wf_test_command(rc, "XADD wf:{echo}:queue * %s %b", field, sb.data, sb.size);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD: %s", r ? r->str : "no reply");
    freeReplyObject(r);
    msgpack_sbuffer_destroy(&sb);
}

static int dead_count_is(void *arg)
{
    return wf_test_cmd_int(rc, "LLEN wf:{echo}:dead") == *(long long *)arg;
}

Test(dead, letters_newest_first_with_their_reasons)
{
    worker_pid = start_worker(NULL);
    wf_error err = {0};
    wf_dead_letter *d = NULL;
    size_t n = 0;
    cr_assert_eq(wf_dead_letters(cl, "echo", 0, &d, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 0);
    cr_assert_null(d);

    add_entry("x", NULL, "no record here");
    add_entry("r", NULL, "not msgpack");
    add_entry("r", "slow:01ABC", NULL); /* a record of another workflow: bytes above 0x7f */
    freeReplyObject(wf_test_command(rc, "SET wf:{echo}:run:echo:clobbered x"));
    add_entry("r", "echo:clobbered", NULL); /* its run key holds a string, not a hash */
    long long want = 4;
    cr_assert(wf_test_wait(dead_count_is, &want, 10000), "4 dead letters, got %lld",
              wf_test_cmd_int(rc, "LLEN wf:{echo}:dead"));

    cr_assert_eq(wf_dead_letters(cl, "echo", 0, &d, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 4);
    /* One claim handles a batch's runs before its undecodable entries, so the order among
     * entries read together is not the XADD order: look each up by its reason. */
    int named = 0, foreign = 0, garbage = 0, no_r = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_not_null(d[i].entry);
        cr_assert_not_null(d[i].worker);
        cr_assert_gt(d[i].at_ms, 1700000000000LL);
        if (i > 0) cr_assert_geq(d[i - 1].at_ms, d[i].at_ms, "newest first");
        if (strstr(d[i].reason, "holds a string, not a hash")) {
            cr_assert_str_eq(d[i].run_id, "echo:clobbered");
            named++;
            continue;
        }
        cr_assert_null(d[i].run_id, "%s", d[i].reason);
        foreign += strstr(d[i].reason, "slow:01ABC does not belong to workflow echo") != NULL;
        no_r += strstr(d[i].reason, "no field 'r'") != NULL;
        garbage += !strstr(d[i].reason, "belong") && !strstr(d[i].reason, "no field 'r'");
    }
    cr_assert(named == 1 && foreign == 1 && no_r == 1 && garbage == 1,
              "named %d foreign %d no_r %d garbage %d", named, foreign, no_r, garbage);
    char newest[64];
    snprintf(newest, sizeof newest, "%s", d[0].entry);
    wf_dead_letters_free(d, n);

    cr_assert_eq(wf_dead_letters(cl, "echo", 2, &d, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(d[0].entry, newest);
    wf_dead_letters_free(d, n);
    /* An item that is not wf's JSON is shown as it is. */
    cr_assert_eq(wf_test_cmd_int(rc, "LPUSH wf:{echo}:dead hand-written"), 5);
    cr_assert_eq(wf_dead_letters(cl, "echo", 1, &d, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(d[0].reason, "hand-written");
    cr_assert_null(d[0].entry);
    wf_dead_letters_free(d, n);
    cr_assert_eq(wf_dead_letters(cl, "no good", 0, &d, &n, &err), WF_ERR_BAD_NAME);
    cr_assert_eq(wf_dead_letters(NULL, "echo", 0, &d, &n, &err), WF_ERR_INVALID);
    wf_dead_letters_free(NULL, 0);
}

static int a_worker_is_present(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "HLEN wf:workers") > 0;
}

Test(dead, live_workers_name_their_workflows)
{
    worker_pid = start_worker(NULL);
    cr_assert(wf_test_wait(a_worker_is_present, NULL, 15000), "the worker's presence record");
    wf_error err = {0};
    wf_worker_info *w = NULL;
    size_t n = 0;
    cr_assert_eq(wf_list_workers(cl, 0, &w, &n, &err), WF_OK, "%s", err.message);
    cr_assert_geq(n, 1);
    int echo = 0, slow = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < w[i].nworkflows; k++) {
            echo |= strcmp(w[i].workflows[k], "echo") == 0;
            slow |= strcmp(w[i].workflows[k], "slow") == 0;
        }
    cr_assert(echo && slow, "a live worker serves echo and slow");
    wf_workers_free(w, n);
}
