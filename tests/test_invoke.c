/* test_invoke.c - child workflows (wf_step_invoke) end to end, against a real redis-server and
 * real wf-worker processes: the parent gets the child's output without holding a slot, a child's
 * failure reaches the parent as an error, replays start no second child, a child that ended before
 * the parent waits is found, stopping the parent stops its waiting child (unless kept), and a
 * worker SIGKILLed between the child's end and the parent's wake loses nothing.
 * The parent is tests/workflows/invoker.c; the children are stepper.c and fatal.c. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool_env.h"
#include "script_call.h"
#include "wf_worker_internal.h"

static void setup(void)
{
    pool_env_setup("invoke");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(invoke, .init = setup, .fini = teardown, .timeout = 120);

/* wf-worker over tests/workflows; `crash` adds the fault injection of invoke.c. */
static pid_t start_worker(const char *concurrency, const char *lease, int crash)
{
    const char *args[] = {"--processes", "1", "--concurrency", concurrency, "--lease-ms",
                          lease,         NULL};
    return pool_env_worker(args, crash ? "WF_TEST_CRASH_AFTER_CHILD_READ=1" : NULL,
                           (const char *const[]){"invoker", "stepper", "fatal", NULL});
}

/* Starts `workflow` with a JSON input, with run id suffix `suffix` (NULL: generated). */
static wf_run *start(const char *workflow, const char *json, const char *suffix)
{
    return wf_test_start_json(cl, workflow, json, &(wf_run_options){.id = suffix});
}

/* The child run of the invoker's step "child". */
static wf_run *child_of(wf_run *parent, const char *workflow)
{
    char id[WF__ID_MAX];
    wf__invoke_child_id(wf_run_id(parent), "child", workflow, id);
    wf_error err = {0};
    wf_run *c = wf_get_workflow_run(cl, id, &err);
    cr_assert_not_null(c, "child %s: %s", id, err.message);
    return c;
}

/* Lines of the exec log equal to `line` (with its newline). */
static int count_lines(const char *line)
{
    char *log = wf_test_slurp(exec_path);
    int n = 0;
    size_t len = strlen(line);
    for (char *p = log; (p = strstr(p, line)); p += len)
        if (p == log || p[-1] == '\n') n++;
    free(log);
    return n;
}

static int step_lines(const char *id, const char *step)
{
    char line[400];
    snprintf(line, sizeof line, "STEP %s %s\n", id, step);
    return count_lines(line);
}

/* Exec log lines "ID ..." of the invoker (its executions). */
static int exec_lines(const char *id)
{
    return wf_test_exec_lines(exec_path, id);
}

static long long runs_of(const char *workflow)
{
    long long n = 0;
    const char *states[] = {"queued",    "running", "paused",    "waiting",
                            "completed", "failed",  "cancelled", "terminated"};
    for (int i = 0; i < 8; i++)
        n += wf_test_cmd_int(rc, "ZCARD wf:{%s}:state:%s", workflow, states[i]);
    return n;
}

/* ---- tests ----------------------------------------------------------------------------------- */

Test(invoke, parent_gets_child_output_without_holding_a_slot)
{
    /* One slot: the child can only run because the waiting parent gave its slot back. */
    worker_pid = start_worker("1", "15000", 0);
    wf_run *parent = start("invoker", "{\"input\":{\"n\":2,\"event\":\"go-1\"}}", NULL);
    wf_status st;
    wait_state(parent, WF_STATE_WAITING, 10000, &st);
    wf_run *child = child_of(parent, "stepper");
    char want_reason[WF__ID_MAX + 16];
    snprintf(want_reason, sizeof want_reason, "child %s", wf_run_id(child));
    cr_assert_str_eq(st.wait_reason, want_reason);
    wf_status_clear(&st);
    await_state(child, WF_STATE_WAITING, 10000);
    /* The child knows its parent; the parent's step shows the child. */
    char *p = wf_test_cmd_str(rc, "HGET %s parent", wf_run_native(child));
    cr_assert_str_eq(p, wf_run_id(parent));
    free(p);
    p = wf_test_cmd_str(rc, "HGET %s parent_step", wf_run_native(child));
    cr_assert_str_eq(p, "child");
    free(p);
    wf_step_info *steps = NULL;
    size_t n = 0;
    cr_assert_eq(wf_run_steps(parent, &steps, &n, NULL), WF_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(steps[0].kind, "invoke");
    cr_assert_str_eq(steps[0].status, "waiting");
    cr_assert_str_eq(steps[0].event, wf_run_id(child));
    wf_steps_free(steps, n);

    cr_assert_eq(wf_send_event(cl, "go-1", "\xa5truck", 6, NULL), WF_OK);
    expect_output(parent, 10000, "{\"child\":{\"sum\":10,\"event\":\"truck\"}}");
    cr_assert_eq(wf_run_steps(parent, &steps, &n, NULL), WF_OK);
    cr_assert_str_eq(steps[0].status, "done");
    cr_assert_str_eq(steps[0].event_key, "completed");
    wf_steps_free(steps, n);
    cr_assert_eq(runs_of("stepper"), 1);
    /* Delivered and acknowledged: nothing left in the child workflow's stream. */
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{stepper}:parents"), 0);
    wf_run_free(child);
    wf_run_free(parent);
}

Test(invoke, child_failure_reaches_parent_as_error)
{
    worker_pid = start_worker("2", "15000", 0);
    wf_run *parent = start("invoker", "{\"workflow\":\"fatal\"}", NULL);
    wf_status st;
    wait_state(parent, WF_STATE_COMPLETED, 10000, &st);
    char *json = output_json(&st);
    wf_run *child = child_of(parent, "fatal");
    char expect[600];
    snprintf(expect, sizeof expect,
             "{\"error\":\"child run %s failed: card declined (attempt 1)\","
             "\"code\":\"WF_ERR_CHILD\"}",
             wf_run_id(child));
    cr_assert_str_eq(json, expect);
    free(json);
    wf_status_clear(&st);
    await_state(child, WF_STATE_FAILED, 1000);
    wf_run_free(child);
    wf_run_free(parent);
}

static int group_count(const char *stream)
{
    redisReply *r = wf_test_command(rc, "XINFO GROUPS %s", stream);
    int n = r && r->type == REDIS_REPLY_ARRAY ? (int)r->elements : -1;
    if (r) freeReplyObject(r);
    return n;
}

Test(invoke, child_end_stream_deleted_by_hand_gets_its_group_back)
{
    /* Someone deletes P:{W}:parents, group and all, under a running worker: the next child end
     * recreates the stream without the group, the worker's read answers NOGROUP, and the reader
     * (group_reader.c) must make the group again (from 0) and deliver the end anyway. */
    worker_pid = start_worker("2", "15000", 0);
    cr_assert_eq(group_count("wf:{fatal}:parents"), 1, "the worker made the group at start");
    /* A first child end delivered: the worker's loop is past its set-up (which would make the
     * group again by itself) and reads the stream. */
    wf_run *first = start("invoker", "{\"workflow\":\"fatal\"}", NULL);
    wf_status st;
    await_state(first, WF_STATE_COMPLETED, 10000);
    wf_run_free(first);
    cr_assert_eq(wf_test_cmd_int(rc, "DEL wf:{fatal}:parents"), 1);
    wf_run *parent = start("invoker", "{\"workflow\":\"fatal\"}", NULL);
    wait_state(parent, WF_STATE_COMPLETED, 10000, &st);
    char *json = output_json(&st);
    cr_assert(strstr(json, "card declined"), "the child's error reached the parent: %s", json);
    free(json);
    wf_status_clear(&st);
    cr_assert_eq(group_count("wf:{fatal}:parents"), 1, "the group is back");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{fatal}:parents"), 0, "delivered and deleted");
    wf_run_free(parent);
}

Test(invoke, child_started_once_when_parent_replays)
{
    worker_pid = start_worker("2", "15000", 0);
    /* Attempt 1 fails after the child's result came back; attempt 2 replays the invoke, then
     * sleeps durably and replays it once more. */
    wf_run *parent =
        start("invoker", "{\"input\":{\"n\":1},\"fail_first\":1,\"sleep_ms\":300}", NULL);
    wf_status st;
    wait_state(parent, WF_STATE_COMPLETED, 15000, &st);
    cr_assert_eq(st.attempt, 2);
    char *json = output_json(&st);
    cr_assert_str_eq(json, "{\"child\":{\"sum\":0,\"event\":null}}");
    free(json);
    wf_status_clear(&st);
    cr_assert_geq(exec_lines(wf_run_id(parent)), 4, "the parent replayed");
    wf_run *child = child_of(parent, "stepper");
    cr_assert_eq(step_lines(wf_run_id(child), "s#0"), 1, "the child executed once");
    cr_assert_eq(runs_of("stepper"), 1, "one child run");
    cr_assert_eq(count_lines("VIOLATION"), 0);
    wf_run_free(child);
    wf_run_free(parent);
}

Test(invoke, child_that_ended_before_the_wait_is_received)
{
    worker_pid = start_worker("2", "15000", 0);
    /* The child (its id is what the parent's step derives) ends before the parent even starts,
     * so no delivery can reach a waiting parent: the invoke must find the end itself. */
    char id[WF__ID_MAX];
    wf__invoke_child_id("invoker:early", "child", "stepper", id);
    wf_run *child = start("stepper", "{\"n\":3}", strchr(id, ':') + 1);
    cr_assert_str_eq(wf_run_id(child), id);
    await_state(child, WF_STATE_COMPLETED, 10000);
    wf_run *parent = start("invoker", "{\"input\":{\"n\":3}}", "early");
    expect_output(parent, 10000, "{\"child\":{\"sum\":30,\"event\":null}}");
    cr_assert_eq(step_lines(id, "s#0"), 1, "the child was not started again");
    cr_assert_eq(runs_of("stepper"), 1);
    wf_run_free(child);
    wf_run_free(parent);
}

Test(invoke, stopping_the_parent_stops_its_waiting_child)
{
    worker_pid = start_worker("2", "15000", 0);
    wf_run *parent = start("invoker", "{\"input\":{\"n\":1,\"event\":\"never\"}}", NULL);
    wf_run *kept = start("invoker", "{\"input\":{\"n\":1,\"event\":\"never\"},\"keep\":1}", NULL);
    wf_status st;
    await_state(parent, WF_STATE_WAITING, 10000);
    await_state(kept, WF_STATE_WAITING, 10000);
    wf_run *child = child_of(parent, "stepper"), *kchild = child_of(kept, "stepper");
    await_state(child, WF_STATE_WAITING, 10000);
    await_state(kchild, WF_STATE_WAITING, 10000);

    wf_error err = {0};
    cr_assert_eq(wf_run_stop(parent, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_run_stop(kept, &err), WF_OK, "%s", err.message);
    wait_state(child, WF_STATE_CANCELLED, 2000, &st);
    char expect[WF__ID_MAX + 32];
    snprintf(expect, sizeof expect, "parent %s was stopped", wf_run_id(parent));
    cr_assert_str_eq(st.error, expect);
    wf_status_clear(&st);
    await_state(parent, WF_STATE_CANCELLED, 1000);
    /* keep_running: the child goes on, and finishes on its own. */
    assert_state_now(kchild, WF_STATE_WAITING);
    cr_assert_eq(wf_send_event(cl, "never", NULL, 0, NULL), WF_OK);
    await_state(kchild, WF_STATE_COMPLETED, 10000);
    /* Its end reached a parent that is cancelled: dropped, and acknowledged. */
    assert_state_now(kept, WF_STATE_CANCELLED);
    wf_run_free(child);
    wf_run_free(kchild);
    wf_run_free(kept);
    wf_run_free(parent);
}

static int no_pending(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "XLEN wf:{stepper}:parents") == 0;
}

Test(invoke, sigkill_between_child_end_and_parent_wake_still_wakes_parent)
{
    /* The worker process kills itself (SIGKILL) right after reading the child's end and before
     * delivering it: the entry stays pending; the supervisor's fresh process takes it over after
     * the lease time (1.5 s) and wakes the parent. */
#ifndef WF_TEST_HAVE_FAULT_INJECTION
    /* Fails rather than skips: a skip would let a build without the hook look fully tested. */
    cr_assert_fail("this test needs the worker's fault-injection hook: configure with "
                   "-DWF_FAULT_INJECTION=ON (scripts/test does)");
#endif
    worker_pid = start_worker("2", "1500", 1);
    wf_run *parent = start("invoker", "{\"input\":{\"n\":2,\"event\":\"go-k\"}}", NULL);
    await_state(parent, WF_STATE_WAITING, 10000);
    wf_run *child = child_of(parent, "stepper");
    await_state(child, WF_STATE_WAITING, 10000);
    cr_assert_eq(wf_send_event(cl, "go-k", "\x01", 1, NULL), WF_OK);
    await_state(child, WF_STATE_COMPLETED, 10000);
    expect_output(parent, 20000, "{\"child\":{\"sum\":10,\"event\":1}}");
    char *log = wf_test_slurp(log_path);
    cr_assert(strstr(log, "WF_TEST_CRASH_AFTER_CHILD_READ: killing this process"),
              "the worker did not crash where intended:\n%s", log);
    cr_assert(strstr(log, "taking over 1 child end"), "no takeover:\n%s", log);
    free(log);
    cr_assert(wf_test_wait(no_pending, NULL, 5000), "the entry was not acknowledged");
    cr_assert_eq(step_lines(wf_run_id(child), "s#0"), 1);
    cr_assert_eq(runs_of("stepper"), 1);
    wf_run_free(child);
    wf_run_free(parent);
}

/* Runs script `s` on run `id` of `workflow` (fixed keys, run hash, steps hash) with `args`. */
static redisReply *run_script(wf__script s, const char *workflow, const char *id, int nargs,
                              const char *const *args, const size_t *lens, wf_error *err)
{
    wf__wfkeys wk;
    cr_assert_eq(wf__wfkeys_init(&wk, "wf", workflow), WF_OK);
    char *run = wf__key_run("wf", workflow, id), *steps = wf__key_steps("wf", workflow, id);
    const char *keys[WF__NFIXED + 2];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
    keys[WF__NFIXED] = run;
    keys[WF__NFIXED + 1] = steps;
    redisReply *r = wf_test_script(rc, s, WF__NFIXED + 2, keys, nargs, args, lens, err);
    free(run);
    free(steps);
    wf__wfkeys_free(&wk);
    return r;
}

static void encode(const wf__steprec *rec, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    cr_assert_eq(wf__steprec_encode(rec, sb), WF_OK);
}

Test(invoke, end_delivered_before_the_parent_suspends_resumes_it)
{
    /* No worker: the scripts one by one, in the order of the race. The parent runs (lease 7) and
     * has recorded its invoke step `waiting`; the child ends and its end is delivered before the
     * parent's suspend.lua: the suspend must see it (RESUME) instead of waiting forever. */
    const char *id = "invoker:race";
    wf_test_cmd_int(rc, "HSET wf:{invoker}:run:%s state running lease 7 attempt 1", id);
    wf__steprec w = {0};
    snprintf(w.kind, sizeof w.kind, "invoke");
    snprintf(w.status, sizeof w.status, "waiting");
    snprintf(w.child, sizeof w.child, "stepper:race.0");
    msgpack_sbuffer sb;
    encode(&w, &sb);
    wf_error err = {0};
    const char *a1[4] = {id, "7", "child", sb.data};
    size_t l1[4] = {strlen(id), 1, 5, sb.size};
    redisReply *r = run_script(WF__SCRIPT_STEP, "invoker", id, 4, a1, l1, &err);
    cr_assert_not_null(r, "%s", err.message);
    freeReplyObject(r);

    wf__steprec d = w;
    snprintf(d.status, sizeof d.status, "done");
    snprintf(d.cstate, sizeof d.cstate, "completed");
    d.result = "\x2a";
    d.result_len = 1;
    msgpack_sbuffer sd;
    encode(&d, &sd);
    const char *a2[3] = {id, "child", sd.data};
    size_t l2[3] = {strlen(id), 5, sd.size};
    r = run_script(WF__SCRIPT_DELIVER, "invoker", id, 3, a2, l2, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_eq(r->integer, 1, "delivered to the running parent");
    freeReplyObject(r);

    const char *a3[6] = {id, "7", "child", sb.data, "0", "child stepper:race.0"};
    size_t l3[6] = {strlen(id), 1, 5, sb.size, 1, strlen(a3[5])};
    r = run_script(WF__SCRIPT_SUSPEND, "invoker", id, 6, a3, l3, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_str_eq(r->str, "RESUME");
    freeReplyObject(r);
    char *state = wf_test_cmd_str(rc, "HGET wf:{invoker}:run:%s state", id);
    cr_assert_str_eq(state, "running", "the parent goes on without waiting");
    free(state);
    /* A second delivery of the same end (at least once) changes nothing. */
    r = run_script(WF__SCRIPT_DELIVER, "invoker", id, 3, a2, l2, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&sd);
}

Test(invoke, ending_scripts_record_a_child_end_only_for_runs_with_a_parent)
{
    /* stop.lua with the parents stream as KEYS[16]: a run with a parent leaves an entry with its
     * state and error; a run without one leaves none. */
    wf_test_cmd_int(rc, "HSET wf:{stepper}:run:stepper:a state waiting parent invoker:x "
                        "parent_step child");
    wf_test_cmd_int(rc, "HSET wf:{stepper}:run:stepper:b state waiting");
    for (int i = 0; i < 2; i++) {
        const char *id = i == 0 ? "stepper:a" : "stepper:b";
        wf__wfkeys wk;
        cr_assert_eq(wf__wfkeys_init(&wk, "wf", "stepper"), WF_OK);
        char *run = wf__key_run("wf", "stepper", id), *steps = wf__key_steps("wf", "stepper", id);
        const char *keys[WF__NFIXED + 4];
        for (int k = 0; k < WF__NFIXED; k++) keys[k] = wk.k[k];
        keys[WF__NFIXED] = run;
        keys[WF__NFIXED + 1] = steps;
        keys[WF__NFIXED + 2] = "wf:{stepper}:outbox";
        keys[WF__NFIXED + 3] = "wf:{stepper}:parents";
        const char *args[4] = {id, "stopped by request", "60000", "0"};
        wf_error err = {0};
        redisReply *r =
            wf_test_script(rc, WF__SCRIPT_STOP, WF__NFIXED + 4, keys, 4, args, NULL, &err);
        cr_assert_not_null(r, "%s", err.message);
        freeReplyObject(r);
        free(run);
        free(steps);
        wf__wfkeys_free(&wk);
    }
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{stepper}:parents"), 1);
    redisReply *r = wf_test_command(rc, "XRANGE wf:{stepper}:parents - +");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    const redisReply *f = r->element[0]->element[1];
    char all[512] = "";
    for (size_t i = 0; i < f->elements; i++) {
        strncat(all, f->element[i]->str, sizeof all - strlen(all) - 2);
        strcat(all, "|");
    }
    const char *expect = "id|stepper:a|parent|invoker:x|step|child|state|cancelled|output||"
                         "error|stopped by request|at|";
    cr_assert_eq(strncmp(all, expect, strlen(expect)), 0, "%s", all);
    freeReplyObject(r);
}
