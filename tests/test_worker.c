/* test_worker.c - the worker against a real redis-server: the wf-worker program (supervisor and
 * worker processes, forked for real) running the test workflows of tests/workflows, and the
 * embedding API on a thread of this process. Runs are driven with the client API; every wait
 * polls a condition with a deadline. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool_env.h"
#include "wf_worker_internal.h"

static void setup(void)
{
    pool_env_setup("worker");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(worker, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------------------------ */

static int registered(void *arg)
{
    (void)arg;
    static const char *const names[] = {"echo", "fatal", "flaky", "sender", "slow", "timeout"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (wf_test_cmd_int(rc, "HEXISTS wf:workflows %s", names[i]) != 1) return 0;
    return 1;
}

/* Starts wf-worker with the test workflows plus `extra` flags (NULL-terminated). */
static pid_t start_worker(const char *const *extra)
{
    char *bin = wf_test_path("wf-worker");
    char *wfdir = wf_test_path("tests/workflows");
    const char *argv[32] = {bin, "--redis", srv.url, "--workflows", wfdir, "--log-level", "info"};
    int n = 7;
    for (; extra && *extra && n < 30; extra++) argv[n++] = *extra;
    argv[n] = NULL;
    const char *env[] = {exec_env, NULL};
    pid_t pid = wf_test_spawn(argv, env, log_path);
    free(bin);
    free(wfdir);
    cr_assert_gt(pid, 0);
    cr_assert(wf_test_wait(registered, NULL, 10000), "worker never registered its workflows");
    return pid;
}

static wf_run *start_run(const char *workflow, const void *payload, size_t len)
{
    wf_error err = {0};
    wf_run *run = wf_run_workflow(cl, workflow, payload, len, &err);
    cr_assert_not_null(run, "start %s: %s", workflow, err.message);
    return run;
}

static size_t pack_int(char *buf, long long v)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_long_long(&pk, v);
    memcpy(buf, sb.data, sb.size);
    size_t n = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return n;
}

/* How many lines of the exec log name `id`. */
static int exec_count(const char *id)
{
    char *log = wf_test_slurp(exec_path);
    int n = 0;
    size_t il = strlen(id);
    for (char *p = log; (p = strstr(p, id)); p += il)
        if ((p == log || p[-1] == '\n') && p[il] == ' ') n++;
    free(log);
    return n;
}

typedef struct log_wait {
    const char *text;
} log_wait;

static int log_has(void *arg)
{
    log_wait *l = arg;
    char *log = wf_test_slurp(log_path);
    int ok = strstr(log, l->text) != NULL;
    free(log);
    return ok;
}

static void wait_log(const char *text, int timeout_ms)
{
    log_wait l = {text};
    if (!wf_test_wait(log_has, &l, timeout_ms)) {
        char *log = wf_test_slurp(log_path);
        cr_assert_fail("worker log never said \"%s\":\n%s", text, log);
    }
}

/* Pid of the worker process holding a running run (from the consumer name HOST:PID:HEX). */
static pid_t holder_pid(wf_run *run)
{
    char *worker = wf_test_cmd_str(rc, "HGET %s worker", wf_run_native(run));
    cr_assert_not_null(worker);
    char *colon = strchr(worker, ':');
    cr_assert_not_null(colon);
    pid_t pid = (pid_t)strtol(colon + 1, NULL, 10);
    free(worker);
    return pid;
}

/* ---- wf-worker: many runs through two processes ---------------------------------------------- */

typedef struct count_wait {
    const char *key;
    long long want;
} count_wait;

static int zcard_is(void *arg)
{
    count_wait *c = arg;
    return wf_test_cmd_int(rc, "ZCARD %s", c->key) == c->want;
}

Test(worker, many_runs_two_processes_each_once)
{
    enum { N = 500 };
    worker_pid = start_worker((const char *[]){"--processes", "2", "--concurrency", "8", NULL});
    wf_run **runs = calloc(N, sizeof *runs);
    for (int i = 0; i < N; i++) {
        char p[16];
        size_t n = pack_int(p, 1000 + i);
        runs[i] = start_run("echo", p, n);
    }
    count_wait c = {"wf:{echo}:state:completed", N};
    if (!wf_test_wait(zcard_is, &c, 60000)) {
        char *log = wf_test_slurp(log_path);
        cr_assert_fail("only %lld of %d runs completed\n%s",
                       wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed"), N, log);
    }
    char *log = wf_test_slurp(exec_path);
    int lines = 0;
    for (char *p = log; *p; p++) lines += *p == '\n';
    free(log);
    cr_assert_eq(lines, N, "each run executed exactly once (%d executions for %d runs)", lines, N);
    for (int i = 0; i < N; i++) {
        wf_status st;
        wf_error err = {0};
        cr_assert_eq(wf_run_status(runs[i], &st, &err), WF_OK, "%s", err.message);
        cr_assert_eq(st.state, WF_STATE_COMPLETED);
        char want[16];
        size_t n = pack_int(want, 1000 + i);
        cr_assert_eq(st.output_len, n);
        cr_assert_eq(memcmp(st.output, want, n), 0, "run %d returned its input", i);
        cr_assert_eq(st.attempt, 1);
        cr_assert_eq(exec_count(wf_run_id(runs[i])), 1, "run %d ran once", i);
        wf_status_clear(&st);
        wf_run_free(runs[i]);
    }
    free(runs);
    /* Every ready entry was acknowledged and deleted. */
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:leases"), 0);
}

/* ---- outcomes ---------------------------------------------------------------------------------
 */

Test(worker, retry_then_success_on_attempt_2)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wf_run *run = start_run("flaky", NULL, 0);
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, 15000, &st);
    cr_assert_eq(st.attempt, 2);
    cr_assert_eq(st.output_len, 3);
    cr_assert_eq(memcmp(st.output, "\xa2ok", 3), 0);
    cr_assert_eq(exec_count(wf_run_id(run)), 2);
    wf_status_clear(&st);
    wf_run_free(run);
}

Test(worker, fatal_fails_at_once_with_the_error_text)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wf_run *run = start_run("fatal", NULL, 0);
    wf_status st;
    wait_state(run, WF_STATE_FAILED, 15000, &st);
    cr_assert_eq(st.attempt, 1);
    cr_assert_not_null(st.error);
    cr_assert(strstr(st.error, "card declined (attempt 1)"), "error: %s", st.error);
    cr_assert_eq(exec_count(wf_run_id(run)), 1);
    wf_status_clear(&st);
    wf_run_free(run);
}

Test(worker, timeout_terminates_the_run)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wf_run *run = start_run("timeout", NULL, 0);
    wf_status st;
    wait_state(run, WF_STATE_TERMINATED, 15000, &st);
    cr_assert_not_null(st.error);
    cr_assert(strstr(st.error, "timed out after 200 ms"), "error: %s", st.error);
    wf_status_clear(&st);
    /* The handler saw wf_ctx_cancelled, returned, and its late result was dropped. */
    wait_log("result dropped", 10000);
    wait_state(run, WF_STATE_TERMINATED, 1000, &st);
    cr_assert_null(st.output);
    wf_status_clear(&st);
    wf_run_free(run);
}

Test(worker, stop_cancels_a_running_run_and_drops_its_result)
{
    worker_pid = start_worker(
        (const char *[]){"--processes", "1", "--concurrency", "1", "--lease-ms", "900", NULL});
    char p[16];
    size_t n = pack_int(p, 20000);
    wf_run *run = start_run("slow", p, n);
    wf_status st;
    wait_state(run, WF_STATE_RUNNING, 10000, &st);
    wf_status_clear(&st);
    wf_error err = {0};
    cr_assert_eq(wf_run_stop(run, &err), WF_OK, "%s", err.message);
    wait_state(run, WF_STATE_CANCELLED, 1000, &st);
    wf_status_clear(&st);
    wait_log("lease lost", 10000);
    wait_log("result dropped", 10000);
    wait_state(run, WF_STATE_CANCELLED, 1000, &st);
    cr_assert_null(st.output);
    wf_status_clear(&st);
    /* The only slot is free again. */
    wf_run *next = start_run("echo", p, n);
    wait_state(next, WF_STATE_COMPLETED, 10000, &st);
    wf_status_clear(&st);
    wf_run_free(next);
    wf_run_free(run);
}

Test(worker, send_event_from_a_handler)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    char p[16];
    size_t n = pack_int(p, 7);
    wf_run *run = start_run("sender", p, n);
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, 10000, &st);
    wf_status_clear(&st);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{ev:test-event}:log"), 1);
    wf_run_free(run);
}

/* ---- bad data ----------------------------------------------------------------------------- */

static int dead_has_one(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "LLEN wf:{echo}:dead") == 1;
}

Test(worker, bad_stream_entry_goes_to_the_dead_list)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--lease-ms", "1000", NULL});
    char *id = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * r garbage");
    cr_assert_not_null(id);
    cr_assert(wf_test_wait(dead_has_one, NULL, 10000), "entry never reached the dead list");
    char *dead = wf_test_cmd_str(rc, "LINDEX wf:{echo}:dead 0");
    cr_assert_not_null(dead);
    cr_assert(strstr(dead, id), "dead entry names the stream entry: %s", dead);
    free(dead);
    free(id);
    /* A key of the wrong type where a run hash should be: claim.lua fails, which is logged, not
     * fatal; entries it could not reach are recovered by XAUTOCLAIM after the lease. */
    wf_test_cmd_int(rc, "SET wf:{echo}:run:echo:clobbered x");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "echo:clobbered", 14);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_int(&pk, 1);
    char *id2 = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * r %b", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(id2);
    free(id2);
    wait_log("WRONGTYPE", 10000);
    char p[16];
    size_t n = pack_int(p, 5);
    wf_run *run = start_run("echo", p, n);
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, 10000, &st);
    wf_status_clear(&st);
    wf_run_free(run);
}

/* ---- crashes and signals ------------------------------------------------------------------ */

Test(worker, sigkill_of_a_worker_child_mid_run_is_recovered)
{
    /* A lease long enough that a loaded machine does not miss a heartbeat (a miss would re-run
     * the handler a third time), short enough that the reclaim comes quickly; a handler long
     * enough that the kill lands while it runs, even on a loaded machine (the cluster suites
     * run beside the single-server ones). */
    worker_pid = start_worker((const char *[]){"--processes", "1", "--lease-ms", "2500", NULL});
    char p[16];
    size_t n = pack_int(p, 3000);
    wf_run *run = start_run("slow", p, n);
    wf_status st;
    wait_state(run, WF_STATE_RUNNING, 10000, &st);
    wf_status_clear(&st);
    pid_t child = holder_pid(run);
    cr_assert_gt(child, 0);
    cr_assert_neq(child, worker_pid, "the run is held by a child, not the supervisor");
    cr_assert_eq(kill(child, SIGKILL), 0);
    wait_log("killed by signal 9", 5000);
    wait_state(run, WF_STATE_COMPLETED, 30000, &st);
    cr_assert_eq(st.output_len, 6);
    cr_assert_eq(memcmp(st.output, "\xa5slept", 6), 0);
    wf_status_clear(&st);
    int execs = exec_count(wf_run_id(run));
    cr_assert_eq(execs, 2, "ran again after the crash (ran %d times)", execs);
    char *reclaims = wf_test_cmd_str(rc, "HGET %s reclaims", wf_run_native(run));
    cr_assert_str_eq(reclaims, "1");
    free(reclaims);
    wf_run_free(run);
}

Test(worker, sigterm_drains_and_exits_0)
{
    worker_pid = start_worker((const char *[]){"--processes", "2", NULL});
    char p[16];
    size_t n = pack_int(p, 800);
    wf_run *run = start_run("slow", p, n);
    wf_status st;
    wait_state(run, WF_STATE_RUNNING, 10000, &st);
    wf_status_clear(&st);
    int status = wf_test_kill(worker_pid, SIGTERM, 30000);
    worker_pid = 0;
    cr_assert(WIFEXITED(status), "supervisor exited (status 0x%x)", status);
    cr_assert_eq(WEXITSTATUS(status), 0);
    wf_error err = {0};
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    cr_assert(st.state == WF_STATE_COMPLETED || st.state == WF_STATE_QUEUED, "state %s",
              wf_state_name(st.state));
    wf_status_clear(&st);
    wf_run_free(run);
}

Test(worker, sigterm_past_drain_hands_runs_back_to_the_queue)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--drain-ms", "200", NULL});
    char p[16];
    size_t n = pack_int(p, 20000);
    wf_run *run = start_run("slow", p, n);
    wf_status st;
    wait_state(run, WF_STATE_RUNNING, 10000, &st);
    wf_status_clear(&st);
    int status = wf_test_kill(worker_pid, SIGTERM, 30000);
    worker_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    wait_state(run, WF_STATE_QUEUED, 1000, &st);
    cr_assert_eq(st.attempt, 1, "a hand-back is not a failed attempt");
    wf_status_clear(&st);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{slow}:queue"), 1, "ready again");
    wf_run_free(run);
}

Test(worker, survives_client_kill)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    char p[16];
    size_t n = pack_int(p, 1);
    wf_run *a = start_run("echo", p, n);
    wf_status st;
    wait_state(a, WF_STATE_COMPLETED, 10000, &st);
    wf_status_clear(&st);
    /* Drop every connection but ours (SKIPME yes is the default: ours survives). */
    redisReply *r = redisCommand(rc, "CLIENT KILL TYPE normal");
    if (r) freeReplyObject(r);
    wf_error err = {0};
    wf__client_reconnect(cl, &err);
    /* "cmd connection to Redis lost", or "... to Redis Cluster lost" in cluster mode. */
    wait_log(wf_test_cluster_mode() ? "connection to Redis Cluster lost"
                                    : "connection to Redis lost",
             5000);
    wf_run *b = start_run("echo", p, n);
    wait_state(b, WF_STATE_COMPLETED, 15000, &st);
    wf_status_clear(&st);
    /* Scripts flushed (as after a Redis restart): EVALSHA falls back to EVAL. */
    r = redisCommand(rc, "SCRIPT FLUSH");
    if (r) freeReplyObject(r);
    wf_run *c = start_run("flaky", NULL, 0);
    wait_state(c, WF_STATE_COMPLETED, 15000, &st);
    cr_assert_eq(st.attempt, 2);
    wf_status_clear(&st);
    wf_run_free(a);
    wf_run_free(b);
    wf_run_free(c);
}

typedef struct count_log {
    const char *text;
    int times;
} count_log;

static int log_count_at_least(void *arg)
{
    count_log *c = arg;
    char *log = wf_test_slurp(log_path);
    int n = 0;
    for (char *p = log; (p = strstr(p, c->text)); p++) n++;
    free(log);
    return n >= c->times;
}

Test(worker, result_finished_while_disconnected_is_sent_after_reconnect)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    char p[16];
    size_t n = pack_int(p, 200);
    wf_run *run = start_run("slow", p, n);
    wf_status st;
    wait_state(run, WF_STATE_RUNNING, 10000, &st);
    wf_status_clear(&st);
    /* Cut the worker off: drop its connections and refuse new ones (only ours stays). */
    redisReply *r = redisCommand(rc, "CONFIG SET maxclients 1");
    if (r) freeReplyObject(r);
    r = redisCommand(rc, "CLIENT KILL TYPE normal");
    if (r) freeReplyObject(r);
    /* Refused three times: 100 + 200 + 400 ms of backoff, well past the handler's 200 ms. */
    count_log c = {"max number of clients", 3};
    cr_assert(wf_test_wait(log_count_at_least, &c, 15000), "worker kept retrying");
    cr_assert_eq(exec_count(wf_run_id(run)), 1, "the handler ran");
    char *state = wf_test_cmd_str(rc, "HGET %s state", wf_run_native(run));
    cr_assert_str_eq(state, "running", "the result is still waiting in the worker");
    free(state);
    r = redisCommand(rc, "CONFIG SET maxclients 10000");
    if (r) freeReplyObject(r);
    wf_error err = {0};
    cr_assert_eq(wf__client_reconnect(cl, &err), WF_OK, "%s", err.message);
    wait_state(run, WF_STATE_COMPLETED, 15000, &st);
    cr_assert_eq(st.attempt, 1);
    cr_assert_eq(st.output_len, 6);
    wf_status_clear(&st);
    cr_assert_eq(exec_count(wf_run_id(run)), 1, "not re-run: the lease survived the outage");
    wf_run_free(run);
}

/* ---- the program's command line ---------------------------------------------------------------
 */

static int run_cli(const char *const *args, char **out)
{
    char *bin = wf_test_path("wf-worker");
    const char *argv[16] = {bin};
    int n = 1;
    for (; args && *args && n < 15; args++) argv[n++] = *args;
    argv[n] = NULL;
    int rcode = wf_test_run(argv, NULL, NULL, out, 10000);
    free(bin);
    return rcode;
}

Test(worker, command_line_errors)
{
    char *wfdir = wf_test_path("tests/workflows");
    char *out = NULL;
    cr_assert_eq(run_cli((const char *[]){"--help", NULL}, &out), 0);
    cr_assert(strstr(out, "--workflows"));
    free(out);
    cr_assert_eq(run_cli((const char *[]){"--bogus", NULL}, NULL), 2);
    cr_assert_eq(run_cli((const char *[]){"--workflows", wfdir, "--processes", "x", NULL}, NULL),
                 2);
    cr_assert_eq(run_cli((const char *[]){"--redis", srv.url, NULL}, NULL), 2, "no --workflows");
    cr_assert_eq(
        run_cli((const char *[]){"--redis", "http://nope", "--workflows", wfdir, NULL}, NULL), 2,
        "bad URL");
    cr_assert_eq(
        run_cli((const char *[]){"--redis", srv.url, "--workflows", "/nonexistent/dir", NULL},
                NULL),
        2);
    cr_assert_eq(run_cli((const char *[]){"--redis", srv.url, "--workflows", dir, NULL}, NULL), 2,
                 "an empty folder has no workflows");
    free(wfdir);
}

/* ---- embedding --------------------------------------------------------------------------------
 */

static int embedded(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    if (strcmp(wf_ctx_provider(ctx), "redis") != 0 || strcmp(wf_ctx_workflow(ctx), "embedded") ||
        wf_ctx_attempt(ctx) != 1 || wf_ctx_cancelled(ctx))
        return wf_ctx_fail(ctx, WF_ERR_FATAL, "unexpected context");
    msgpack_pack_array(out, 2);
    msgpack_pack_object(out, *input);
    size_t n = strlen(wf_ctx_event_id(ctx));
    msgpack_pack_str(out, n);
    msgpack_pack_str_body(out, wf_ctx_event_id(ctx), n);
    return WF_OK;
}

static int embedded_registered(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "HEXISTS wf:workflows embedded") == 1;
}

static void *run_thread(void *arg)
{
    wf_error err = {0};
    intptr_t r = wf_worker_run(arg, &err);
    if (r != WF_OK) fprintf(stderr, "wf_worker_run: %s\n", err.message);
    return (void *)r;
}

Test(worker, embedding_api)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url, .concurrency = 2, .drain_ms = 2000};
    wf_worker *w = wf_worker_new(&opt, &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_not_null(wf_worker_consumer(w));
    cr_assert_eq(wf_worker_define(w, "embedded", embedded, NULL, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_worker_define(w, "embedded", embedded, NULL, &err), WF_ERR_EXISTS);
    cr_assert_eq(wf_worker_define(w, "bad name", embedded, NULL, &err), WF_ERR_BAD_NAME);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, w), 0);
    /* Registration happens as the loop starts. */
    cr_assert(wf_test_wait(embedded_registered, NULL, 10000));
    wf_run *run = start_run("embedded", "\x07", 1);
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, 10000, &st);
    cr_assert_eq(st.output[0], (char)0x92);
    cr_assert_eq(st.output[1], 0x07);
    wf_status_clear(&st);
    wf_worker_stop(w);
    void *ret;
    pthread_join(t, &ret);
    cr_assert_eq((intptr_t)ret, WF_OK);
    wf_worker_free(w);
    wf_run_free(run);
}

/* Uses the durable-step primitive: a script (heartbeat.lua on its own run, which it holds) and
 * a script error mapped to its code (complete.lua with a wrong token is STALE). */
static int ctxcall(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)input;
    const wf__wfkeys *fixed = wf__ctx_keys(ctx);
    if (!fixed) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "no keys");
    char *run = wf__key_run(wf__ctx_prefix(ctx), wf_ctx_workflow(ctx), wf_ctx_event_id(ctx));
    char *steps = wf__key_steps(wf__ctx_prefix(ctx), wf_ctx_workflow(ctx), wf_ctx_event_id(ctx));
    const char *keys[WF__NFIXED + 2];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = fixed->k[i];
    keys[WF__NFIXED] = run;
    keys[WF__NFIXED + 1] = steps;
    const char *hb[] = {"60000", wf_ctx_event_id(ctx), wf__ctx_token(ctx)};
    redisReply *r = NULL;
    wf_error err = {0};
    int hrc = wf__ctx_call(ctx, WF__SCRIPT_HEARTBEAT, WF__NFIXED + 1, keys, 3, hb, NULL, &r, &err);
    int lost = r && r->type == REDIS_REPLY_ARRAY ? (int)r->elements : -1;
    wf__reply_free(r);
    const char *bad[] = {wf_ctx_event_id(ctx), "999999", "\xc0", "0"};
    int stale =
        wf__ctx_call(ctx, WF__SCRIPT_COMPLETE, WF__NFIXED + 2, keys, 4, bad, NULL, &r, &err);
    free(run);
    free(steps);
    if (hrc != WF_OK) return wf_ctx_fail(ctx, WF_ERR_FATAL, "heartbeat call: %d", hrc);
    msgpack_pack_array(out, 2);
    msgpack_pack_int(out, lost);
    msgpack_pack_int(out, stale);
    return WF_OK;
}

Test(worker, ctx_call_runs_scripts_from_a_handler)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url, .concurrency = 1};
    wf_worker *w = wf_worker_new(&opt, &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(wf_worker_define(w, "ctxcall", ctxcall, NULL, &err), WF_OK, "%s", err.message);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, w), 0);
    wf_run *run = wf_run_workflow_ex(cl, "ctxcall", NULL, 0,
                                     &(wf_run_options){.allow_unregistered = 1}, &err);
    cr_assert_not_null(run, "%s", err.message);
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, 10000, &st);
    /* [0 lost runs, WF_ERR_STALE] */
    cr_assert_eq(st.output_len, 3);
    cr_assert_eq((unsigned char)st.output[0], 0x92);
    cr_assert_eq(st.output[1], 0);
    cr_assert_eq((signed char)st.output[2], WF_ERR_STALE);
    wf_status_clear(&st);
    wf_worker_stop(w);
    pthread_join(t, NULL);
    wf_worker_free(w);
    wf_run_free(run);
}

static atomic_int stuck_release; /* set by the test to let the stuck handler go */
static atomic_int stuck_running;

static int stuck(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)ctx;
    (void)input;
    (void)out;
    atomic_store(&stuck_running, 1);
    while (!atomic_load(&stuck_release)) usleep(1000); /* ignores wf_ctx_cancelled on purpose */
    return WF_OK;
}

Test(worker, a_stuck_handler_does_not_hang_free)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url, .concurrency = 1, .drain_ms = 100};
    wf_worker *w = wf_worker_new(&opt, &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(wf_worker_define(w, "stuck", stuck, NULL, &err), WF_OK, "%s", err.message);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, w), 0);
    wf_run *run =
        wf_run_workflow_ex(cl, "stuck", NULL, 0, &(wf_run_options){.allow_unregistered = 1}, &err);
    cr_assert_not_null(run, "%s", err.message);
    wf_status st;
    wait_state(run, WF_STATE_RUNNING, 10000, &st);
    wf_status_clear(&st);
    wf_worker_stop(w);
    void *ret;
    pthread_join(t, &ret); /* returns after the drain deadline, the run handed back */
    cr_assert_eq((intptr_t)ret, WF_OK);
    int64_t t0 = wf__mono_ms();
    wf_worker_free(w); /* detaches the stuck thread after a short grace */
    cr_assert_lt(wf__mono_ms() - t0, 5000);
    wait_state(run, WF_STATE_QUEUED, 1000, &st);
    wf_status_clear(&st);
    atomic_store(&stuck_release, 1); /* the detached thread returns and frees its job */
    wf_run_free(run);
}

Test(worker, stop_before_run_returns_at_once)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url};
    wf_worker *w = wf_worker_new(&opt, &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(wf_worker_run(w, &err), WF_ERR_INVALID, "no workflows: %s", err.message);
    wf_worker_free(w);
    w = wf_worker_new(&opt, &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(wf_worker_define(w, "embedded", embedded, NULL, &err), WF_OK);
    wf_worker_stop(w);
    cr_assert_eq(wf_worker_run(w, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_worker_run(w, &err), WF_ERR_STATE, "a worker runs once");
    wf_worker_free(w);
}

Test(worker, load_dir_in_process)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url};
    wf_worker *w = wf_worker_new(&opt, &err);
    cr_assert_not_null(w, "%s", err.message);
    char *wfdir = wf_test_path("tests/workflows");
    int n = wf_worker_load_dir(w, wfdir, &err);
    cr_assert_geq(n, 6, "loaded %d: %s", n, err.message);
    cr_assert_eq(wf_worker_load_dir(w, wfdir, &err), n, "loading twice is harmless");
    cr_assert_lt(wf_worker_load_dir(w, "/nonexistent/dir", &err), 0);
    cr_assert(strstr(err.message, "/nonexistent/dir"), "%s", err.message);
    free(wfdir);
    wf_worker_free(w);
    wf_worker_free(NULL);
}

/* ---- self-fencing ---------------------------------------------------------------------------- */

/* A process that stalls past its lease (SIGSTOP, a long pause) must not start a step body when
 * it wakes: another worker may own the run and have run the step. The chaos suite's `pause`
 * scenario produces the stall for real; here the handler moves its own lease deadline into the
 * past on its first execution, which is what a stall looks like from inside the process. */
static atomic_int fence_execs, fence_effects, fence_first_rc, fence_effects_before;

static int fence_effect(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    (void)ctx;
    (void)arg;
    atomic_fetch_add(&fence_effects, 1);
    msgpack_pack_int(out, 1);
    return WF_OK;
}

static int fenced(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)input;
    int exec = atomic_fetch_add(&fence_execs, 1);
    if (exec == 0) atomic_store(&ctx->job->lease_until_mono, 0); /* "stalled": lease gone by */
    int src = wf_step_run(ctx, "effect", fence_effect, NULL, NULL);
    if (exec == 0) {
        atomic_store(&fence_first_rc, src);
        atomic_store(&fence_effects_before, atomic_load(&fence_effects));
    }
    if (src != WF_OK) return src;
    msgpack_pack_int(out, exec);
    return WF_OK;
}

Test(worker, a_step_does_not_start_past_the_lease_and_the_run_is_handed_back)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url, .concurrency = 1};
    wf_worker *w = wf_worker_new(&opt, &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(wf_worker_define(w, "fenced", fenced, NULL, &err), WF_OK, "%s", err.message);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, w), 0);
    wf_run *run =
        wf_run_workflow_ex(cl, "fenced", NULL, 0, &(wf_run_options){.allow_unregistered = 1}, &err);
    cr_assert_not_null(run, "%s", err.message);
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, 10000, &st);
    cr_assert_eq(atomic_load(&fence_first_rc), WF_ERR_CANCELLED, "the stalled step refused");
    cr_assert_eq(atomic_load(&fence_effects_before), 0, "its body did not run");
    cr_assert_eq(atomic_load(&fence_execs), 2, "handed back and run again");
    cr_assert_eq(atomic_load(&fence_effects), 1, "the effect ran once, on the second execution");
    cr_assert_eq(st.attempt, 1, "a hand-back is not a failed attempt");
    wf_status_clear(&st);
    wf_worker_stop(w);
    void *ret;
    pthread_join(t, &ret);
    cr_assert_eq((intptr_t)ret, WF_OK);
    wf_worker_free(w);
    wf_run_free(run);
}
