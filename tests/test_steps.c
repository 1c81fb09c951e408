/* test_steps.c - durable execution end to end: steps that replay, durable sleeps that free the
 * worker slot, step retries, event waits (including an event sent before the wait), stop, pause,
 * resume and restart of waiting runs, against a real redis-server and real wf-worker processes. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool_env.h"

static void setup(void)
{
    pool_env_setup("steps");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(steps, .init = setup, .fini = teardown, .timeout = 180);

static pid_t start_worker(const char *processes, const char *concurrency, const char *lease)
{
    const char *args[] = {"--processes", processes, "--concurrency", concurrency, "--lease-ms",
                          lease,         NULL};
    return pool_env_worker(args, NULL, (const char *const[]){"stepper", "echo", NULL});
}

/* Starts `stepper` with a JSON input. */
static wf_run *start(const char *json)
{
    return wf_test_start_json(cl, "stepper", json, NULL);
}

/* The usual worker (one process, two slots, a 15 s lease) and a run of `stepper` on `json`,
 * waited for (timeout_ms at most) until it is in `state`, its status in *st. */
static wf_run *start_until(const char *json, wf_state state, int timeout_ms, wf_status *st)
{
    worker_pid = start_worker("1", "2", "15000");
    wf_run *run = start(json);
    wait_state(run, state, timeout_ms, st);
    return run;
}

/* Lines of the exec log equal to "WHAT RUNID STEP". */
static int count_lines(const char *what, const char *id, const char *step)
{
    char line[400];
    snprintf(line, sizeof line, "%s %s %s\n", what, id, step);
    char *log = wf_test_slurp(exec_path);
    int n = 0;
    for (char *p = log; (p = strstr(p, line)); p += strlen(line))
        if (p == log || p[-1] == '\n') n++;
    free(log);
    return n;
}

static int count_violations(void)
{
    char *log = wf_test_slurp(exec_path);
    int n = 0;
    for (char *p = log; (p = strstr(p, "VIOLATION")); p++) n++;
    free(log);
    return n;
}

/* ---- steps and sleeps ------------------------------------------------------------------------ */

Test(steps, sleep_holds_no_slot_and_replays_finished_steps)
{
    worker_pid = start_worker("1", "1", "15000");
    wf_run *sleeper = start("{\"n\":3,\"sleep_ms\":2000}");
    wf_status st;
    wait_state(sleeper, WF_STATE_WAITING, 10000, &st);
    cr_assert(strstr(st.wait_reason, "sleep nap until"), "reason: %s", st.wait_reason);
    cr_assert_gt(st.wake_at_ms, st.created_at_ms + 1500, "wake time shown");
    wf_status_clear(&st);
    /* With one slot, another run completes while the sleeper waits: it holds no slot. */
    wf_error err = {0};
    wf_run *other = wf_run_workflow(cl, "echo", NULL, 0, &err);
    cr_assert_not_null(other);
    await_state(other, WF_STATE_COMPLETED, 1500);
    wf_status st2;
    cr_assert_eq(wf_run_status(sleeper, &st2, NULL), WF_OK);
    cr_assert_eq(st2.state, WF_STATE_WAITING, "still asleep while the other run finished");
    wf_status_clear(&st2);

    wait_state(sleeper, WF_STATE_COMPLETED, 10000, &st);
    cr_assert_geq(st.finished_at_ms - st.created_at_ms, 2000, "slept at least 2 s");
    char *json = output_json(&st);
    cr_assert_str_eq(json, "{\"sum\":30,\"event\":null}");
    free(json);
    wf_status_clear(&st);
    /* s#0 ran before the sleep and was replayed after it, not executed again. */
    cr_assert_eq(count_lines("STEP", wf_run_id(sleeper), "s#0"), 1);
    cr_assert_eq(count_lines("STEP", wf_run_id(sleeper), "s#1"), 1);
    cr_assert_eq(count_violations(), 0);
    wf_run_free(other);
    wf_run_free(sleeper);
}

Test(steps, step_retries_durably_then_succeeds)
{
    wf_status st;
    wf_run *run = start_until("{\"n\":1,\"flaky\":3}", WF_STATE_COMPLETED, 15000, &st);
    cr_assert_eq(st.attempt, 1, "step retries are not run attempts");
    wf_status_clear(&st);
    cr_assert_eq(count_lines("STEP", wf_run_id(run), "flaky"), 3);
    cr_assert_eq(count_lines("STEP", wf_run_id(run), "s#0"), 1, "replayed across step retries");
    wf_run_free(run);
}

Test(steps, step_out_of_attempts_fails_the_run)
{
    /* The flaky step needs 5 attempts but its policy allows 3. */
    wf_status st;
    wf_run *run = start_until("{\"n\":0,\"flaky\":5,\"flaky_max\":3}", WF_STATE_FAILED, 60000, &st);
    cr_assert(strstr(st.error, "step 'flaky' failed after 3 attempts"), "error: %s", st.error);
    cr_assert_eq(st.attempt, 1, "a step out of attempts fails the run at once");
    wf_status_clear(&st);
    wf_run_free(run);
}

/* ---- events ---------------------------------------------------------------------------------- */

Test(steps, event_wakes_a_waiting_run_with_its_payload)
{
    wf_status st;
    wf_run *run = start_until("{\"n\":1,\"event\":\"shipped\",\"key\":\"A-1\"}", WF_STATE_WAITING,
                              10000, &st);
    cr_assert(strstr(st.wait_reason, "event shipped key A-1"), "reason: %s", st.wait_reason);
    wf_status_clear(&st);
    wf_error err = {0};
    /* Another key does not wake it. */
    cr_assert_eq(wf_send_event_keyed(cl, "shipped", "B-2",
                                     "\xa3"
                                     "box",
                                     4, &err),
                 WF_OK);
    assert_state_now(run, WF_STATE_WAITING);
    cr_assert_eq(wf_send_event_keyed(cl, "shipped", "A-1",
                                     "\xa5"
                                     "truck",
                                     6, &err),
                 WF_OK, "%s", err.message);
    expect_output(run, 10000, "{\"sum\":0,\"event\":\"truck\"}");
    cr_assert_eq(count_lines("STEP", wf_run_id(run), "s#0"), 1);
    wf_run_free(run);
}

Test(steps, event_sent_before_the_wait_is_received)
{
    wf_error err = {0};
    /* No worker yet: the event is sent first, the run registers its wait afterwards. */
    cr_assert_eq(wf_send_event_keyed(cl, "paid", "X-9", "\x2a", 1, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_test_cmd_int(rc, "HSET wf:workflows stepper {}"), 1);
    wf_run *run = start("{\"n\":0,\"event\":\"paid\",\"key\":\"X-9\"}");
    worker_pid = start_worker("1", "2", "15000");
    expect_output(run, 10000, "{\"sum\":0,\"event\":42}");
    wf_run_free(run);
}

Test(steps, event_wait_times_out)
{
    worker_pid = start_worker("1", "2", "15000");
    wf_run *run = start("{\"n\":0,\"event\":\"never\",\"event_timeout_ms\":300}");
    expect_output(run, 10000, "{\"sum\":0,\"event\":\"timeout\"}");
    wf_run_free(run);
}

/* ---- deadlines, decided by Redis time ------------------------------------------------------- */

/* The usual worker and a run of stepper waiting for event `event` with a timeout; returns the run
 * with its deadline. */
static wf_run *waiting_for(const char *event, int timeout_ms, long long *deadline)
{
    worker_pid = start_worker("1", "2", "15000");
    char json[200];
    snprintf(json, sizeof json, "{\"n\":0,\"event\":\"%s\",\"event_timeout_ms\":%d}", event,
             timeout_ms);
    wf_run *run = start(json);
    wf_status st;
    wait_state(run, WF_STATE_WAITING, 10000, &st);
    *deadline = st.wake_at_ms; /* the wait's deadline is its timer */
    cr_assert_gt(*deadline, 0);
    wf_status_clear(&st);
    return run;
}

/* waiting_for, then the worker stopped (drained, exit 0): nothing serves the wait until a test
 * starts one again. */
static wf_run *waiting_with_no_worker(const char *event, int timeout_ms, long long *deadline)
{
    wf_run *run = waiting_for(event, timeout_ms, deadline);
    cr_assert_eq(pool_env_stop_worker(), 0);
    return run;
}

/* Sends event `event` with the payload 42 (msgpack). */
static void send_42(const char *event)
{
    wf_error err = {0};
    cr_assert_eq(wf_send_event(cl, event, "\x2a", 1, &err), WF_OK, "%s", err.message);
}

/* Else an event after the deadline satisfied the wait. */
static void expect_timeout(wf_run *run)
{
    expect_output(run, 10000, "{\"sum\":0,\"event\":\"timeout\"}");
}

Test(steps, event_just_after_the_deadline_does_not_satisfy_the_wait)
{
    /* Workers up: the event is sent the moment Redis time passes the deadline, before the
     * worker's 100 ms timer tick turns the wait into a timeout. */
    long long deadline = 0;
    wf_run *run = waiting_for("late", 500, &deadline);
    cr_assert(wf_test_wait_redis_ms(rc, deadline, 5000));
    send_42("late");
    expect_timeout(run);
    wf_run_free(run);
}

Test(steps, event_sent_while_no_worker_is_up_after_the_deadline_is_a_timeout)
{
    long long deadline = 0;
    wf_run *run = waiting_with_no_worker("late2", 300, &deadline);
    cr_assert(wf_test_wait_redis_ms(rc, deadline, 5000));
    send_42("late2");
    worker_pid = start_worker("1", "2", "15000");
    expect_timeout(run);
    wf_run_free(run);
}

Test(steps, event_before_the_deadline_found_after_it_still_counts)
{
    /* The other side of the boundary: logged before the deadline, and no worker up until after
     * it, the event is the wait's result (the run finds it in the log when it wakes). */
    long long deadline = 0;
    wf_run *run = waiting_with_no_worker("early", 2000, &deadline);
    /* Make the run's own delivery miss it, as if the sender died between its two scripts. */
    cr_assert_eq(wf_test_cmd_int(rc, "DEL wf:{ev:early}:waiters"), 1);
    send_42("early");
    cr_assert_lt(wf_test_redis_ms(rc), deadline, "sent before the deadline");
    cr_assert(wf_test_wait_redis_ms(rc, deadline, 5000));
    worker_pid = start_worker("1", "2", "15000");
    expect_output(run, 10000, "{\"sum\":0,\"event\":42}");
    wf_run_free(run);
}

Test(steps, a_short_sleep_is_never_early)
{
    /* Below the 50 ms the worker used to allow for its estimate of Redis time, a sleep returned
     * at once. Redis decides now: the run ends at or after the wake time, by Redis's clock. */
    wf_status st;
    wf_run *run = start_until("{\"n\":1,\"sleep_ms\":40}", WF_STATE_COMPLETED, 10000, &st);
    wf_step_info *steps = NULL;
    size_t n = 0;
    wf_error err = {0};
    cr_assert_eq(wf_run_steps(run, &steps, &n, &err), WF_OK, "%s", err.message);
    int64_t until = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(steps[i].name, "nap") == 0) until = steps[i].until_ms;
    wf_steps_free(steps, n);
    cr_assert_gt(until, 0, "no nap step");
    cr_assert_geq(st.finished_at_ms, until, "the run ended %lld ms before its sleep's end",
                  (long long)(until - st.finished_at_ms));
    wf_status_clear(&st);
    wf_run_free(run);
}

/* ---- wf_step_attempt ------------------------------------------------------------------------- */

typedef struct line_arg {
    const char *what, *id, *step;
} line_arg;

static int line_logged(void *arg)
{
    const line_arg *l = arg;
    return count_lines(l->what, l->id, l->step) > 0;
}

Test(steps, step_attempt_counts_an_execution_killed_mid_step)
{
    /* The worker runs in one process (--processes 0) so that SIGKILL kills the step body. */
    worker_pid = start_worker("0", "1", "1000");
    wf_run *run = start("{\"n\":0,\"hold_ms\":1500}");
    line_arg first = {"HOLD1", wf_run_id(run), "hold"};
    cr_assert(wf_test_wait(line_logged, &first, 10000), "the step body never started");
    wf_test_kill(worker_pid, SIGKILL, 5000);
    worker_pid = start_worker("0", "1", "1000");
    await_state(run, WF_STATE_COMPLETED, 20000);
    cr_assert_eq(count_lines("HOLD1", wf_run_id(run), "hold"), 1);
    cr_assert_eq(count_lines("HOLD2", wf_run_id(run), "hold"), 1,
                 "the body run again after the kill did not see attempt 2");
    wf_step_info *steps = NULL;
    size_t n = 0;
    wf_error err = {0};
    cr_assert_eq(wf_run_steps(run, &steps, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(n, 1, "only the step is listed, not the count of lost executions");
    cr_assert_str_eq(steps[0].name, "hold");
    cr_assert_eq(steps[0].attempts, 2);
    wf_steps_free(steps, n);
    cr_assert_eq(
        wf_test_cmd_int(rc, "HEXISTS wf:{stepper}:run:%s:steps %s", wf_run_id(run), " lost"), 0,
        "the count of lost executions is cleared by the record");
    wf_run_free(run);
}

/* ---- control of waiting and running runs ----------------------------------------------------- */

Test(steps, stop_pause_resume_restart_a_waiting_run)
{
    worker_pid = start_worker("1", "2", "15000");
    wf_run *run = start("{\"n\":2,\"event\":\"go\"}");
    wf_status st;
    await_state(run, WF_STATE_WAITING, 10000);
    wf_error err = {0};
    cr_assert_eq(wf_run_pause(run, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_run_pause(run, &err), WF_ERR_STATE, "pausing twice says so");
    assert_state_now(run, WF_STATE_PAUSED);
    cr_assert_eq(wf_run_resume(run, &err), WF_OK, "%s", err.message);
    /* A waiting run without a timer resumes to queued, replays, and waits again. */
    await_state(run, WF_STATE_WAITING, 10000);
    cr_assert_eq(count_lines("STEP", wf_run_id(run), "s#1"), 1, "replayed, not re-run");
    cr_assert_eq(wf_run_stop(run, &err), WF_OK);
    await_state(run, WF_STATE_CANCELLED, 5000);
    /* Restart keeping steps: finishes without executing s#0 again once the event comes. */
    cr_assert_eq(wf_run_restart(run, 0, &err), WF_OK, "%s", err.message);
    wait_state(run, WF_STATE_WAITING, 10000, &st);
    cr_assert_eq(st.attempt, 2);
    wf_status_clear(&st);
    cr_assert_eq(wf_send_event(cl, "go", NULL, 0, &err), WF_OK);
    await_state(run, WF_STATE_COMPLETED, 10000);
    cr_assert_eq(count_lines("STEP", wf_run_id(run), "s#0"), 1);
    /* Restart clearing steps: s#0 executes again, and the fresh wait finds the "go" event sent a
     * moment ago in the event log (the look-back window). */
    cr_assert_eq(wf_run_restart(run, 1, &err), WF_OK);
    await_state(run, WF_STATE_COMPLETED, 10000);
    cr_assert_eq(count_lines("STEP", wf_run_id(run), "s#0"), 2);
    wf_run_free(run);
}

static int hold_started(void *arg)
{
    return count_lines("STEP", wf_run_id(arg), "hold") >= 1;
}

Test(steps, pause_a_running_run_then_resume_replays)
{
    worker_pid = start_worker("1", "2", "15000");
    wf_run *run = start("{\"n\":1,\"hold_ms\":1500}");
    await_state(run, WF_STATE_RUNNING, 10000);
    /* Wait until the hold step is executing (s#0 is recorded by then). */
    cr_assert(wf_test_wait(hold_started, run, 10000), "the hold step never started");
    wf_error err = {0};
    cr_assert_eq(wf_run_pause(run, &err), WF_OK, "%s", err.message);
    assert_state_now(run, WF_STATE_PAUSED);
    cr_assert_eq(wf_run_resume(run, &err), WF_OK);
    await_state(run, WF_STATE_COMPLETED, 20000);
    cr_assert_eq(count_lines("STEP", wf_run_id(run), "s#0"), 1, "finished step not re-run");
    cr_assert_eq(count_violations(), 0);
    wf_run_free(run);
}
