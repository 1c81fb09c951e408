/* test_retention.c - finished runs go away after the retention time, from every key: the run
 * hash expires (PEXPIRE at the end) and the final state indexes lose their members even when no
 * later run ends in them (worker/timers.c prunes them), so `wf stats` and `wf list` stop counting
 * runs that are gone. Real redis-server, real wf-worker on tests/workflows. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_env.h"

#define RETENTION_MS 1500

static void setup(void)
{
    pool_env_setup("retention");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(retention, .init = setup, .fini = teardown, .timeout = 60);

static void start_worker(void)
{
    char url[512];
    snprintf(url, sizeof url, "%s%cretention_ms=%d", srv.url, strchr(srv.url, '?') ? '&' : '?',
             RETENTION_MS);
    const char *names[] = {"echo", "fatal", NULL};
    const char *extra[] = {"--processes", "1", NULL};
    const char *env[] = {exec_env, port_env, NULL};
    worker_pid = wf_test_worker_start(&(wf_test_worker){.redis_url = url,
                                                        .extra = extra,
                                                        .env = env,
                                                        .log_path = log_path,
                                                        .rc = rc,
                                                        .workflows = names});
}

static wf_run *start(const char *workflow)
{
    wf_error err = {0};
    wf_run *run = wf_run_workflow(cl, workflow, "\x81\xa1x\x01", 4, &err); /* {"x":1} */
    cr_assert_not_null(run, "%s", err.message);
    return run;
}

/* Completed runs of echo as wf_workflow_stats (wf stats) counts them. */
static long long completed_count(void)
{
    wf_stats *stats = NULL;
    size_t n = 0;
    wf_error err = {0};
    cr_assert_eq(wf_workflow_stats(cl, "echo", &stats, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    long long c = stats[0].count[WF_STATE_COMPLETED];
    wf_stats_free(stats, n);
    return c;
}

static int indexes_empty(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed") == 0 &&
           wf_test_cmd_int(rc, "ZCARD wf:{fatal}:state:failed") == 0;
}

Test(retention, final_indexes_forget_expired_runs_without_a_later_end)
{
    start_worker();
    wf_run *ok = start("echo"), *bad = start("fatal");
    await_state(ok, WF_STATE_COMPLETED, 10000);
    await_state(bad, WF_STATE_FAILED, 10000);
    /* Kept for the retention time: still listed and counted. */
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed"), 1);
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{fatal}:state:failed"), 1);
    cr_assert_eq(completed_count(), 1, "wf_workflow_stats counts it");

    /* No other run ends: only the worker's periodic prune can empty the indexes. */
    cr_assert(wf_test_wait(indexes_empty, NULL, 4 * RETENTION_MS + 5000),
              "expired runs still counted: completed %lld, failed %lld",
              wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed"),
              wf_test_cmd_int(rc, "ZCARD wf:{fatal}:state:failed"));
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS %s", wf_run_native(ok)), 0, "the hash expired");
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS %s", wf_run_native(bad)), 0, "the hash expired");
    cr_assert_eq(completed_count(), 0, "wf_workflow_stats no longer counts it");
    wf_run_free(ok);
    wf_run_free(bad);
}
