/* test_worker_runs.c - the wf-worker program (supervisor and worker processes, forked for real)
 * running the test workflows of tests/workflows against a real redis-server: many runs through
 * two processes each run once, the outcomes (retry, fatal, timeout, stop, an event sent from a
 * handler), and bad stream entries going to the dead list. Runs are driven with the client API
 * (worker_env.h); every wait polls a condition with a deadline. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wf_worker_internal.h"
#include "worker_env.h"

TestSuite(worker, .init = worker_setup, .fini = worker_teardown, .timeout = 120);

/* ---- wf-worker: many runs through two processes ---------------------------------------------- */

typedef struct count_wait {
    const char *key;
    long long want;
} count_wait;

static int zcard_is(void *arg)
{
    count_wait *c = arg;
    return wf_test_cmd_int(rc, "ZCARD %s", c->key) == c->want;
}

/* Checks that `run` ended after `attempts` attempts, each executed once (the exec log), then
 * frees it and *st. */
static void assert_attempts_then_free(wf_run *run, wf_status *st, int attempts)
{
    cr_assert_eq(st->attempt, attempts, "run %s: attempt %d", wf_run_id(run), st->attempt);
    cr_assert_eq(exec_count(wf_run_id(run)), attempts, "run %s: each attempt executed once",
                 wf_run_id(run));
    wf_status_clear(st);
    wf_run_free(run);
}

Test(worker, many_runs_two_processes_each_once)
{
    enum { N = 500 };
    worker_pid = start_worker((const char *[]){"--processes", "2", "--concurrency", "8", NULL});
    wf_run **runs = calloc(N, sizeof *runs);
    for (int i = 0; i < N; i++) {
        char p[16];
        size_t n = pack_int(p, 1000 + i);
        runs[i] = start_run("echo", p, n);
    }
    count_wait c = {"wf:{echo}:state:completed", N};
    if (!wf_test_wait(zcard_is, &c, 60000)) {
        char *log = wf_test_slurp(log_path);
        cr_assert_fail("only %lld of %d runs completed\n%s",
                       wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed"), N, log);
    }
    char *log = wf_test_slurp(exec_path);
    int lines = 0;
    for (char *p = log; *p; p++) lines += *p == '\n';
    free(log);
    cr_assert_eq(lines, N, "each run executed exactly once (%d executions for %d runs)", lines, N);
    for (int i = 0; i < N; i++) {
        wf_status st;
        wf_error err = {0};
        cr_assert_eq(wf_run_status(runs[i], &st, &err), WF_OK, "%s", err.message);
        cr_assert_eq(st.state, WF_STATE_COMPLETED);
        char want[16];
        size_t n = pack_int(want, 1000 + i);
        cr_assert_eq(st.output_len, n);
        cr_assert_eq(memcmp(st.output, want, n), 0, "run %d returned its input", i);
        assert_attempts_then_free(runs[i], &st, 1);
    }
    free(runs);
    /* Every ready entry was acknowledged and deleted. */
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:leases"), 0);
}

/* ---- outcomes ---------------------------------------------------------------------------------
 */

/* Starts a one-process worker and a run of `workflow` (no input), and waits (15 s at most) for
 * the run to be in `state`, its status in *st. */
static wf_run *run_to(const char *workflow, wf_state state, wf_status *st)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wf_run *run = start_run(workflow, NULL, 0);
    wait_state(run, state, 15000, st);
    return run;
}

/* run_to a final state whose error contains `error`. */
static wf_run *run_to_error(const char *workflow, wf_state state, const char *error, wf_status *st)
{
    wf_run *run = run_to(workflow, state, st);
    cr_assert_not_null(st->error, "run %s ended without an error", wf_run_id(run));
    cr_assert(strstr(st->error, error), "error: %s", st->error);
    return run;
}

Test(worker, retry_then_success_on_attempt_2)
{
    wf_status st;
    wf_run *run = run_to("flaky", WF_STATE_COMPLETED, &st);
    cr_assert_eq(st.output_len, 3);
    cr_assert_eq(memcmp(st.output, "\xa2ok", 3), 0);
    assert_attempts_then_free(run, &st, 2);
}

Test(worker, fatal_fails_at_once_with_the_error_text)
{
    wf_status st;
    wf_run *run = run_to_error("fatal", WF_STATE_FAILED, "card declined (attempt 1)", &st);
    assert_attempts_then_free(run, &st, 1);
}

Test(worker, timeout_terminates_the_run)
{
    wf_status st;
    wf_run *run = run_to_error("timeout", WF_STATE_TERMINATED, "timed out after 200 ms", &st);
    wf_status_clear(&st);
    /* The handler saw wf_ctx_cancelled, returned, and its late result was dropped. */
    wait_log("result dropped", 10000);
    wait_state(run, WF_STATE_TERMINATED, 1000, &st);
    cr_assert_null(st.output);
    wf_status_clear(&st);
    wf_run_free(run);
}

Test(worker, stop_cancels_a_running_run_and_drops_its_result)
{
    worker_pid = start_worker(
        (const char *[]){"--processes", "1", "--concurrency", "1", "--lease-ms", "900", NULL});
    char p[16];
    size_t n = pack_int(p, 20000);
    wf_run *run = start_run("slow", p, n);
    wf_status st;
    await_state(run, WF_STATE_RUNNING, 10000);
    wf_error err = {0};
    cr_assert_eq(wf_run_stop(run, &err), WF_OK, "%s", err.message);
    await_state(run, WF_STATE_CANCELLED, 1000);
    wait_log("lease lost", 10000);
    wait_log("result dropped", 10000);
    wait_state(run, WF_STATE_CANCELLED, 1000, &st);
    cr_assert_null(st.output);
    wf_status_clear(&st);
    /* The only slot is free again. */
    wf_run *next = start_run("echo", p, n);
    await_state(next, WF_STATE_COMPLETED, 10000);
    wf_run_free(next);
    wf_run_free(run);
}

Test(worker, send_event_from_a_handler)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wf_run *run = start_run_int("sender", 7);
    await_state(run, WF_STATE_COMPLETED, 10000);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{ev:test-event}:log"), 1);
    wf_run_free(run);
}

/* ---- bad data ----------------------------------------------------------------------------- */

static int dead_has_one(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "LLEN wf:{echo}:dead") == 1;
}

Test(worker, bad_stream_entry_goes_to_the_dead_list)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--lease-ms", "1000", NULL});
    char *id = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * r garbage");
    cr_assert_not_null(id);
    cr_assert(wf_test_wait(dead_has_one, NULL, 10000), "entry never reached the dead list");
    char *dead = wf_test_cmd_str(rc, "LINDEX wf:{echo}:dead 0");
    cr_assert_not_null(dead);
    cr_assert(strstr(dead, id), "dead entry names the stream entry: %s", dead);
    free(dead);
    free(id);
    /* A key of the wrong type where a run hash should be: claim.lua fails, which is logged, not
     * fatal; entries it could not reach are recovered by XAUTOCLAIM after the lease. */
    wf_test_cmd_int(rc, "SET wf:{echo}:run:echo:clobbered x");
    msgpack_sbuffer sb;
    wf_test_msgpack("{\"v\":1,\"id\":\"echo:clobbered\",\"a\":1}", &sb);
    char *id2 = wf_test_cmd_str(rc, "XADD wf:{echo}:queue * r %b", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(id2);
    free(id2);
    wait_log("WRONGTYPE", 10000);
    wf_run *run = start_run_int("echo", 5);
    await_state(run, WF_STATE_COMPLETED, 10000);
    wf_run_free(run);
}
