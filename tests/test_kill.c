/* test_kill.c - the kill test: a pool of worker processes runs 1,000 five-step runs while worker
 * processes are SIGKILLed at random every 300 ms. At the end every run is completed with the right
 * output, none is left anywhere else, and no step whose result Redis had recorded ran again (each
 * step body asks Redis before doing its work; see tests/workflows/stepper.c). Prints its counts. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "wf_internal.h"

#define RUNS  1000
#define STEPS 5

static wf_test_redis srv;
static redisContext *rc;
static char dir[256];

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0);
    rc = wf_test_redis_connect(&srv);
    snprintf(dir, sizeof dir, "/tmp/wf-test-kill-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    redisFree(rc);
    wf_test_redis_stop(&srv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(kill, .init = setup, .fini = teardown, .timeout = 600);

static const char *const stepper[] = {"stepper", NULL};

static int count_of(const char *log, const char *what)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, what)); p++) n++;
    return n;
}

static int all_completed(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed") == RUNS;
}

Test(kill, thousand_runs_survive_random_sigkills)
{
    char log_path[300], exec_path[300], exec_env[340], port_env[64];
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    snprintf(exec_path, sizeof exec_path, "%s/exec.log", dir);
    snprintf(exec_env, sizeof exec_env, "WF_TEST_EXEC_LOG=%s", exec_path);
    snprintf(port_env, sizeof port_env, "WF_TEST_REDIS_PORT=%d", srv.port);
    const char *args[] = {"--processes", "3", "--concurrency", "8", "--lease-ms", "1000", NULL};
    const char *env[] = {exec_env, port_env, NULL};
    pid_t sup = wf_test_worker_start(&(wf_test_worker){.redis_url = srv.url,
                                                       .extra = args,
                                                       .env = env,
                                                       .log_path = log_path,
                                                       .rc = rc,
                                                       .workflows = stepper});

    wf_error err = {0};
    wf_client *cl = wf_client_connect(srv.url, &err);
    cr_assert_not_null(cl, "%s", err.message);
    const char *json = "{\"n\":5,\"work_ms\":20}";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, &sb, &err), WF_OK);
    char **ids = calloc(RUNS, sizeof(char *));
    for (int i = 0; i < RUNS; i++) {
        wf_run *run = wf_run_workflow(cl, "stepper", sb.data, sb.size, &err);
        cr_assert_not_null(run, "%s", err.message);
        ids[i] = strdup(wf_run_id(run));
        wf_run_free(run);
    }
    msgpack_sbuffer_destroy(&sb);

    /* Kill a random worker process every 300 ms until every run completed, for at most
     * $WF_KILL_SECONDS (default 10 s; run longer by hand). */
    srand((unsigned)time(NULL));
    int kills = 0;
    struct timespec gap = {0, 300 * 1000000L};
    const char *secs = getenv("WF_KILL_SECONDS");
    int rounds = (secs ? atoi(secs) : 10) * 1000 / 300;
    for (int round = 0; round < rounds; round++) {
        if (all_completed(NULL)) break;
        pid_t kids[16];
        int n = wf_test_children(sup, kids, 16);
        if (n > 0 && kill(kids[rand() % n], SIGKILL) == 0) kills++;
        nanosleep(&gap, NULL);
    }
    /* Then let the survivors finish (reclaims need the 1 s lease to expire). */
    wf_test_wait(all_completed, NULL, 120000);
    int status = wf_test_kill(sup, SIGTERM, 30000);

    long long completed = wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed");
    long long elsewhere = 0;
    const char *others[] = {"queued", "running",   "waiting",   "paused",
                            "failed", "cancelled", "terminated"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        elsewhere += wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:%s", others[i]);
    long long reclaims = 0;
    int wrong_output = 0;
    for (int i = 0; i < RUNS; i++) {
        wf_run *run = wf_get_workflow_run(cl, ids[i], &err);
        cr_assert_not_null(run, "run %s lost: %s", ids[i], err.message);
        wf_status st;
        cr_assert_eq(wf_run_status(run, &st, &err), WF_OK);
        char *out = NULL;
        if (st.state != WF_STATE_COMPLETED || !st.output ||
            wf_msgpack_to_json(st.output, st.output_len, &out, NULL) != WF_OK ||
            strcmp(out, "{\"sum\":100,\"event\":null}") != 0)
            wrong_output++;
        free(out);
        for (size_t f = 0; f < st.raw_len; f++)
            if (strcmp(st.raw[f].name, "reclaims") == 0) reclaims += atoll(st.raw[f].value);
        wf_status_clear(&st);
        wf_run_free(run);
        free(ids[i]);
    }
    free(ids);
    wf_client_free(cl);

    char *exec = wf_test_slurp(exec_path);
    int steps_run = count_of(exec, "STEP ");
    int violations = count_of(exec, "VIOLATION");
    free(exec);
    char *log = wf_test_slurp(log_path);
    int sanitizer = strstr(log, "Sanitizer") || strstr(log, "runtime error");
    if (sanitizer) fprintf(stderr, "%s", log);
    free(log);

    printf("kill test: runs=%d completed=%lld elsewhere=%lld wrong_output=%d kills=%d "
           "reclaims=%lld step_executions=%d (minimum %d, re-run unrecorded: %d) "
           "recorded_steps_rerun=%d\n",
           RUNS, completed, elsewhere, wrong_output, kills, reclaims, steps_run, RUNS * STEPS,
           steps_run - RUNS * STEPS, violations);
    fflush(stdout);
    cr_assert_eq(completed, RUNS, "every run completed");
    cr_assert_eq(elsewhere, 0, "no run left in another state");
    cr_assert_eq(wrong_output, 0, "every output right");
    cr_assert_eq(violations, 0, "no recorded step ran again");
    cr_assert_geq(steps_run, RUNS * STEPS);
    cr_assert_gt(kills, 0, "the test killed workers");
    cr_assert_not(sanitizer, "a sanitizer reported an error in a worker process");
    cr_assert(WIFEXITED(status), "supervisor exited after SIGTERM (status 0x%x)", status);
}
