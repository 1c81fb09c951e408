/* test_priority.c - run priorities end to end, against a real redis-server and real wf-worker
 * processes. Each rule has a test that fails without it:
 *   - strict order under backlog: 20 low, 20 normal and 20 high runs queued in mixed order are
 *     drained by a worker with one slot high first, then normal, then low (without lanes they run
 *     in the order they were queued);
 *   - a high run queued behind a backlog of normal runs starts next, and a low one last;
 *   - a retried high run goes back onto the high lane: it runs again before normal runs queued
 *     before its retry (on the normal lane it would wait behind them);
 * plus the options: batch and deferred starts land on their lane, a normal run stores no `pri`
 * field, and a priority that is not a wf_priority is WF_ERR_INVALID with nothing written. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_env.h"

static void setup(void)
{
    pool_env_setup("prio");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(priority, .init = setup, .fini = teardown, .timeout = 120);

/* Starts a wf-worker with one process of `concurrency` slots and the exec log. */
static void start_worker(const char *concurrency)
{
    const char *extra[] = {"--processes", "1", "--concurrency", concurrency, NULL};
    /* No wait for registration here: the tests wait for what they need (runs started). */
    worker_pid = pool_env_worker(extra, NULL, NULL);
}

/* Starts run WORKFLOW:SUFFIX with a JSON input and a priority; no worker needs to be registered. */
static void start(const char *workflow, const char *suffix, const char *json, int priority)
{
    wf_run_options opt = {.id = suffix, .priority = priority, .allow_unregistered = 1};
    wf_run_free(wf_test_start_json(cl, workflow, json, &opt));
}

/* The exec log's lines ("RUNID ATTEMPT"), in the order the handlers started; caller frees each
 * line and the array. */
static char **exec_lines(int *n)
{
    char *log = wf_test_slurp(exec_path);
    char **lines = NULL;
    *n = 0;
    for (char *p = log, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1) {
        lines = realloc(lines, (size_t)(*n + 1) * sizeof *lines);
        cr_assert_not_null(lines);
        lines[(*n)++] = strndup(p, (size_t)(nl - p));
    }
    free(log);
    return lines;
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

static int exec_count_is(void *arg)
{
    int n;
    char **lines = exec_lines(&n);
    free_lines(lines, n);
    return n >= *(int *)arg;
}

/* Waits until `want` handler executions were logged; fails with the worker's log otherwise. */
static void wait_execs(int want, int ms)
{
    if (wf_test_wait(exec_count_is, &want, ms)) return;
    char *log = wf_test_slurp(log_path);
    cr_assert_fail("fewer than %d executions after %d ms\n%s", want, ms, log);
}

/* The position in the exec log of the line "RUNID ATTEMPT", or -1. */
static int exec_pos(const char *id, int attempt)
{
    char want[300];
    snprintf(want, sizeof want, "%s %d", id, attempt);
    int n, pos = -1;
    char **lines = exec_lines(&n);
    for (int i = 0; i < n && pos < 0; i++)
        if (strcmp(lines[i], want) == 0) pos = i;
    free_lines(lines, n);
    return pos;
}

Test(priority, one_slot_drains_high_then_normal_then_low)
{
    /* Queued before any worker runs, interleaved: low, normal, high, low, normal, high, ... */
    enum { EACH = 20 };
    static const int prio[3] = {WF_PRIORITY_LOW, WF_PRIORITY_NORMAL, WF_PRIORITY_HIGH};
    static const char tag[3] = {'l', 'n', 'h'};
    for (int i = 0; i < 3 * EACH; i++) {
        char suffix[16];
        snprintf(suffix, sizeof suffix, "%c%02d", tag[i % 3], i / 3);
        start("echo", suffix, "1", prio[i % 3]);
    }
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue:high"), EACH);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), EACH);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue:low"), EACH);
    start_worker("1");
    wait_execs(3 * EACH, 30000);
    /* One slot: the exec log is the order the runs started in. Its lanes never go back up. */
    int n, rank = 0, seen[3] = {0};
    char **lines = exec_lines(&n);
    cr_assert_eq(n, 3 * EACH, "each run executed once");
    for (int i = 0; i < n; i++) {
        cr_assert(strncmp(lines[i], "echo:", 5) == 0, "line %d: %s", i, lines[i]);
        int r = lines[i][5] == 'h' ? 0 : lines[i][5] == 'n' ? 1 : 2;
        cr_assert_geq(r, rank, "run %s (line %d) started after a run of lower priority", lines[i],
                      i);
        rank = r;
        seen[r]++;
    }
    free_lines(lines, n);
    cr_assert(seen[0] == EACH && seen[1] == EACH && seen[2] == EACH, "%d high, %d normal, %d low",
              seen[0], seen[1], seen[2]);
    /* The runs' started_at (Redis time at the claim) agree: no normal run started before the
     * last high one, no low run before the last normal one. */
    long long first[3], last[3];
    for (int r = 0; r < 3; r++) {
        first[r] = -1;
        last[r] = -1;
        for (int i = 0; i < EACH; i++) {
            char id[16];
            snprintf(id, sizeof id, "echo:%c%02d", "hnl"[r], i);
            char *v = wf_test_cmd_str(rc, "HGET wf:{echo}:run:%s started_at", id);
            cr_assert_not_null(v, "run %s has a started_at", id);
            long long t = atoll(v);
            free(v);
            if (first[r] < 0 || t < first[r]) first[r] = t;
            if (t > last[r]) last[r] = t;
        }
    }
    cr_assert_leq(last[0], first[1], "a normal run started before a high one");
    cr_assert_leq(last[1], first[2], "a low run started before a normal one");
}

Test(priority, a_high_run_queued_behind_a_backlog_starts_next)
{
    start_worker("1");
    /* Four slow normal runs (one workflow throughout: a read takes up to COUNT entries per
     * stream): the first takes the one slot, three wait. */
    for (int i = 0; i < 4; i++) {
        char suffix[8];
        snprintf(suffix, sizeof suffix, "n%d", i);
        start("slow", suffix, "400", WF_PRIORITY_NORMAL);
        if (i == 0) wait_execs(1, 10000);
    }
    start("slow", "low", "1", WF_PRIORITY_LOW);
    start("slow", "high", "1", WF_PRIORITY_HIGH);
    wait_execs(6, 20000);
    cr_assert_eq(exec_pos("slow:n0", 1), 0);
    cr_assert_eq(exec_pos("slow:high", 1), 1, "the high run starts as soon as the slot frees");
    cr_assert_eq(exec_pos("slow:n1", 1), 2);
    cr_assert_eq(exec_pos("slow:low", 1), 5, "the low run waits for every normal one");
}

Test(priority, a_retried_high_run_goes_back_onto_the_high_lane)
{
    start_worker("1");
    /* All runs of one workflow (a read takes up to COUNT entries per stream, so runs of two
     * workflows could be read together). A blocker holds the slot while a high run that fails
     * its first attempt (retried after the default 1 s backoff) and three 800 ms normal runs
     * queue up behind it. */
    start("slow", "blocker", "300", WF_PRIORITY_NORMAL);
    wait_execs(1, 10000);
    start("slow", "hi", "{\"ms\": 1, \"fail_first\": true}", WF_PRIORITY_HIGH);
    for (int i = 0; i < 3; i++) {
        char suffix[8];
        snprintf(suffix, sizeof suffix, "n%d", i);
        start("slow", suffix, "800", WF_PRIORITY_NORMAL);
    }
    wait_execs(6, 20000);
    /* blocker, hi attempt 1 (fails), n0, n1; the retry comes due while n1 runs (about 1.1 s
     * after the failure) and is queued on the high lane, so it goes before n2, which was queued
     * long before it. On the normal lane it would run after n2. */
    cr_assert_eq(exec_pos("slow:hi", 1), 1);
    cr_assert_eq(exec_pos("slow:n0", 1), 2);
    int retry = exec_pos("slow:hi", 2), n2 = exec_pos("slow:n2", 1);
    cr_assert(retry > 0 && retry < n2, "the retry (line %d) kept the run's priority (n2: line %d)",
              retry, n2);
    char *pri = wf_test_cmd_str(rc, "HGET wf:{slow}:run:slow:hi pri");
    cr_assert_not_null(pri);
    cr_assert_str_eq(pri, "high");
    free(pri);
}

Test(priority, batch_and_deferred_runs_land_on_their_lane)
{
    /* No worker: the runs stay where they were queued. */
    wf_run_options hi = {.priority = WF_PRIORITY_HIGH, .allow_unregistered = 1};
    wf_run_options lo = {.priority = WF_PRIORITY_LOW, .allow_unregistered = 1};
    wf_run_options no = {.allow_unregistered = 1};
    wf_run *runs[70];
    wf_error err = {0};
    /* 70 high runs: two enqueue.lua calls of the further-runs form. */
    cr_assert_eq(wf_run_workflow_batch(cl, "echo", 70, NULL, NULL, &hi, runs, &err), WF_OK, "%s",
                 err.message);
    wf_status st;
    cr_assert_eq(wf_run_status(runs[69], &st, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_status_priority(&st), WF_PRIORITY_HIGH);
    wf_status_clear(&st);
    for (int i = 0; i < 70; i++) wf_run_free(runs[i]);
    cr_assert_eq(wf_run_workflow_batch(cl, "echo", 1, NULL, NULL, &lo, runs, &err), WF_OK, "%s",
                 err.message);
    wf_run_free(runs[0]);
    cr_assert_eq(wf_run_workflow_batch(cl, "echo", 2, NULL, NULL, &no, runs, &err), WF_OK, "%s",
                 err.message);
    cr_assert_eq(wf_test_cmd_int(rc, "HEXISTS %s pri", wf_run_native(runs[0])), 0,
                 "a normal run stores no priority");
    cr_assert_eq(wf_run_status(runs[0], &st, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_status_priority(&st), WF_PRIORITY_NORMAL);
    wf_status_clear(&st);
    for (int i = 0; i < 2; i++) wf_run_free(runs[i]);
    /* Deferred, on the client's background thread; the id suffix is copied. */
    char suffix[16] = "deferred-low";
    cr_assert_eq(wf_defer_workflow_ex(cl, "echo", NULL, 0, &lo), WF_OK);
    wf_run_options lo_id = lo;
    lo_id.id = suffix;
    cr_assert_eq(wf_defer_workflow_ex(cl, "echo", NULL, 0, &lo_id), WF_OK);
    memset(suffix, 'x', sizeof suffix - 1);
    cr_assert_eq(wf_client_flush(cl, 10000, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue:high"), 70);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 2);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue:low"), 3);
    char *pri = wf_test_cmd_str(rc, "HGET wf:{echo}:run:echo:deferred-low pri");
    cr_assert_not_null(pri, "the deferred run kept its id and priority");
    cr_assert_str_eq(pri, "low");
    free(pri);
    /* Stopping a queued run deletes its entry from its own lane. */
    wf_run *h = wf_get_workflow_run(cl, "echo:deferred-low", &err);
    cr_assert_not_null(h, "%s", err.message);
    cr_assert_eq(wf_run_stop(h, &err), WF_OK, "%s", err.message);
    wf_run_free(h);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue:low"), 2);
    /* The counts per state see every lane. */
    wf_stats *stats;
    size_t n;
    cr_assert_eq(wf_workflow_stats(cl, "echo", &stats, &n, &err), WF_OK, "%s", err.message);
    cr_assert_eq(stats[0].count[WF_STATE_QUEUED], 74);
    wf_stats_free(stats, n);
}

Test(priority, a_bad_priority_is_refused_and_nothing_is_written)
{
    wf_error err = {0};
    wf_run_options bad = {.priority = 2, .allow_unregistered = 1};
    cr_assert_null(wf_run_workflow_ex(cl, "echo", NULL, 0, &bad, &err));
    cr_assert_eq(err.code, WF_ERR_INVALID);
    cr_assert(strstr(err.message, "priority 2"), "%s", err.message);
    bad.priority = -7;
    memset(&err, 0, sizeof err);
    cr_assert_eq(wf_run_workflow_batch(cl, "echo", 3, NULL, NULL, &bad, NULL, &err),
                 WF_ERR_INVALID);
    cr_assert(strstr(err.message, "priority -7"), "%s", err.message);
    cr_assert_eq(wf_defer_workflow_ex(cl, "echo", NULL, 0, &bad), WF_ERR_INVALID);
    cr_assert_eq(wf_client_flush(cl, 5000, &err), WF_OK);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{echo}:queue wf:{echo}:queue:high "
                                     "wf:{echo}:queue:low wf:{echo}:state:queued"),
                 0, "nothing was queued");
    /* Names, both ways. */
    wf_priority p = WF_PRIORITY_NORMAL;
    cr_assert_eq(wf_priority_from_name("high", &p, NULL), WF_OK);
    cr_assert_eq(p, WF_PRIORITY_HIGH);
    cr_assert_eq(wf_priority_from_name("low", &p, NULL), WF_OK);
    cr_assert_eq(p, WF_PRIORITY_LOW);
    cr_assert_eq(wf_priority_from_name("urgent", &p, &err), WF_ERR_INVALID);
    cr_assert(strstr(err.message, "high, normal or low"), "%s", err.message);
    cr_assert_str_eq(wf_priority_name(WF_PRIORITY_NORMAL), "normal");
    cr_assert_null(wf_priority_name(5));
}
