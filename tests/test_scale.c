/* test_scale.c - horizontal scaling under load: wf-worker supervisors started "as if on several
 * hosts" (each its own process group with its own log; consumer names differ by pid), added and
 * removed while runs flow: one host at first, two more mid-run, then one leaves cleanly (SIGTERM:
 * drains) and one dies (SIGKILL of its whole process group: its leases expire and the others
 * reclaim its runs). At the end no run is lost, every run completed exactly once with the right
 * output, no recorded step ran again, and every host did part of the work. Prints its counts. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "wf_internal.h"

#define RUNS  400
#define HOSTS 3

static wf_test_redis srv;
static redisContext *rc;
static char dir[256];
static pid_t hosts[HOSTS];

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0);
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    wf_test_temp_dir(dir, sizeof dir, "scale");
    memset(hosts, 0, sizeof hosts);
}

static void teardown(void)
{
    for (int i = 0; i < HOSTS; i++)
        if (hosts[i] > 0) {
            kill(-hosts[i], SIGKILL); /* a failed test: the whole group, no orphans */
            wf_test_kill(hosts[i], SIGKILL, 5000);
        }
    redisFree(rc);
    wf_test_redis_stop(&srv);
    wf_test_remove_tree(dir);
}

TestSuite(scale, .init = setup, .fini = teardown, .timeout = 120);

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts "host" i: a supervisor with one worker process of 4 slots, 1 s leases. */
static void start_host(int i)
{
    char log[320], exec_env[340], port_env[64];
    snprintf(log, sizeof log, "%s/host%d.log", dir, i);
    snprintf(exec_env, sizeof exec_env, "WF_TEST_EXEC_LOG=%s/exec.log", dir);
    snprintf(port_env, sizeof port_env, "WF_TEST_REDIS_PORT=%d", srv.port);
    const char *args[] = {"--processes", "1", "--concurrency", "4", "--lease-ms", "1000", NULL};
    const char *env[] = {exec_env, port_env, NULL};
    /* No wait here: the test starts its hosts together and waits for them once (registered). */
    hosts[i] = wf_test_worker_start(
        &(wf_test_worker){.redis_url = srv.url, .extra = args, .env = env, .log_path = log});
}

static int registered(void *arg)
{
    (void)arg;
    return wf_test_registered(rc, (const char *const[]){"stepper", NULL});
}

static int all_completed(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed") == RUNS;
}

Test(scale, add_and_remove_hosts_under_load)
{
    start_host(0);
    cr_assert(wf_test_wait(registered, NULL, 10000));
    wf_error err = {0};
    wf_client *cl = wf_test_client(srv.url);
    const char *json = "{\"n\":3,\"work_ms\":30}";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, &sb, &err), WF_OK);
    wf_run **runs = calloc(RUNS, sizeof *runs);
    const void *payloads[RUNS];
    size_t lens[RUNS];
    for (int i = 0; i < RUNS; i++) {
        payloads[i] = sb.data;
        lens[i] = sb.size;
    }
    cr_assert_eq(wf_run_workflow_batch(cl, "stepper", RUNS, payloads, lens, NULL, runs, &err),
                 WF_OK, "%s", err.message);
    msgpack_sbuffer_destroy(&sb);

    /* One host for a second, then two more join. */
    nap_ms(1000);
    long long done_alone = wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed");
    start_host(1);
    start_host(2);
    nap_ms(1500);
    /* Host 1 leaves cleanly: SIGTERM drains it (its runs finish), exit 0. */
    int status = wf_test_kill(hosts[1], SIGTERM, 30000);
    hosts[1] = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "host 1 drained (0x%x)", status);
    /* Host 2 dies with runs in hand: SIGKILL of its supervisor and worker together. */
    long long left = RUNS - wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed");
    cr_assert_gt(left, 20, "still under load when host 2 dies (%lld runs left)", left);
    kill(-hosts[2], SIGKILL);
    wf_test_kill(hosts[2], SIGKILL, 5000);
    hosts[2] = 0;

    cr_assert(wf_test_wait(all_completed, NULL, 60000), "all %d runs completed (%lld did)", RUNS,
              wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed"));
    status = wf_test_kill(hosts[0], SIGTERM, 30000);
    hosts[0] = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "host 0 drained (0x%x)", status);

    /* Every run: completed once (in the completed index and no other), right output. */
    long long elsewhere = wf_test_not_completed(rc, "stepper");
    long long reclaims = 0;
    int wrong = 0, nworkers = 0;
    char workers[16][96];
    for (int i = 0; i < RUNS; i++) {
        wf_status st;
        cr_assert_eq(wf_run_status(runs[i], &st, &err), WF_OK, "run %d lost: %s", i, err.message);
        wrong += !wf_test_completed_with(&st, "{\"sum\":30,\"event\":null}");
        char *score =
            wf_test_cmd_str(rc, "ZSCORE wf:{stepper}:state:completed %s", wf_run_id(runs[i]));
        cr_assert_not_null(score, "run %s is in the completed index", wf_run_id(runs[i]));
        free(score);
        reclaims += wf_test_raw_field(&st, "reclaims");
        int k = 0;
        while (k < nworkers && st.worker && strcmp(workers[k], st.worker) != 0) k++;
        if (st.worker && k == nworkers && nworkers < 16)
            snprintf(workers[nworkers++], sizeof workers[0], "%s", st.worker);
        wf_status_clear(&st);
        wf_run_free(runs[i]);
    }
    free(runs);
    wf_client_free(cl);

    char path[320];
    snprintf(path, sizeof path, "%s/exec.log", dir);
    char *exec = wf_test_slurp(path);
    int steps = wf_test_count(exec, "STEP "), violations = wf_test_count(exec, "VIOLATION");
    free(exec);
    int sanitizer = 0;
    for (int i = 0; i < HOSTS; i++) {
        snprintf(path, sizeof path, "%s/host%d.log", dir, i);
        if (!wf_test_log_quiet(path, 0)) sanitizer = 1;
    }
    printf("scale test: runs=%d completed_by_1_host_in_1s=%lld workers_that_completed_runs=%d "
           "elsewhere=%lld wrong_output=%d reclaims=%lld step_executions=%d (minimum %d) "
           "recorded_steps_rerun=%d\n",
           RUNS, done_alone, nworkers, elsewhere, wrong, reclaims, steps, RUNS * 3, violations);
    fflush(stdout);
    cr_assert_eq(elsewhere, 0, "no run left in another state");
    cr_assert_eq(wrong, 0, "every run completed with the right output");
    cr_assert_eq(violations, 0, "no recorded step ran again");
    cr_assert_geq(steps, RUNS * 3);
    cr_assert_geq(nworkers, 3, "every host completed runs (%d workers did)", nworkers);
    cr_assert_gt(reclaims, 0, "the killed host held runs, which were reclaimed");
    cr_assert_not(sanitizer, "a sanitizer reported an error in a worker process");
}
