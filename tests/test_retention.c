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

/* The run was claimed (its entry is gone: a lean run has no hash while queued), then removed. */
static int echo_hash_gone(void *arg)
{
    return wf_test_cmd_int(rc, "XLEN wf:{echo}:queue") == 0 &&
           wf_test_cmd_int(rc, "EXISTS %s", wf_run_native(arg)) == 0 &&
           wf_test_cmd_int(rc, "ZCARD wf:{echo}:leases") == 0;
}

/* A workflow's own retention, set with `wf retention` for every worker at once: echo keeps none
 * of its completed runs, fatal keeps only its last failed one; the API reads back what the CLI
 * set. */
Test(retention, per_workflow_policies_set_by_the_cli)
{
    char *wf = wf_test_path("wf"), *out = NULL;
    const char *none[] = {wf,     "--redis", srv.url, "retention", "echo", "--completed",
                          "none", "--force", NULL};
    cr_assert_eq(wf_test_run(none, NULL, NULL, &out, 10000), 0, "%s", out);
    cr_assert(strstr(out, "none: removed as they end"), "%s", out);
    free(out);
    const char *last[] = {wf,      "--redis",  srv.url,  "--json",  "retention",
                          "fatal", "--failed", "last:1", "--force", NULL};
    cr_assert_eq(wf_test_run(last, NULL, NULL, &out, 10000), 0, "%s", out);
    cr_assert(strstr(out, "\"keepLast\":1"), "%s", out);
    free(out);
    const char *bad[] = {wf,     "--redis",     srv.url,  "retention",
                         "echo", "--completed", "last:0", NULL};
    cr_assert_eq(wf_test_run(bad, NULL, NULL, &out, 10000), 1, "a usage error: %s", out);
    free(out);
    free(wf);
    wf_retention c = {0}, fl = {0};
    wf_error err = {0};
    cr_assert_eq(wf_workflow_retention_get(cl, "fatal", &c, &fl, &err), WF_OK, "%s", err.message);
    cr_assert_eq(fl.keep_last, 1);
    cr_assert_eq(c.keep_last + c.keep_ms + c.keep_none, 0, "completed: the default");
    wf_retention wrong = {.keep_none = 1, .keep_ms = 5};
    cr_assert_eq(wf_workflow_retention_set(cl, "echo", &wrong, NULL, &err), WF_ERR_INVALID);

    start_worker();
    wf_run *ok = start("echo");
    cr_assert(wf_test_wait(echo_hash_gone, ok, 10000), "a completed echo run is removed");
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed"), 0);
    wf_status st;
    cr_assert_eq(wf_run_status(ok, &st, &err), WF_ERR_NOT_FOUND, "%s", err.message);
    wf_run *f[3];
    for (int i = 0; i < 3; i++) { /* one after the other: each is seen failed before it goes */
        f[i] = start("fatal");
        await_state(f[i], WF_STATE_FAILED, 10000);
    }
    wf_run *f1 = f[0], *f2 = f[1], *f3 = f[2];
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{fatal}:state:failed"), 1, "only the last kept");
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS %s", wf_run_native(f3)), 1, "the newest");
    wf_run_free(ok);
    wf_run_free(f1);
    wf_run_free(f2);
    wf_run_free(f3);
}
