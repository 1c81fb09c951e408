/* test_workflow_pause.c - pausing a whole workflow (wf_workflow_pause / wf_workflow_resume, `wf
 * pause-workflow`): a real wf-worker on the test workflows (worker_env.h) claims no queued run of
 * a paused workflow while it goes on with other workflows and with runs already running; the
 * entries it read stay pending, read once (no busy loop); on resume every run completes, once.
 * Runs in both modes (the cluster twin). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_env.h"

TestSuite(wfpause, .init = worker_setup, .fini = worker_teardown, .timeout = 120);

static wf_stats one_stats(const char *workflow)
{
    wf_stats *s = NULL;
    size_t n = 0;
    wf_error err = {0};
    cr_assert_eq(wf_workflow_stats(cl, workflow, &s, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    wf_stats copy = s[0];
    copy.workflow = NULL;
    wf_stats_free(s, n);
    return copy;
}

/* Every pending entry of P:{echo}:queue was delivered exactly once: nothing re-read them while
 * the workflow was paused. Returns how many are pending. */
static long long pending_read_once(void)
{
    redisReply *r = wf_test_command(rc, "XPENDING wf:{echo}:queue workers - + 100");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "XPENDING: %s", r ? r->str : "no reply");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        cr_assert(e->type == REDIS_REPLY_ARRAY && e->elements == 4);
        cr_assert_eq(e->element[3]->integer, 1, "entry %s delivered %lld times", e->element[0]->str,
                     e->element[3]->integer);
    }
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

Test(wfpause, queued_runs_wait_until_resume)
{
    enum { N = 5 };
    worker_pid = start_worker(NULL);
    wf_error err = {0};
    cr_assert_eq(wf_workflow_pause(cl, "echo", &err), WF_OK, "%s", err.message);
    cr_assert_eq(one_stats("echo").paused, 1);
    wf_run *runs[N];
    for (int i = 0; i < N; i++) runs[i] = start_run_int("echo", i);
    wait_log("workflow echo is paused", 10000);
    /* The worker goes on with the other workflows: a run of slow starts and completes. */
    wf_run *other = start_run_int("slow", 1);
    await_state(other, WF_STATE_COMPLETED, 10000);
    wf_run_free(other);
    for (int i = 0; i < N; i++) {
        assert_state_now(runs[i], WF_STATE_QUEUED);
        cr_assert_eq(exec_count(wf_run_id(runs[i])), 0, "run %d executed while paused", i);
    }
    cr_assert_geq(pending_read_once(), 1, "the worker read at least one entry, then stopped");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), N, "every entry is still there");
    wf_stats s = one_stats("echo");
    cr_assert_eq(s.paused, 1);
    cr_assert_eq(s.count[WF_STATE_QUEUED], N);

    cr_assert_eq(wf_workflow_resume(cl, "echo", &err), WF_OK, "%s", err.message);
    cr_assert_eq(one_stats("echo").paused, 0);
    for (int i = 0; i < N; i++) {
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        expect_output(runs[i], 15000, want);
        cr_assert_eq(exec_count(wf_run_id(runs[i])), 1, "run %d executed once", i);
        wf_run_free(runs[i]);
    }
    wait_log("workflow echo resumed", 1000);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
}

Test(wfpause, running_run_goes_on_and_enqueue_goes_on)
{
    worker_pid = start_worker(NULL);
    wf_run *running = start_slow_running(800);
    wf_error err = {0};
    cr_assert_eq(wf_workflow_pause(cl, "slow", &err), WF_OK, "%s", err.message);
    wf_run *queued = start_run_int("slow", 1);
    await_state(running, WF_STATE_COMPLETED, 10000);
    wait_log("workflow slow is paused", 10000);
    assert_state_now(queued, WF_STATE_QUEUED);
    cr_assert_eq(wf_workflow_resume(cl, "slow", &err), WF_OK, "%s", err.message);
    await_state(queued, WF_STATE_COMPLETED, 10000);
    wf_run_free(running);
    wf_run_free(queued);
}

/* A worker that starts while the workflow is paused claims nothing of it either. */
Test(wfpause, worker_started_while_paused)
{
    wf_error err = {0};
    cr_assert_eq(wf_workflow_pause(cl, "echo", &err), WF_OK, "%s", err.message);
    char p[16];
    size_t len = pack_int(p, 7);
    wf_run *run =
        wf_run_workflow_ex(cl, "echo", p, len, &(wf_run_options){.allow_unregistered = 1}, &err);
    cr_assert_not_null(run, "%s", err.message);
    worker_pid = start_worker(NULL);
    wait_log("workflow echo is paused", 10000);
    assert_state_now(run, WF_STATE_QUEUED);
    cr_assert_eq(wf_workflow_resume(cl, "echo", &err), WF_OK, "%s", err.message);
    expect_output(run, 15000, "7");
    wf_run_free(run);
}

Test(wfpause, idempotent_and_kept_by_flow_limits)
{
    wf_error err = {0};
    cr_assert_eq(wf_workflow_pause(cl, "echo", &err), WF_OK, "%s", err.message);
    char *at = wf_test_cmd_str(rc, "HGET wf:{echo}:limits paused");
    cr_assert_not_null(at);
    cr_assert_eq(wf_workflow_pause(cl, "echo", &err), WF_OK, "%s", err.message);
    char *again = wf_test_cmd_str(rc, "HGET wf:{echo}:limits paused");
    cr_assert_str_eq(again, at, "a second pause keeps the first one's time");
    free(at);
    free(again);
    /* Setting and clearing limits leaves the pause alone. */
    wf_flow_limits l = {.max_running = 3};
    cr_assert_eq(wf_flow_set(cl, "echo", &l, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_flow_set(cl, "echo", NULL, &err), WF_OK, "%s", err.message);
    cr_assert_eq(one_stats("echo").paused, 1);
    wf_flow_limits got;
    cr_assert_eq(wf_flow_get(cl, "echo", &got, NULL, 0, NULL, &err), WF_OK, "%s", err.message);
    cr_assert_eq(got.max_running, 0);
    cr_assert_eq(wf_workflow_resume(cl, "echo", &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_workflow_resume(cl, "echo", &err), WF_OK, "%s", err.message);
    cr_assert_eq(one_stats("echo").paused, 0);
    cr_assert_eq(wf_workflow_pause(cl, "no such", &err), WF_ERR_BAD_NAME);
    cr_assert_eq(wf_workflow_resume(cl, "{x}", &err), WF_ERR_BAD_NAME);
    cr_assert_eq(wf_workflow_pause(NULL, "echo", &err), WF_ERR_INVALID);
}

Test(wfpause, cli_pause_and_resume)
{
    worker_pid = start_worker(NULL);
    char *out = NULL;
    cr_assert_eq(wf_cli(&out, (const char *[]){"pause-workflow", "echo", NULL}), 0, "%s", out);
    cr_assert(strstr(out, "echo: paused"), "%s", out);
    free(out);
    cr_assert_eq(one_stats("echo").paused, 1);
    cr_assert_eq(wf_cli(&out, (const char *[]){"stats", NULL}), 0, "%s", out);
    cr_assert(strstr(out, "echo is paused"), "%s", out);
    free(out);
    cr_assert_eq(wf_cli(&out, (const char *[]){"--json", "resume-workflow", "echo", NULL}), 0, "%s",
                 out);
    cr_assert(strstr(out, "\"paused\": false") || strstr(out, "\"paused\":false"), "%s", out);
    free(out);
    cr_assert_eq(one_stats("echo").paused, 0);
    /* A name no worker registered is refused unless --force. */
    cr_assert_eq(wf_cli(&out, (const char *[]){"pause-workflow", "ecoh", NULL}), 6, "%s", out);
    free(out);
    cr_assert_eq(one_stats("ecoh").paused, 0);
    cr_assert_eq(wf_cli(&out, (const char *[]){"pause-workflow", "ecoh", "--force", NULL}), 0, "%s",
                 out);
    free(out);
    cr_assert_eq(one_stats("ecoh").paused, 1);
}
