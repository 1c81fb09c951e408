/* test_run_events.c - a run's history as the scripts record it (the run hash's fields evN,
 * lib_history.lua ev_fields; wf_run_events) and a stop with a reason (wf_run_stop_reason): a real
 * wf-worker on the test workflows (worker_env.h) retries, pauses, resumes, restarts and stops runs,
 * and the history lists each transition once, in order, with its details. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_env.h"

TestSuite(runev, .init = worker_setup, .fini = worker_teardown, .timeout = 120);

/* A run's events as wf_run_events gives them, and their kinds joined by spaces. */
struct history {
    wf_run_event *ev;
    size_t n;
    char kinds[256];
};

/* Loads `run`'s history into `h` (history_free frees it), checking that the events come in
 * order with Redis times; returns h->kinds. */
static const char *history(wf_run *run, struct history *h)
{
    wf_error err = {0};
    cr_assert_eq(wf_run_events(run, &h->ev, &h->n, &err), WF_OK, "%s", err.message);
    h->kinds[0] = '\0';
    for (size_t i = 0; i < h->n; i++) {
        if (i > 0) cr_assert_geq(h->ev[i].at_ms, h->ev[i - 1].at_ms, "in order");
        cr_assert_gt(h->ev[i].at_ms, 1700000000000LL, "a Redis time");
        size_t used = strlen(h->kinds);
        snprintf(h->kinds + used, sizeof h->kinds - used, "%s%s", i ? " " : "", h->ev[i].kind);
    }
    return h->kinds;
}

static void history_free(struct history *h)
{
    wf_run_events_free(h->ev, h->n);
}

Test(runev, a_plain_run_records_nothing_and_shows_its_timestamps)
{
    worker_pid = start_worker(NULL);
    wf_run *run = start_run_int("echo", 1);
    await_state(run, WF_STATE_COMPLETED, 10000);
    /* The plain path writes no event field: the hash is what it was before histories. */
    cr_assert_eq(wf_test_cmd_int(rc, "HEXISTS %s evn", wf_run_native(run)), 0);
    struct history h;
    cr_assert_str_eq(history(run, &h), "enqueued started completed");
    cr_assert(strstr(h.ev[1].detail, "attempt 1 on "), "%s", h.ev[1].detail);
    wf_status st = {0};
    wf_error err = {0};
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    cr_assert_eq(h.ev[0].at_ms, st.created_at_ms);
    cr_assert_eq(h.ev[2].at_ms, st.finished_at_ms);
    wf_status_clear(&st);
    history_free(&h);
    wf_run_free(run);
}

Test(runev, retry_then_complete)
{
    worker_pid = start_worker(NULL);
    wf_run *run = start_run_int("flaky", 1);
    await_state(run, WF_STATE_COMPLETED, 10000);
    struct history h;
    cr_assert_str_eq(history(run, &h), "enqueued started retried started completed");
    cr_assert_null(h.ev[0].detail);
    cr_assert(strstr(h.ev[1].detail, "attempt 1 on "), "%s", h.ev[1].detail);
    cr_assert(strstr(h.ev[2].detail, "attempt 1: flaky: attempt 1 fails; attempt 2 at "), "%s",
              h.ev[2].detail);
    cr_assert(strstr(h.ev[3].detail, "attempt 2 on "), "%s", h.ev[3].detail);
    cr_assert_null(h.ev[4].detail);
    history_free(&h);
    wf_run_free(run);
}

Test(runev, pause_resume_and_stop_with_a_reason)
{
    worker_pid = start_worker(NULL);
    wf_run *run = start_slow_running(20000);
    wf_error err = {0};
    cr_assert_eq(wf_run_pause(run, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_run_resume(run, &err), WF_OK, "%s", err.message);
    await_state(run, WF_STATE_RUNNING, 10000);
    cr_assert_eq(wf_run_stop_reason(run, "deploy in progress", &err), WF_OK, "%s", err.message);
    wf_status st;
    wait_state(run, WF_STATE_CANCELLED, 1000, &st);
    cr_assert_str_eq(st.error, "stopped by request: deploy in progress");
    wf_status_clear(&st);
    struct history h;
    cr_assert_str_eq(history(run, &h), "enqueued started paused resumed started stopped");
    cr_assert_str_eq(h.ev[2].detail, "was running");
    cr_assert_str_eq(h.ev[3].detail, "now queued");
    cr_assert_str_eq(h.ev[5].detail, "stopped by request: deploy in progress");
    history_free(&h);

    char *long_reason = malloc(2000);
    memset(long_reason, 'x', 1999);
    long_reason[1999] = '\0';
    cr_assert_eq(wf_run_stop_reason(run, long_reason, &err), WF_ERR_INVALID);
    free(long_reason);
    cr_assert_eq(wf_run_stop_reason(run, "again", &err), WF_ERR_FINAL);
    wf_run_free(run);
}

Test(runev, restart_keeps_the_history_and_plain_stop)
{
    worker_pid = start_worker(NULL);
    wf_run *run = start_run_int("echo", 5);
    await_state(run, WF_STATE_COMPLETED, 10000);
    wf_error err = {0};
    cr_assert_eq(wf_run_restart(run, 1, &err), WF_OK, "%s", err.message);
    await_state(run, WF_STATE_COMPLETED, 10000);
    struct history h;
    cr_assert_str_eq(history(run, &h), "enqueued started completed restarted started completed");
    cr_assert_str_eq(h.ev[3].detail, "was completed; attempt 2, steps cleared");
    cr_assert(strstr(h.ev[4].detail, "attempt 2 on "), "%s", h.ev[4].detail);
    history_free(&h);
    /* Short events keep the run hash in Redis's compact encoding (lib_history.lua ev_fields). */
    char *enc = wf_test_cmd_str(rc, "OBJECT ENCODING %s", wf_run_native(run));
    cr_assert_str_eq(enc, "listpack");
    free(enc);
    wf_run_free(run);

    /* A delayed run stopped without a reason. */
    wf_run *later =
        wf_run_workflow_ex(cl, "echo", NULL, 0, &(wf_run_options){.delay_ms = 60000}, &err);
    cr_assert_not_null(later, "%s", err.message);
    cr_assert_eq(wf_run_stop(later, &err), WF_OK, "%s", err.message);
    cr_assert_str_eq(history(later, &h), "enqueued stopped");
    cr_assert(strstr(h.ev[0].detail, "due at "), "%s", h.ev[0].detail);
    cr_assert_str_eq(h.ev[1].detail, "stopped by request");
    history_free(&h);

    /* A run with no recorded event (one that just ran, or one written by an older wf) shows the
     * events its timestamps tell; a run that is gone is not found. */
    cr_assert_eq(wf_test_cmd_int(rc, "HDEL %s ev1 ev2 evn", wf_run_native(later)), 3);
    cr_assert_str_eq(history(later, &h), "enqueued cancelled");
    cr_assert_null(h.ev[0].detail);
    history_free(&h);
    cr_assert_eq(wf_test_cmd_int(rc, "DEL %s", wf_run_native(later)), 1);
    cr_assert_eq(wf_run_events(later, &h.ev, &h.n, &err), WF_ERR_NOT_FOUND);
    wf_run_events_free(NULL, 0);
    wf_run_free(later);
}

Test(runev, cli_stop_with_a_reason)
{
    worker_pid = start_worker(NULL);
    wf_error err = {0};
    wf_run *run =
        wf_run_workflow_ex(cl, "echo", NULL, 0, &(wf_run_options){.delay_ms = 60000}, &err);
    cr_assert_not_null(run, "%s", err.message);
    char *wf = wf_test_path("wf");
    const char *argv[] = {wf,         "--redis",   srv.url, "stop", wf_run_id(run),
                          "--reason", "bad input", NULL};
    char *out = NULL;
    cr_assert_eq(wf_test_run(argv, NULL, NULL, &out, 30000), 0, "%s", out);
    cr_assert(strstr(out, "stopped by request: bad input"), "%s", out);
    free(out);
    free(wf);
    struct history h;
    cr_assert_str_eq(history(run, &h), "enqueued stopped");
    cr_assert_str_eq(h.ev[1].detail, "stopped by request: bad input");
    history_free(&h);
    wf_run_free(run);
}

Test(runev, a_long_history_keeps_the_newest_50)
{
    wf_error err = {0};
    cr_assert_eq(wf_test_cmd_int(rc, "HSET wf:workflows echo {}"), 1);
    wf_run *run =
        wf_run_workflow_ex(cl, "echo", NULL, 0, &(wf_run_options){.delay_ms = 600000}, &err);
    cr_assert_not_null(run, "%s", err.message);
    for (int i = 0; i < 30; i++) {
        cr_assert_eq(wf_run_pause(run, &err), WF_OK, "%s", err.message);
        cr_assert_eq(wf_run_resume(run, &err), WF_OK, "%s", err.message);
    }
    wf_run_event *ev = NULL;
    size_t n = 0;
    cr_assert_eq(wf_run_events(run, &ev, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 50, "61 events, the newest 50 kept");
    cr_assert_str_eq(ev[0].kind, "paused", "event 12, the 6th pause");
    cr_assert_str_eq(ev[49].kind, "resumed");
    cr_assert_str_eq(ev[49].detail, "now waiting");
    wf_run_events_free(ev, n);
    cr_assert_eq(wf_test_cmd_int(rc, "HEXISTS %s ev11", wf_run_native(run)), 0);
    cr_assert_eq(wf_test_cmd_int(rc, "HEXISTS %s ev12", wf_run_native(run)), 1);
    wf_run_free(run);
}
