/* test_restart.c - Redis restarted under load, with a data set that takes seconds to load.
 *
 * A real redis-server with AOF (appendfsync always) holds a few thousand padding keys in its AOF
 * base, and is restarted with --key-load-delay so that it answers LOADING for about two seconds
 * after it accepts connections again. Two worker processes run two-step runs throughout and a
 * producer keeps enqueueing while Redis loads. Promised (docs/reliability.md): no run lost, no
 * step executed twice, no lease reclaimed (no worker died: a run must not be taken for
 * abandoned), the workers' set-up redone after the reload, and no worker process restarted. */
#include "pool_env.h"

#define PADDING     3000
#define LOAD_US     "700" /* per key: about 2 s of LOADING */
#define BEFORE_RUNS 120
#define DURING_RUNS 40
#define RUNS        (BEFORE_RUNS + DURING_RUNS)
#define STEPS       2

static void setup(void)
{
    pool_env_setup_with("restart", "appendonly yes\nappendfsync always\n");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(restart, .init = setup, .fini = teardown, .timeout = 240);

/* A connection that answers PING (not LOADING); reconnects after the restart. */
static redisContext *ready_conn(void)
{
    if (rc && !rc->err) {
        redisReply *r = wf_test_command(rc, "PING");
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

static void enqueue(wf_client *client, const char *json, char **ids, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        wf_run *run = wf_test_start_json(client, "stepper", json, NULL);
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

    /* The lease (15 s, the default) outlives the outage (about 2.5 s, more on a loaded machine:
     * reconnect backoff, a slow fork of redis-server): a reclaim would be a false alarm. */
    const char *args[] = {"--processes", "2", "--concurrency", "8", "--lease-ms", "15000", NULL};
    worker_pid = pool_env_worker(args, NULL, stepper);
    pid_t sup = worker_pid;
    pid_t before[4], after[4];
    int nbefore = wf_test_children(sup, before, 4);
    cr_assert_eq(nbefore, 2, "two worker processes");

    /* The producer's own timeout_ms (10 s) outlasts the load: its calls wait, they do not fail. */
    char url[200];
    snprintf(url, sizeof url, "%s?timeout_ms=10000", srv.url);
    wf_client *producer = wf_test_client(url);
    const char *json = "{\"n\":2,\"work_ms\":40}";
    char **ids = calloc(RUNS, sizeof(char *));
    enqueue(producer, json, ids, 0, BEFORE_RUNS);
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
    redisReply *probe = wf_test_command(rc, "PING");
    int was_loading =
        probe && probe->type == REDIS_REPLY_ERROR && !strncmp(probe->str, "LOADING", 7);
    if (probe) freeReplyObject(probe);
    cr_assert(was_loading, "Redis answered LOADING after the restart (the test's premise)");
    /* Enqueued while Redis loads: the client library waits instead of failing. */
    enqueue(producer, json, ids, BEFORE_RUNS, DURING_RUNS);

    cr_assert(wf_test_wait(all_completed, NULL, 60000), "every run completed (%lld of %d)",
              completed(), RUNS);
    int reregistered = wf_test_wait(registered, NULL, 10000);
    int nafter = wf_test_children(sup, after, 4);

    long long reclaims = 0;
    int wrong = 0;
    for (int i = 0; i < RUNS; i++) {
        wf_status st;
        wf_test_status_of(producer, ids[i], &st);
        wrong += st.state != WF_STATE_COMPLETED;
        reclaims += wf_test_raw_field(&st, "reclaims");
        wf_status_clear(&st);
        free(ids[i]);
    }
    free(ids);
    wf_client_free(producer);
    int status = pool_env_stop_worker();

    char *exec = wf_test_slurp(exec_path);
    int steps_run = wf_test_count(exec, "STEP ");
    int violations = wf_test_count(exec, "VIOLATION");
    free(exec);
    char *log = wf_test_slurp(log_path);
    int refused = wf_test_count(log, "Redis refused the");
    int loading_seen = wf_test_count(log, "LOADING");
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
    const char *args[] = {"--processes", "1", "--lease-ms", "60000", NULL};
    worker_pid = pool_env_worker(args, "WF_TEST_LOSE_CLAIM_REPLY=1", stepper);
    wf_run *run = wf_test_start_json(cl, "stepper", "{\"n\":1}", NULL);
    long long one = 1;
    int done = wf_test_wait(some_completed, &one, 20000);
    wf_error err = {0};
    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    long long reclaims = wf_test_raw_field(&st, "reclaims");
    wf_state state = st.state;
    wf_status_clear(&st);
    wf_run_free(run);
    pool_env_stop_worker();
    char *log = wf_test_slurp(log_path);
    int lost = wf_test_count(log, "connection lost while claiming");
    int handed = wf_test_count(log, "handed back to the queue: a claim of it whose reply was lost");
    free(log);
    cr_assert_eq(lost, 1, "the hook lost one claim reply");
    cr_assert(done, "the run completed long before its 60 s lease (state %s)",
              wf_state_name(state));
    cr_assert_eq(handed, 1, "it was handed back");
    cr_assert_eq(reclaims, 0, "and not reclaimed");
}
