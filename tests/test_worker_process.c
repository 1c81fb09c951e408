/* test_worker_process.c - the wf-worker program's life as processes against a real redis-server:
 * a worker child killed mid-run, SIGTERM draining (and past the drain, handing runs back), Redis
 * dropping its connections, a result finished while disconnected, and the command line's errors.
 * Runs are driven with the client API (worker_env.h); every wait polls a condition with a
 * deadline. */
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

/* ---- crashes and signals ------------------------------------------------------------------ */

static int handler_started(void *arg)
{
    return exec_count(wf_run_id(arg)) >= 1;
}

Test(worker, sigkill_of_a_worker_child_mid_run_is_recovered)
{
    /* A lease long enough that a loaded machine does not miss a heartbeat (a miss would re-run
     * the handler a third time), short enough that the reclaim comes quickly; a handler long
     * enough that the kill lands while it runs, even on a loaded machine (the cluster suites
     * run beside the single-server ones). */
    worker_pid = start_worker((const char *[]){"--processes", "1", "--lease-ms", "2500", NULL});
    wf_run *run = start_slow_running(3000);
    wf_status st;
    /* `running` is written at the claim, before an executor thread starts the handler: the kill
     * must land once the handler runs (its first line of the exec log), or the first attempt
     * never ran and there is one execution, not two (seen once under ASan in a CI run). */
    cr_assert(wf_test_wait(handler_started, run, 10000), "the handler did not start");
    pid_t child = holder_pid(run);
    cr_assert_gt(child, 0);
    cr_assert_neq(child, worker_pid, "the run is held by a child, not the supervisor");
    cr_assert_eq(kill(child, SIGKILL), 0);
    wait_log("killed by signal 9", 5000);
    wait_state(run, WF_STATE_COMPLETED, 30000, &st);
    cr_assert_eq(st.output_len, 6);
    cr_assert_eq(memcmp(st.output, "\xa5slept", 6), 0);
    wf_status_clear(&st);
    int execs = exec_count(wf_run_id(run));
    cr_assert_eq(execs, 2, "ran again after the crash (ran %d times)", execs);
    char *reclaims = wf_test_cmd_str(rc, "HGET %s reclaims", wf_run_native(run));
    cr_assert_str_eq(reclaims, "1");
    free(reclaims);
    wf_run_free(run);
}

Test(worker, sigterm_drains_and_exits_0)
{
    worker_pid = start_worker((const char *[]){"--processes", "2", NULL});
    wf_run *run = start_slow_running(800);
    wf_status st;
    int status = wf_test_kill(worker_pid, SIGTERM, 30000);
    worker_pid = 0;
    cr_assert(WIFEXITED(status), "supervisor exited (status 0x%x)", status);
    cr_assert_eq(WEXITSTATUS(status), 0);
    wf_error err = {0};
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    cr_assert(st.state == WF_STATE_COMPLETED || st.state == WF_STATE_QUEUED, "state %s",
              wf_state_name(st.state));
    wf_status_clear(&st);
    wf_run_free(run);
}

Test(worker, sigterm_past_drain_hands_runs_back_to_the_queue)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--drain-ms", "200", NULL});
    wf_run *run = start_slow_running(20000);
    wf_status st;
    int status = wf_test_kill(worker_pid, SIGTERM, 30000);
    worker_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    wait_state(run, WF_STATE_QUEUED, 1000, &st);
    cr_assert_eq(st.attempt, 1, "a hand-back is not a failed attempt");
    wf_status_clear(&st);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{slow}:queue"), 1, "ready again");
    wf_run_free(run);
}

Test(worker, survives_client_kill)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    char p[16];
    size_t n = pack_int(p, 1);
    wf_run *a = start_run("echo", p, n);
    wf_status st;
    await_state(a, WF_STATE_COMPLETED, 10000);
    /* Drop every connection but ours (SKIPME yes is the default: ours survives). */
    redisReply *r = wf_test_command(rc, "CLIENT KILL TYPE normal");
    if (r) freeReplyObject(r);
    wf_error err = {0};
    wf__client_reconnect(cl, &err);
    /* "cmd connection to Redis lost", or "... to Redis Cluster lost" in cluster mode. */
    wait_log(wf_test_cluster_mode() ? "connection to Redis Cluster lost"
                                    : "connection to Redis lost",
             5000);
    wf_run *b = start_run("echo", p, n);
    await_state(b, WF_STATE_COMPLETED, 15000);
    /* The library flushed (as after a restart without persistence): loaded again on demand. */
    r = wf_test_command(rc, "FUNCTION FLUSH");
    if (r) freeReplyObject(r);
    wf_run *c = start_run("flaky", NULL, 0);
    wait_state(c, WF_STATE_COMPLETED, 15000, &st);
    cr_assert_eq(st.attempt, 2);
    wf_status_clear(&st);
    wf_run_free(a);
    wf_run_free(b);
    wf_run_free(c);
}

Test(worker, result_finished_while_disconnected_is_sent_after_reconnect)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wf_run *run = start_slow_running(200);
    wf_status st;
    /* Cut the worker off: drop its connections and refuse new ones (only ours stays). */
    redisReply *r = wf_test_command(rc, "CONFIG SET maxclients 1");
    if (r) freeReplyObject(r);
    r = wf_test_command(rc, "CLIENT KILL TYPE normal");
    if (r) freeReplyObject(r);
    /* Refused three times: 100 + 200 + 400 ms of backoff, well past the handler's 200 ms. */
    wf_test_wait_log(log_path, "max number of clients", 3, 15000); /* it kept retrying */
    cr_assert_eq(exec_count(wf_run_id(run)), 1, "the handler ran");
    char *state = wf_test_cmd_str(rc, "HGET %s state", wf_run_native(run));
    cr_assert_str_eq(state, "running", "the result is still waiting in the worker");
    free(state);
    r = wf_test_command(rc, "CONFIG SET maxclients 10000");
    if (r) freeReplyObject(r);
    wf_error err = {0};
    cr_assert_eq(wf__client_reconnect(cl, &err), WF_OK, "%s", err.message);
    wait_state(run, WF_STATE_COMPLETED, 15000, &st);
    cr_assert_eq(st.attempt, 1);
    cr_assert_eq(st.output_len, 6);
    wf_status_clear(&st);
    cr_assert_eq(exec_count(wf_run_id(run)), 1, "not re-run: the lease survived the outage");
    wf_run_free(run);
}

/* ---- the program's command line ---------------------------------------------------------------
 */

Test(worker, command_line_errors)
{
    char *wfdir = wf_test_path("tests/workflows");
    char *out = NULL;
    cr_assert_eq(wf_test_run_worker((const char *[]){"--help", NULL}, &out), 0);
    cr_assert(strstr(out, "--workflows"));
    free(out);
    cr_assert_eq(wf_test_run_worker((const char *[]){"--bogus", NULL}, NULL), 2);
    cr_assert_eq(
        wf_test_run_worker((const char *[]){"--workflows", wfdir, "--processes", "x", NULL}, NULL),
        2);
    cr_assert_eq(wf_test_run_worker((const char *[]){"--redis", srv.url, NULL}, NULL), 2,
                 "no --workflows");
    cr_assert_eq(wf_test_run_worker(
                     (const char *[]){"--redis", "http://nope", "--workflows", wfdir, NULL}, NULL),
                 2, "bad URL");
    cr_assert_eq(
        wf_test_run_worker(
            (const char *[]){"--redis", srv.url, "--workflows", "/nonexistent/dir", NULL}, NULL),
        2);
    cr_assert_eq(
        wf_test_run_worker((const char *[]){"--redis", srv.url, "--workflows", dir, NULL}, NULL), 2,
        "an empty folder has no workflows");
    free(wfdir);
}
