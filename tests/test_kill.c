/* test_kill.c - the kill test: a pool of worker processes runs 1,000 five-step runs while worker
 * processes are SIGKILLed at random every 300 ms. At the end every run is completed with the right
 * output, none is left anywhere else, and no step whose result Redis had recorded ran again (each
 * step body asks Redis before doing its work; see tests/workflows/stepper.c). Prints its counts. */
#include <time.h>

#include "pool_env.h"

#define RUNS  1000
#define STEPS 5

static void setup(void)
{
    pool_env_setup("kill");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(kill, .init = setup, .fini = teardown, .timeout = 600);

static const char *const stepper[] = {"stepper", NULL};

static int all_completed(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed") == RUNS;
}

Test(kill, thousand_runs_survive_random_sigkills)
{
    const char *args[] = {"--processes", "3", "--concurrency", "8", "--lease-ms", "1000", NULL};
    pid_t sup = worker_pid = pool_env_worker(args, NULL, stepper);

    char **ids = calloc(RUNS, sizeof(char *));
    for (int i = 0; i < RUNS; i++) {
        wf_run *run = wf_test_start_json(cl, "stepper", "{\"n\":5,\"work_ms\":20}", NULL);
        ids[i] = strdup(wf_run_id(run));
        wf_run_free(run);
    }

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
    int status = pool_env_stop_worker();

    long long completed = wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed");
    long long elsewhere = wf_test_not_completed(rc, "stepper");
    long long reclaims = 0;
    int wrong_output = 0;
    for (int i = 0; i < RUNS; i++) {
        wf_status st;
        wf_test_status_of(cl, ids[i], &st);
        wrong_output += !wf_test_completed_with(&st, "{\"sum\":100,\"event\":null}");
        reclaims += wf_test_raw_field(&st, "reclaims");
        wf_status_clear(&st);
        free(ids[i]);
    }
    free(ids);

    char *exec = wf_test_slurp(exec_path);
    int steps_run = wf_test_count(exec, "STEP ");
    int violations = wf_test_count(exec, "VIOLATION");
    free(exec);
    int sanitizer = !wf_test_log_quiet(log_path, 0);

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

static int claim_read_late(void *arg)
{
    (void)arg;
    char *log = wf_test_slurp(log_path);
    /* handed back at its first step (fenced), or run and its result dropped */
    int done =
        log && (strstr(log, "stalled past the run's lease") || strstr(log, "result dropped"));
    free(log);
    return done;
}

/* A process that froze with a claim's reply unread must not run a step body once it reads it:
 * the lease began when Redis ran the claim, and meanwhile another worker took the run over and
 * recorded the step (the chaos suite's `pause` scenario found bodies run again this way). Two
 * processes, a 1 s lease; the one that first claims run "late" reads the reply 3 s later
 * (WF_TEST_STALL_CLAIM_RUN), after the other has reclaimed the run and finished it. */
Test(kill, a_claim_reply_read_after_the_lease_runs_no_recorded_step)
{
    const char *args[] = {"--processes", "2", "--concurrency", "2", "--lease-ms", "1000", NULL};
    pid_t sup = worker_pid = pool_env_worker(args, "WF_TEST_STALL_CLAIM_RUN=stepper:late", stepper);
    (void)sup;
    wf_run_options opt = {.id = "late"};
    wf_run *run = wf_test_start_json(cl, "stepper", "{\"n\":2}", &opt);
    wf_status st;
    wf_test_wait_state(run, WF_STATE_COMPLETED, 20000, &st, log_path);
    cr_assert_eq(wf_test_raw_field(&st, "reclaims"), 1, "taken over once");
    wf_status_clear(&st);
    cr_assert(wf_test_wait(claim_read_late, NULL, 20000),
              "the stalled process read its claim and dropped the run");
    wf_run_free(run);
    pool_env_stop_worker();
    char *exec = wf_test_slurp(exec_path);
    int violations = wf_test_count(exec, "VIOLATION");
    free(exec);
    cr_assert_eq(violations, 0, "a step recorded by the other process ran again");
}
