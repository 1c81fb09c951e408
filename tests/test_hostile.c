/* test_hostile.c - bad input, exhaustively: ids and names built to break key names (braces, globs,
 * colons, newlines, NULs, 10 KB), payloads at and over the limit and nested too deep, stream
 * entries and keys written by hand (not a record, a clobbered run hash, a clobbered fixed key),
 * unknown workflows, and Redis refusing work (OOM, a read-only replica, WRONGTYPE). Each must give
 * a clear error, touch nothing it should not, and leave the worker running and able to go on.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "wf_internal.h"

static wf_test_redis srv;
static redisContext *rc;
static wf_client *cl;
static pid_t worker;
static char dir[256], log_path[300];

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0);
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    cl = wf_test_client(srv.url);
    wf_test_temp_dir(dir, sizeof dir, "hostile");
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    worker = 0;
}

static void teardown(void)
{
    const char *why = wf_test_worker_stop(worker, log_path);
    wf_client_free(cl);
    redisFree(rc);
    wf_test_redis_stop(&srv);
    wf_test_remove_tree(dir);
    cr_assert_null(why, "%s", why);
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------------------------- */

static int announced(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "HLEN wf:workers") >= 1;
}

static void start_worker(void)
{
    const char *names[] = {"echo", NULL};
    const char *extra[] = {"--processes", "1", "--lease-ms", "1000", NULL};
    worker = wf_test_worker_start(&(wf_test_worker){
        .redis_url = srv.url, .extra = extra, .log_path = log_path, .rc = rc, .workflows = names});
    /* Announced in wf:workers too (written from the worker's tick, so possibly later): tests
     * compare DBSIZE before and after, and the worker's own keys must be in. */
    cr_assert(wf_test_wait(announced, NULL, 10000), "worker never announced itself");
}

/* The single worker process under the supervisor (its pid, to show it survived). */
static pid_t worker_child(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", worker, worker);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) != 1) pid = 0;
    if (f) fclose(f);
    return (pid_t)pid;
}

static long long dbsize(void)
{
    return wf_test_cmd_int(rc, "DBSIZE");
}

/* Every key, newline-separated in KEYS order (malloc'd): to name what changed when DBSIZE did. */
static char *key_list(void)
{
    redisReply *k = wf_test_command(rc, "KEYS *");
    size_t n = 1;
    for (size_t i = 0; k && k->type == REDIS_REPLY_ARRAY && i < k->elements; i++)
        n += k->element[i]->len + 1;
    char *out = calloc(1, n), *p = out;
    for (size_t i = 0; out && k && k->type == REDIS_REPLY_ARRAY && i < k->elements; i++)
        p += sprintf(p, "%s\n", k->element[i]->str);
    if (k) freeReplyObject(k);
    return out;
}

static wf_run *start_echo(const char *suffix, wf_error *err)
{
    wf_run_options o = {.id = suffix};
    return wf_run_workflow_ex(cl, "echo", "\x01", 1, &o, err);
}

typedef struct state_wait {
    const char *key;
    const char *state;
} state_wait;

static int has_state(void *arg)
{
    state_wait *s = arg;
    char *st = wf_test_cmd_str(rc, "HGET %s state", s->key);
    int ok = st && !strcmp(st, s->state);
    free(st);
    return ok;
}

static void wait_state(const char *id, const char *state, int timeout_ms)
{
    char key[300];
    snprintf(key, sizeof key, "wf:{echo}:run:%s", id);
    state_wait s = {key, state};
    if (!wf_test_wait(has_state, &s, timeout_ms)) {
        char *st = wf_test_cmd_str(rc, "HGET %s state", key);
        char *log = wf_test_slurp(log_path);
        cr_assert_fail("run %s is %s, not %s\nworker log:\n%s", id, st ? st : "(gone)", state, log);
    }
}

/* ---- Names and ids --------------------------------------------------------------------------- */

Test(hostile, names_and_ids_that_could_break_keys_are_refused_before_redis)
{
    /* No worker: its set-up writes keys of its own (consumer groups, presence), which would race
     * the count below. echo registered by hand, so only the input is what is refused. */
    cr_assert_eq(wf_test_cmd_int(rc, "HSET wf:workflows echo {}"), 1);
    long long before = dbsize();
    char *keys_before = key_list();
    char big[10 * 1024 + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *names[] = {"e{c}ho", "{echo}", "*",  "ech*", "a:b", "a\nb", "a b",
                           "",       ".x",     "-x", "a\rb", "é",   big};
    wf_error err = {0};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        wf_run *r = wf_run_workflow(cl, names[i], NULL, 0, &err);
        cr_assert_null(r, "name #%zu accepted", i);
        cr_assert_eq(err.code, WF_ERR_BAD_NAME, "name #%zu: %s", i, err.message);
        cr_assert_eq(wf_send_event(cl, names[i], NULL, 0, &err), WF_ERR_BAD_NAME);
    }
    const char *ids[] = {"echo",     "echo:",    ":x",       "echo:{x}", "echo:a}b",  "echo:*",
                         "echo:a:b", "echo:a\n", "echo:a b", "ec{ho:x",  "echo:\x01", big};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        cr_assert_null(wf_get_workflow_run(cl, ids[i], &err), "id #%zu accepted", i);
        cr_assert_eq(err.code, WF_ERR_BAD_ID, "id #%zu: %s", i, err.message);
    }
    const char *suffixes[] = {"{x}", "a*", "a:b", "a\nb", "", big};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        cr_assert_null(start_echo(suffixes[i], &err), "suffix #%zu accepted", i);
        cr_assert(err.code == WF_ERR_BAD_ID || err.code == WF_ERR_INVALID, "suffix #%zu: %d %s", i,
                  err.code, err.message);
    }
    /* A NUL inside an id that arrives with a length (a stream record): refused, not truncated. */
    static const char rec[] = "\x83\xa1v\x01\xa2id\xa8"
                              "echo:a\0b"
                              "\xa1"
                              "a\x01";
    char id[WF__ID_MAX];
    cr_assert_eq(wf__record_decode(rec, sizeof rec - 1, id, NULL, &err), WF_ERR_BAD_PAYLOAD);
    /* A forged attempt of 2^63 or more (uint 64) clamps to the maximum; it once wrapped through
     * int64 into 1610612737 (found by fuzz_record). */
    static const char huge[] = "\x83\xa1v\x01\xa2id\xa6"
                               "echo:a"
                               "\xa1"
                               "a\xcf\xa1\x76\x01\xa2\x60\x00\x00\x01";
    int attempt = 0;
    cr_assert_eq(wf__record_decode(huge, sizeof huge - 1, id, &attempt, &err), WF_OK, "%s",
                 err.message);
    cr_assert_eq(attempt, 1000000, "attempt %d", attempt);
    long long after = dbsize();
    char *keys_after = after != before ? key_list() : NULL;
    cr_assert_eq(after, before, "refused input wrote to Redis: %lld keys, was %lld:\n%s\nwas:\n%s",
                 after, before, keys_after, keys_before);
    free(keys_before);
}

/* ---- Payloads -------------------------------------------------------------------------------- */

/* A msgpack str of exactly `total` bytes (header included). */
static size_t str_of(char *buf, size_t total)
{
    size_t body = total - 5; /* str 32 header */
    buf[0] = (char)0xdb;
    buf[1] = (char)(body >> 24);
    buf[2] = (char)(body >> 16);
    buf[3] = (char)(body >> 8);
    buf[4] = (char)body;
    memset(buf + 5, 'x', body);
    return total;
}

Test(hostile, payloads_at_and_over_the_limit_and_nested_too_deep)
{
    char url[200];
    snprintf(url, sizeof url, "%s?max_payload=1000", srv.url);
    wf_client *small = wf_test_client(url);
    wf_error err = {0};
    wf_run_options o = {.allow_unregistered = 1};
    char buf[2048];
    wf_run *r = wf_run_workflow_ex(small, "echo", buf, str_of(buf, 1000), &o, &err);
    cr_assert_not_null(r, "exactly max_payload is allowed: %s", err.message);
    wf_run_free(r);
    cr_assert_null(wf_run_workflow_ex(small, "echo", buf, str_of(buf, 1001), &o, &err));
    cr_assert_eq(err.code, WF_ERR_TOO_LARGE, "%s", err.message);
    cr_assert(strstr(err.message, "1001") && strstr(err.message, "1000"), "%s", err.message);
    wf_client_free(small);

    /* 33 nested arrays: over the depth every decoder of wf supports. */
    char deep[64];
    memset(deep, 0x91, 33);
    deep[33] = (char)0xc0;
    cr_assert_null(wf_run_workflow_ex(cl, "echo", deep, 34, &o, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_PAYLOAD, "%s", err.message);
    cr_assert(strstr(err.message, "deeper"), "%s", err.message);
    /* Five bytes that claim four billion array items must not make anything allocate. */
    cr_assert_null(wf_run_workflow_ex(cl, "echo", "\xdd\xff\xff\xff\xff", 5, &o, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_PAYLOAD, "%s", err.message);
    /* Two values, a truncated one, the byte msgpack never uses. */
    cr_assert_null(wf_run_workflow_ex(cl, "echo", "\x01\x02", 2, &o, &err));
    cr_assert_null(wf_run_workflow_ex(cl, "echo",
                                      "\xa5"
                                      "ab",
                                      3, &o, &err));
    cr_assert_null(wf_run_workflow_ex(cl, "echo", "\xc1", 1, &o, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_PAYLOAD);
}

Test(hostile, unknown_workflow_is_refused_unless_allowed)
{
    wf_error err = {0};
    cr_assert_null(wf_run_workflow(cl, "nosuch", NULL, 0, &err));
    cr_assert_eq(err.code, WF_ERR_UNKNOWN_WORKFLOW);
    cr_assert(strstr(err.message, "nosuch"), "%s", err.message);
    wf_run_options o = {.allow_unregistered = 1};
    wf_run *r = wf_run_workflow_ex(cl, "nosuch", NULL, 0, &o, &err);
    cr_assert_not_null(r, "%s", err.message);
    wf_run_free(r);
}

/* ---- Stream entries and keys written by hand ------------------------------------------------- */

Test(hostile, bad_stream_entries_go_to_the_dead_list_and_the_queue_keeps_moving)
{
    start_worker();
    wf_error err = {0};
    wf_run *a = start_echo("before", &err);
    cr_assert_not_null(a, "%s", err.message);
    char *e1 = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * r not-a-record");
    char *e2 = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * x 1");
    char *e3 = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * r %b",
                               "\x83\xa1v\x01\xa2id\xa8slow:abc"
                               "\xa1"
                               "a\x01",
                               (size_t)19);
    cr_assert(e1 && e2 && e3);
    wf_run *b = start_echo("after", &err);
    cr_assert_not_null(b, "%s", err.message);
    wait_state("echo:before", "completed", 10000);
    wait_state("echo:after", "completed", 10000);
    cr_assert_eq(wf_test_cmd_int(rc, "LLEN wf:{echo}:dead"), 3);
    redisReply *l = wf_test_command(rc, "LRANGE wf:{echo}:dead 0 -1");
    cr_assert_eq(l->elements, 3);
    int not_msgpack = 0, no_r = 0, other_wf = 0;
    for (size_t i = 0; i < l->elements; i++) {
        const char *s = l->element[i]->str;
        cr_assert(strstr(s, "\"reason\""), "%s", s);
        not_msgpack += strstr(s, e1) && strstr(s, "msgpack") != NULL;
        no_r += strstr(s, e2) && strstr(s, "no field 'r'") != NULL;
        other_wf += strstr(s, e3) && strstr(s, "does not belong to workflow echo") != NULL;
    }
    freeReplyObject(l);
    cr_assert(not_msgpack && no_r && other_wf, "dead letters name entry and reason (%d %d %d)",
              not_msgpack, no_r, other_wf);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
    free(e1);
    free(e2);
    free(e3);
    wf_run_free(a);
    wf_run_free(b);
}

Test(hostile, a_lean_entry_whose_input_is_not_one_msgpack_value_is_dead_lettered_not_run)
{
    /* A forged lean entry (fields c and p, lua/enqueue.lua) with a valid id but an input the
     * handler's thread could not decode: two values, and an array claiming 2^32-1 items that
     * msgpack-c would allocate for (found by fuzz/fuzz_claim_entry.c). */
    start_worker();
    wf_error err = {0};
    char *e1 =
        wf_test_cmd_str(rc, "XADD wf:{echo}:queue * c forged-two p %b", "\x01\x02", (size_t)2);
    char *e2 = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * c forged-huge p %b",
                               "\xdd\xff\xff\xff\xff", (size_t)5);
    cr_assert(e1 && e2);
    wf_run *b = start_echo("after", &err);
    cr_assert_not_null(b, "%s", err.message);
    wait_state("echo:after", "completed", 10000);
    cr_assert_eq(wf_test_cmd_int(rc, "LLEN wf:{echo}:dead"), 2);
    redisReply *l = wf_test_command(rc, "LRANGE wf:{echo}:dead 0 -1");
    cr_assert_eq(l->elements, 2);
    for (size_t i = 0; i < l->elements; i++) {
        const char *s = l->element[i]->str;
        cr_assert(strstr(s, e1) || strstr(s, e2), "%s", s);
        cr_assert(strstr(s, "input 'p' is not one msgpack value"), "%s", s);
    }
    freeReplyObject(l);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{echo}:run:echo:forged-two"), 0, "never claimed");
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{echo}:run:echo:forged-huge"), 0, "never claimed");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
    free(e1);
    free(e2);
    wf_run_free(b);
}

Test(hostile, claim_dead_letters_a_clobbered_run_hash_and_claims_the_rest_of_the_batch)
{
    /* Three runs queued before any worker exists, so one XREADGROUP reads them as one batch. */
    wf_error err = {0};
    wf_run_options o = {.allow_unregistered = 1};
    for (int i = 1; i <= 3; i++) {
        char sfx[8];
        snprintf(sfx, sizeof sfx, "r%d", i);
        o.id = sfx;
        wf_run *r = wf_run_workflow_ex(cl, "echo", "\x01", 1, &o, &err);
        cr_assert_not_null(r, "%s", err.message);
        wf_run_free(r);
    }
    cr_assert_eq(wf_test_cmd_int(rc, "DEL wf:{echo}:run:echo:r2"), 1);
    char *ok = wf_test_cmd_str(rc, "SET wf:{echo}:run:echo:r2 clobbered");
    free(ok);
    /* Reading it is a clear error (at reattach or at the first status). */
    wf_run *r2 = wf_get_workflow_run(cl, "echo:r2", &err);
    if (r2) {
        wf_status st;
        cr_assert_neq(wf_run_status(r2, &st, &err), WF_OK);
        wf_run_free(r2);
    }
    cr_assert_eq(err.code, WF_ERR_REDIS, "%s", err.message);
    cr_assert(strstr(err.message, "wrong type") || strstr(err.message, "WRONGTYPE"), "%s",
              err.message);
    start_worker();
    /* Well inside the 1 s lease: the batch was not aborted and left for XAUTOCLAIM. */
    wait_state("echo:r1", "completed", 800);
    wait_state("echo:r3", "completed", 800);
    char *dead = wf_test_cmd_str(rc, "LINDEX wf:{echo}:dead 0");
    cr_assert_not_null(dead, "the clobbered run's entry went to the dead list");
    cr_assert(strstr(dead, "WRONGTYPE") && strstr(dead, "holds a string"), "%s", dead);
    free(dead);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
}

/* An entry and its run written the way enqueue.lua would, bypassing its refusal. */
static void forge_queued(const char *suffix)
{
    char id[64], rec[64];
    int idl = snprintf(id, sizeof id, "echo:%s", suffix);
    size_t n = 0;
    memcpy(rec, "\x83\xa1v\x01\xa2id", 7);
    n = 7;
    rec[n++] = (char)(0xa0 | idl);
    memcpy(rec + n, id, (size_t)idl);
    n += (size_t)idl;
    memcpy(rec + n,
           "\xa1"
           "a\x01",
           3);
    n += 3;
    char *entry = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * r %b", rec, n);
    cr_assert_not_null(entry);
    long long added = wf_test_cmd_int(
        rc, "HSET wf:{echo}:run:%s state queued attempt 1 lease 0 reclaims 0 entry %s input %b", id,
        entry, "\x01", (size_t)1);
    cr_assert_eq(added, 6);
    free(entry);
}

static int log_says(void *arg)
{
    char *log = wf_test_slurp(log_path);
    int ok = log && strstr(log, (const char *)arg) != NULL;
    free(log);
    return ok;
}

Test(hostile, a_clobbered_fixed_key_stops_claims_cleanly_until_repaired)
{
    start_worker();
    pid_t child = worker_child();
    /* The waiting index: written by enqueue.lua (a delayed start) and claim.lua (a held run). */
    char *ok = wf_test_cmd_str(rc, "SET wf:{echo}:state:waiting x");
    free(ok);
    wf_error err = {0};
    cr_assert_null(start_echo("refused", &err), "enqueue must not half-write");
    cr_assert_eq(err.code, WF_ERR_REDIS);
    cr_assert(strstr(err.message, "state:waiting") && strstr(err.message, "holds a string"), "%s",
              err.message);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{echo}:run:echo:refused"), 0, "half-written run");
    /* claim.lua refuses the whole batch before it writes anything: the entry stays pending,
     * the run stays queued, the worker says why and goes on. */
    forge_queued("later");
    cr_assert(wf_test_wait(log_says, "claim.lua failed", 5000), "no clear error in the log");
    cr_assert(log_says("holds a string"), "the error names the problem");
    char *st = wf_test_cmd_str(rc, "HGET wf:{echo}:run:echo:later state");
    cr_assert_str_eq(st, "queued", "nothing half-claimed");
    free(st);
    /* Repaired: XAUTOCLAIM recovers the pending entry after the lease time. */
    cr_assert_eq(wf_test_cmd_int(rc, "DEL wf:{echo}:state:waiting"), 1);
    wait_state("echo:later", "completed", 10000);
    cr_assert_eq(worker_child(), child, "the worker process survived");
}

/* ---- Redis refusing work -----------------------------------------------------------------------
 */

Test(hostile, out_of_memory_is_a_clear_error_and_the_worker_resumes)
{
    start_worker();
    pid_t child = worker_child();
    wf_error err = {0};
    wf_run *r = start_echo("warm", &err);
    cr_assert_not_null(r, "%s", err.message);
    wf_run_free(r);
    wait_state("echo:warm", "completed", 10000);
    char *ok = wf_test_cmd_str(rc, "CONFIG SET maxmemory-policy noeviction");
    free(ok);
    ok = wf_test_cmd_str(rc, "CONFIG SET maxmemory 1");
    free(ok);
    cr_assert_null(start_echo("oom", &err), "enqueue under OOM must fail");
    cr_assert_eq(err.code, WF_ERR_REDIS, "%d %s", err.code, err.message);
    cr_assert(strstr(err.message, "out of memory"), "%s", err.message);
    usleep(1500 * 1000); /* the worker lives through ticks, heartbeats and reads meanwhile */
    cr_assert_eq(worker_child(), child, "the worker process survived OOM");
    ok = wf_test_cmd_str(rc, "CONFIG SET maxmemory 0");
    free(ok);
    r = start_echo("after", &err);
    cr_assert_not_null(r, "%s", err.message);
    wf_run_free(r);
    wait_state("echo:after", "completed", 10000);
    cr_assert_eq(worker_child(), child);
}

static int link_up(void *arg)
{
    redisContext *c = arg;
    char *info = wf_test_cmd_str(c, "INFO replication");
    int up = info && strstr(info, "master_link_status:up");
    free(info);
    return up;
}

Test(hostile, a_read_only_replica_is_refused_with_a_clear_error)
{
    wf_test_redis replica;
    char conf[64];
    snprintf(conf, sizeof conf, "replicaof 127.0.0.1 %d", srv.port);
    cr_assert_eq(wf_test_redis_start(&replica, conf), 0);
    redisContext *c = wf_test_redis_connect(&replica);
    cr_assert(wf_test_wait(link_up, c, 10000), "replica never linked");
    wf_error err = {0};
    wf_client *ro = wf_client_connect(replica.url, &err);
    cr_assert_null(ro, "connecting to a replica must fail");
    cr_assert_eq(err.code, WF_ERR_REDIS, "%s", err.message);
    cr_assert(strstr(err.message, "read-only") && strstr(err.message, "master"), "%s", err.message);
    /* A worker pointed at it says the same and exits non-zero instead of spinning silently. */
    char *bin = wf_test_path("wf-worker");
    char *wfdir = wf_test_path("tests/workflows");
    const char *argv[] = {bin,   "--redis",     replica.url, "--workflows",
                          wfdir, "--processes", "0",         NULL};
    char *out = NULL;
    int code = wf_test_run(argv, NULL, NULL, &out, 10000);
    free(out);
    free(bin);
    free(wfdir);
    cr_assert_eq(code, 1, "wf-worker exit %d", code);
    redisFree(c);
    wf_test_redis_stop(&replica);
}
