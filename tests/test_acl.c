/* test_acl.c - access control: a worker, a client and the `wf` command running as a Redis ACL user
 * restricted to its own key prefix, with the minimal command set docs/security.md documents (the
 * same list, WF_ACL_COMMANDS below, so the doc and the test cannot drift apart unnoticed). Every
 * run completes, Redis logs no denied command, and the same user cannot touch another app's
 * prefix: that is a NOPERM error with a clear message. The worker reads its password from a file
 * (`?password_file=`), which never shows in its log.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "script_call.h"
#include "wf_internal.h"

/* The minimal ACL of docs/security.md. Found by dropping one command at a time and rerunning
 * this test (WF_TEST_ACL); the test goes through every path that needs one: claims, retries,
 * steps, dead letters (xrange, lpush, ltrim), restart with cleared steps (del, persist), the
 * library loaded again after FUNCTION FLUSH (function|load), `wf status` and `wf list`. */
#define WF_ACL_COMMANDS                                                                            \
    "-@all +ping +time +set +hset +hsetnx +hget +hmget +hgetall +hkeys +hexists +hdel +hincrby "   \
    "+zadd "                                                                                       \
    "+zrem +zscore +zrange +zrangebyscore +zrevrangebyscore +zremrangebyscore +xadd +xack +xdel "  \
    "+xlen +xrange +xrevrange +xreadgroup +xautoclaim +xpending +xtrim +xinfo|groups "             \
    "+xgroup|create +lpush +ltrim +type +exists "                                                  \
    "+del "                                                                                        \
    "+pexpire +persist +fcall +function|load"

#define PASSWORD "s3cret-Pw-app1"

static wf_test_redis srv;
static redisContext *rc;
static pid_t worker;
static char dir[256], log_path[300], pw_path[300];

static void acl(const char *user, const char *prefix)
{
    redisReply *r = wf_test_command(rc, "ACL SETUSER %s reset on >%s ~%s:* resetchannels %s", user,
                                    PASSWORD, prefix, "-@all");
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "%s", r ? r->str : "no reply");
    freeReplyObject(r);
    /* One rule per call: ACL SETUSER takes the rules as separate arguments. */
    /* $WF_TEST_ACL replaces the list: how the minimal set was found (drop one, rerun). */
    char rules[1024];
    snprintf(rules, sizeof rules, "%s",
             getenv("WF_TEST_ACL") ? getenv("WF_TEST_ACL") : WF_ACL_COMMANDS);
    for (char *save = NULL, *t = strtok_r(rules, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        r = wf_test_command(rc, "ACL SETUSER %s %s", user, t);
        cr_assert(r && r->type == REDIS_REPLY_STATUS, "rule %s: %s", t, r ? r->str : "no reply");
        freeReplyObject(r);
    }
}

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0);
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    acl("app1", "app1");
    acl("app2", "app2");
    wf_test_temp_dir(dir, sizeof dir, "acl");
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    snprintf(pw_path, sizeof pw_path, "%s/app1.pw", dir);
    FILE *f = fopen(pw_path, "w");
    cr_assert_not_null(f);
    fputs(PASSWORD "\n", f);
    fclose(f);
    worker = 0;
}

static void teardown(void)
{
    int status = 0;
    if (worker > 0) status = wf_test_kill(worker, SIGTERM, 30000);
    redisFree(rc);
    wf_test_redis_stop(&srv);
    wf_test_remove_tree(dir);
    cr_assert(worker <= 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
              "worker did not drain and exit 0 (status 0x%x)", status);
}

TestSuite(acl, .init = setup, .fini = teardown, .timeout = 60);

static int completed(void *arg)
{
    char *st = wf_test_cmd_str(rc, "HGET app1:{echo}:run:%s state", (const char *)arg);
    int ok = st && !strcmp(st, "completed");
    free(st);
    return ok;
}

/* ACL LOG as one string (empty when nothing was denied). */
static char *acl_log(void)
{
    redisReply *r = wf_test_command(rc, "ACL LOG");
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        for (size_t k = 0; k + 1 < e->elements; k += 2)
            if (e->element[k + 1]->type == REDIS_REPLY_STRING && n + 200 < cap)
                n += (size_t)snprintf(out + n, cap - n, "%s=%s ", e->element[k]->str,
                                      e->element[k + 1]->str);
        if (n + 2 < cap) out[n++] = '\n';
    }
    if (r) freeReplyObject(r);
    return out;
}

Test(acl, a_prefix_restricted_user_runs_everything_and_cannot_touch_another_prefix)
{
    char wurl[600], curl[200], other[200];
    snprintf(wurl, sizeof wurl, "redis://app1@127.0.0.1:%d?prefix=app1&password_file=%s", srv.port,
             pw_path);
    snprintf(curl, sizeof curl, "redis://app1:%s@127.0.0.1:%d?prefix=app1", PASSWORD, srv.port);
    snprintf(other, sizeof other, "redis://app1:%s@127.0.0.1:%d?prefix=app2", PASSWORD, srv.port);

    /* Every workflow the test starts: the worker registers them one HSET at a time. */
    const char *wfs[] = {"echo", "flaky", "stepper", NULL};
    worker = wf_test_worker_start(
        &(wf_test_worker){.redis_url = wurl,
                          .extra = (const char *[]){"--lease-ms", "1000", NULL},
                          .log_path = log_path,
                          .rc = rc,
                          .workflows = wfs,
                          .prefix = "app1"});

    wf_error err = {0};
    wf_client *cl = wf_test_client(curl);
    char ids[3][WF__ID_MAX];
    for (int i = 0; i < 3; i++) {
        wf_run *r = wf_run_workflow(cl, wfs[i], "\x80", 1, &err);
        cr_assert_not_null(r, "%s: %s", wfs[i], err.message);
        snprintf(ids[i], sizeof ids[i], "%s", wf_run_id(r));
        wf_run_free(r);
    }
    cr_assert(wf_test_wait(completed, ids[0], 10000), "echo run did not complete");
    /* flaky fails once (retry via the delayed zset) and stepper records steps. */
    for (int i = 1; i < 3; i++) {
        char key[300];
        snprintf(key, sizeof key, "app1:{%s}:run:%s", wfs[i], ids[i]);
        char *st = NULL;
        for (int t = 0; t < 500; t++) {
            free(st);
            st = wf_test_cmd_str(rc, "HGET %s state", key);
            if (st && !strcmp(st, "completed")) break;
            usleep(10000);
        }
        cr_assert_str_eq(st, "completed", "%s", ids[i]);
        free(st);
    }
    wf_run *r = wf_get_workflow_run(cl, ids[0], &err);
    cr_assert_not_null(r, "%s", err.message);
    wf_status st;
    cr_assert_eq(wf_run_status(r, &st, &err), WF_OK, "%s", err.message);
    wf_status_clear(&st);
    cr_assert_eq(wf_run_stop(r, &err), WF_ERR_FINAL, "%s", err.message);
    wf_run_free(r);
    /* Restart with cleared steps (restart.lua: DEL, PERSIST), after Redis lost the library
     * (loaded again: FUNCTION LOAD); a hand-written bad entry (claim.lua's dead letters: XRANGE,
     * LPUSH, LTRIM). */
    redisReply *fl = wf_test_command(rc, "FUNCTION FLUSH");
    freeReplyObject(fl);
    r = wf_get_workflow_run(cl, ids[2], &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_eq(wf_run_restart(r, 1, &err), WF_OK, "%s", err.message);
    wf_run_free(r);
    char *junk = wf_test_cmd_str(rc, "XADD app1:{echo}:queue * r junk");
    free(junk);
    for (int t = 0; t < 500 && wf_test_cmd_int(rc, "LLEN app1:{echo}:dead") != 1; t++)
        usleep(10000);
    cr_assert_eq(wf_test_cmd_int(rc, "LLEN app1:{echo}:dead"), 1, "bad entry dead-lettered");
    char key2[300];
    snprintf(key2, sizeof key2, "app1:{stepper}:run:%s", ids[2]);
    char *st2 = NULL;
    for (int t = 0; t < 500; t++) {
        free(st2);
        st2 = wf_test_cmd_str(rc, "HGET %s attempt", key2);
        char *s3 = wf_test_cmd_str(rc, "HGET %s state", key2);
        int done = s3 && st2 && !strcmp(s3, "completed") && !strcmp(st2, "2");
        free(s3);
        if (done) break;
        usleep(10000);
    }
    cr_assert_str_eq(st2, "2", "restarted run completed again");
    free(st2);
    char **list;
    size_t n;
    cr_assert_eq(wf_list_runs(cl, NULL, &list, &n, &err), WF_OK, "%s", err.message);
    wf_list_free(list, n);

    /* The command line as the same user. */
    char *wf = wf_test_path("wf");
    const char *cli[] = {wf, "--redis", curl, "status", ids[2], NULL};
    char *out = NULL;
    cr_assert_eq(wf_test_run(cli, NULL, NULL, &out, 10000), 0, "wf status: %s", out);
    free(out);
    const char *cli2[] = {wf, "--redis", curl, "list", NULL};
    cr_assert_eq(wf_test_run(cli2, NULL, NULL, &out, 10000), 0, "wf list: %s", out);
    free(out);
    free(wf);

    char *denied = acl_log();
    cr_assert_str_empty(denied, "wf needed commands outside the documented ACL:\n%s", denied);
    free(denied);
    wf_client_free(cl);

    /* Another app's prefix: refused by Redis, with a message that says so. */
    wf_client *bad = wf_client_connect(other, &err);
    cr_assert_null(bad, "app1 must not reach prefix app2");
    cr_assert_eq(err.code, WF_ERR_REDIS, "%s", err.message);
    cr_assert(strstr(err.message, "NOPERM"), "%s", err.message);
    redisContext *direct = redisConnect("127.0.0.1", srv.port);
    redisReply *a = wf_test_command(direct, "AUTH app1 %s", PASSWORD);
    freeReplyObject(a);
    a = wf_test_command(direct, "HGETALL app2:workflows");
    cr_assert(a && a->type == REDIS_REPLY_ERROR && strstr(a->str, "NOPERM"), "app2 key readable");
    freeReplyObject(a);
    redisFree(direct);

    char *log = wf_test_slurp(log_path);
    cr_assert_null(strstr(log, PASSWORD), "the password appeared in the worker's log");
    free(log);
}

/* docs/security.md: when tenants share a Redis, their users may not load functions and an
 * administrator loads wf's library. Without it loaded, connecting says what is missing; once it
 * is, the same user starts runs. */
Test(acl, a_user_that_may_not_load_functions_works_once_an_administrator_loaded_them)
{
    redisReply *r = wf_test_command(rc, "ACL SETUSER app1 -function|load");
    freeReplyObject(r);
    r = wf_test_command(rc, "FUNCTION FLUSH");
    freeReplyObject(r);
    wf_test_cmd_int(rc, "HSET app1:workflows echo {}");
    char curl[200];
    snprintf(curl, sizeof curl, "redis://app1:%s@127.0.0.1:%d?prefix=app1", PASSWORD, srv.port);
    wf_error err = {0};
    wf_client *cl = wf_client_connect(curl, &err);
    cr_assert_null(cl, "no library, and no right to load it");
    cr_assert(strstr(err.message, "+function|load") && strstr(err.message, "NOPERM"), "%s",
              err.message);

    cr_assert_eq(wf_test_functions_load(rc, &err), WF_OK, "the administrator: %s", err.message);
    cl = wf_client_connect(curl, &err);
    cr_assert_not_null(cl, "%s", err.message);
    wf_run *run = wf_run_workflow(cl, "echo", "\x80", 1, &err);
    cr_assert_not_null(run, "%s", err.message);
    wf_run_free(run);
    wf_client_free(cl);
}
