/* test_restart.c - Redis restarted under load, with a data set that takes seconds to load.
 *
 * A real redis-server with AOF (appendfsync always) holds a few thousand padding keys in its AOF
 * base, and is restarted with --key-load-delay so that it answers LOADING for about two seconds
 * after it accepts connections again. Two worker processes run two-step runs throughout and a
 * producer keeps enqueueing while Redis loads. Promised (docs/reliability.md): no run lost, no
 * step executed twice, no lease reclaimed (no worker died: a run must not be taken for
 * abandoned), the workers' set-up redone after the reload, and no worker process restarted. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "wf_internal.h"

#define PADDING     3000
#define LOAD_US     "700" /* per key: about 2 s of LOADING */
#define BEFORE_RUNS 120
#define DURING_RUNS 40
#define RUNS        (BEFORE_RUNS + DURING_RUNS)
#define STEPS       2

static wf_test_redis srv;
static redisContext *rc;
static char dir[256];

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, "appendonly yes\nappendfsync always\n"), 0);
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    snprintf(dir, sizeof dir, "/tmp/wf-test-restart-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    if (rc) redisFree(rc);
    wf_test_redis_stop(&srv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(restart, .init = setup, .fini = teardown, .timeout = 240);

/* A connection that answers PING (not LOADING); reconnects after the restart. */
static redisContext *ready_conn(void)
{
    if (rc && !rc->err) {
        redisReply *r = redisCommand(rc, "PING");
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
        if (ok) return rc;
        if (r) return NULL; /* LOADING: connected, not ready */
    }
    if (rc) redisFree(rc);
    rc = wf_test_redis_connect(&srv);
    return NULL;
}

static long long completed(void)
{
    redisContext *c = ready_conn();
    return c ? wf_test_cmd_int(c, "ZCARD wf:{stepper}:state:completed") : -1;
}

static const char *const stepper[] = {"stepper", NULL};

static int registered(void *arg)
{
    (void)arg;
    redisContext *c = ready_conn();
    return c && wf_test_registered(c, stepper);
}

static int some_completed(void *arg)
{
    return completed() >= *(long long *)arg;
}

static int all_completed(void *arg)
{
    (void)arg;
    return completed() == RUNS;
}

static int aof_rewritten(void *arg)
{
    (void)arg;
    char *info = wf_test_cmd_str(rc, "INFO persistence");
    int done = info && strstr(info, "aof_rewrite_in_progress:0") &&
               strstr(info, "aof_rewrite_scheduled:0");
    free(info);
    return done;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, what)); p++) n++;
    return n;
}

static void enqueue(wf_client *cl, const msgpack_sbuffer *in, char **ids, int from, int n)
{
    wf_error err = {0};
    for (int i = from; i < from + n; i++) {
        wf_run *run = wf_run_workflow(cl, "stepper", in->data, in->size, &err);
        cr_assert_not_null(run, "enqueue %d: %s", i, err.message);
        ids[i] = strdup(wf_run_id(run));
        wf_run_free(run);
    }
}

Test(restart, slow_loading_restart_under_load_loses_and_repeats_nothing)
{
    /* Padding in the AOF's base (a rewrite), where --key-load-delay slows loading per key. */
    for (int i = 0; i < PADDING; i++) redisAppendCommand(rc, "SET pad:%d x", i);
    for (int i = 0; i < PADDING; i++) {
        void *r = NULL;
        cr_assert_eq(redisGetReply(rc, &r), REDIS_OK);
        freeReplyObject(r);
    }
    char *rewrite = wf_test_cmd_str(rc, "BGREWRITEAOF");
    cr_assert_not_null(rewrite);
    free(rewrite);
    cr_assert(wf_test_wait(aof_rewritten, NULL, 20000), "the AOF rewrite finished");

    char log_path[300], exec_path[300], exec_env[340], port_env[64];
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    snprintf(exec_path, sizeof exec_path, "%s/exec.log", dir);
    snprintf(exec_env, sizeof exec_env, "WF_TEST_EXEC_LOG=%s", exec_path);
    snprintf(port_env, sizeof port_env, "WF_TEST_REDIS_PORT=%d", srv.port);
    /* The lease (15 s, the default) outlives the outage (about 2.5 s, more on a loaded machine:
     * reconnect backoff, a slow fork of redis-server): a reclaim would be a false alarm. */
    const char *args[] = {"--processes", "2", "--concurrency", "8", "--lease-ms", "15000", NULL};
    const char *env[] = {exec_env, port_env, NULL};
    pid_t sup = wf_test_worker_start(&(wf_test_worker){.redis_url = srv.url,
                                                       .extra = args,
                                                       .env = env,
                                                       .log_path = log_path,
                                                       .rc = rc,
                                                       .workflows = stepper,
                                                       .timeout_ms = 15000});
    pid_t before[4], after[4];
    int nbefore = wf_test_children(sup, before, 4);
    cr_assert_eq(nbefore, 2, "two worker processes");

    wf_error err = {0};
    /* The producer's own timeout_ms (10 s) outlasts the load: its calls wait, they do not fail. */
    char url[200];
    snprintf(url, sizeof url, "%s?timeout_ms=10000", srv.url);
    wf_client *cl = wf_client_connect(url, &err);
    cr_assert_not_null(cl, "%s", err.message);
    const char *json = "{\"n\":2,\"work_ms\":40}";
    msgpack_sbuffer in;
    msgpack_sbuffer_init(&in);
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, &in, &err), WF_OK);
    char **ids = calloc(RUNS, sizeof(char *));
    enqueue(cl, &in, ids, 0, BEFORE_RUNS);
    long long some = 20;
    cr_assert(wf_test_wait(some_completed, &some, 30000));

    /* The registry goes with the restart: the workers must write it again once Redis has loaded
     * (their set-up on reconnect), without being restarted. */
    wf_test_cmd_int(rc, "DEL wf:workflows");
    /* Small event intervals: Redis answers (LOADING) while it loads, as it does with a big AOF. */
    const char *slow[] = {"--key-load-delay", LOAD_US, "--loading-process-events-interval-bytes",
                          "1024", NULL};
    cr_assert_eq(wf_test_redis_restart(&srv, slow), 0);
    redisFree(rc);
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    redisReply *probe = redisCommand(rc, "PING");
    int was_loading =
        probe && probe->type == REDIS_REPLY_ERROR && !strncmp(probe->str, "LOADING", 7);
    if (probe) freeReplyObject(probe);
    cr_assert(was_loading, "Redis answered LOADING after the restart (the test's premise)");
    /* Enqueued while Redis loads: the client library waits instead of failing. */
    enqueue(cl, &in, ids, BEFORE_RUNS, DURING_RUNS);

    cr_assert(wf_test_wait(all_completed, NULL, 60000), "every run completed (%lld of %d)",
              completed(), RUNS);
    int reregistered = wf_test_wait(registered, NULL, 10000);
    int nafter = wf_test_children(sup, after, 4);

    long long reclaims = 0;
    int wrong = 0;
    for (int i = 0; i < RUNS; i++) {
        wf_run *run = wf_get_workflow_run(cl, ids[i], &err);
        cr_assert_not_null(run, "run %s lost: %s", ids[i], err.message);
        wf_status st;
        cr_assert_eq(wf_run_status(run, &st, &err), WF_OK);
        wrong += st.state != WF_STATE_COMPLETED;
        for (size_t f = 0; f < st.raw_len; f++)
            if (strcmp(st.raw[f].name, "reclaims") == 0) reclaims += atoll(st.raw[f].value);
        wf_status_clear(&st);
        wf_run_free(run);
        free(ids[i]);
    }
    free(ids);
    msgpack_sbuffer_destroy(&in);
    wf_client_free(cl);
    int status = wf_test_kill(sup, SIGTERM, 30000);

    char *exec = wf_test_slurp(exec_path);
    int steps_run = count_of(exec, "STEP ");
    int violations = count_of(exec, "VIOLATION");
    free(exec);
    char *log = wf_test_slurp(log_path);
    int refused = count_of(log, "Redis refused the");
    int loading_seen = count_of(log, "LOADING");
    free(log);
    printf(
        "restart test: runs=%d not_completed=%d reclaims=%lld step_executions=%d (exactly %d "
        "expected) recorded_steps_rerun=%d refused_results=%d LOADING_in_log=%d reregistered=%d\n",
        RUNS, wrong, reclaims, steps_run, RUNS * STEPS, violations, refused, loading_seen,
        reregistered);
    fflush(stdout);
    cr_assert(reregistered, "the workers registered again after the reload (set-up redone)");
    cr_assert_eq(wrong, 0, "every run completed");
    cr_assert_eq(reclaims, 0, "no lease reclaimed: no worker died");
    cr_assert_eq(violations, 0, "no recorded step ran again");
    cr_assert_eq(steps_run, RUNS * STEPS, "no step executed twice");
    cr_assert_eq(refused, 0, "no result refused as final");
    cr_assert_eq(nafter, nbefore, "no worker process restarted");
    cr_assert_arr_eq(after, before, sizeof(pid_t) * 2, "the same worker processes");
    cr_assert(WIFEXITED(status), "supervisor exited after SIGTERM (status 0x%x)", status);
}

/* A claim whose reply is lost with its connection (here forced by the test hook, as when Redis
 * is killed right after claim.lua ran): the run it made ours is handed back once the connection
 * is back, and runs at once, instead of waiting out its lease (60 s here) to be reclaimed as if
 * this worker had died. */
Test(restart, run_of_a_claim_whose_reply_was_lost_is_handed_back_not_reclaimed)
{
    char log_path[300];
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    const char *args[] = {"--processes", "1", "--lease-ms", "60000", NULL};
    const char *env[] = {"WF_TEST_LOSE_CLAIM_REPLY=1", NULL};
    const char *names[] = {"stepper", NULL};
    pid_t sup = wf_test_worker_start(&(wf_test_worker){.redis_url = srv.url,
                                                       .extra = args,
                                                       .env = env,
                                                       .log_path = log_path,
                                                       .rc = rc,
                                                       .workflows = names});
    wf_error err = {0};
    wf_client *cl = wf_client_connect(srv.url, &err);
    cr_assert_not_null(cl, "%s", err.message);
    const char *json = "{\"n\":1}";
    msgpack_sbuffer in;
    msgpack_sbuffer_init(&in);
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, &in, &err), WF_OK);
    wf_run *run = wf_run_workflow(cl, "stepper", in.data, in.size, &err);
    cr_assert_not_null(run, "%s", err.message);
    msgpack_sbuffer_destroy(&in);
    long long one = 1;
    int done = wf_test_wait(some_completed, &one, 20000);
    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    long long reclaims = 0;
    for (size_t f = 0; f < st.raw_len; f++)
        if (strcmp(st.raw[f].name, "reclaims") == 0) reclaims = atoll(st.raw[f].value);
    wf_state state = st.state;
    wf_status_clear(&st);
    wf_run_free(run);
    wf_client_free(cl);
    wf_test_kill(sup, SIGTERM, 30000);
    char *log = wf_test_slurp(log_path);
    int lost = count_of(log, "connection lost while claiming");
    int handed = count_of(log, "handed back to the queue: a claim of it whose reply was lost");
    free(log);
    cr_assert_eq(lost, 1, "the hook lost one claim reply");
    cr_assert(done, "the run completed long before its 60 s lease (state %s)",
              wf_state_name(state));
    cr_assert_eq(handed, 1, "it was handed back");
    cr_assert_eq(reclaims, 0, "and not reclaimed");
}
