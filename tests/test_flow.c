/* test_flow.c - flow control against a real redis-server and real wf-worker processes. Each rule
 * has a test that fails without it:
 *   - max_running: never more runs of the workflow running than the limit, across two worker
 *     processes with 8 free slots (without it, all 6 runs would run at once);
 *   - held runs hold no slot: with 2 slots and slow runs held back, other workflows' runs still
 *     complete at once (a limit enforced by waiting inside the worker would block them);
 *   - max_per_key: runs with the same key value never overlap, runs with different values do
 *     (without it, same-key runs overlap; with a global limit instead, nothing would);
 * and the held runs show why in `wf status` (waitReason). */
#include "pool_env.h"

static void setup(void)
{
    pool_env_setup("flow");
}

static void teardown(void)
{
    pool_env_teardown();
}

TestSuite(flow, .init = setup, .fini = teardown, .timeout = 90);

static void start_worker(const char *processes, const char *concurrency)
{
    /* Every workflow the tests start (the worker registers them one HSET at a time). */
    const char *names[] = {"slow", "stepper", "echo", NULL};
    const char *extra[] = {"--processes", processes, "--concurrency", concurrency, NULL};
    worker_pid = pool_env_worker(extra, NULL, names);
}

static wf_run *start_json(const char *workflow, const char *json)
{
    return wf_test_start_json(cl, workflow, json, NULL);
}

static int completed(const char *workflow)
{
    return (int)wf_test_cmd_int(rc, "ZCARD wf:{%s}:state:completed", workflow);
}

static int64_t field_ms(wf_run *run, const char *name)
{
    char *v = wf_test_cmd_str(rc, "HGET %s %s", wf_run_native(run), name);
    int64_t ms = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    return ms;
}

Test(flow, max_running_holds_across_workers)
{
    start_worker("2", "4"); /* 8 slots */
    char *wf = wf_test_path("wf");
    char *out = NULL;
    const char *set[] = {wf, "--redis", srv.url, "limit", "slow", "--max-running", "2", NULL};
    cr_assert_eq(wf_test_run(set, NULL, NULL, &out, 10000), 0, "%s", out);
    free(out);
    enum { N = 6 };
    wf_run *runs[N];
    for (int i = 0; i < N; i++) runs[i] = start_json("slow", "400");
    long long max_running = 0;
    int saw_reason = 0;
    for (int t = 0; t < 1500 && completed("slow") < N; t++) { /* at most 15 s */
        long long r = wf_test_cmd_int(rc, "ZCARD wf:{slow}:leases");
        if (r > max_running) max_running = r;
        if (!saw_reason) {
            for (int i = 0; i < N && !saw_reason; i++) {
                char *st = wf_test_cmd_str(rc, "HGET %s wait_reason", wf_run_native(runs[i]));
                if (st && strstr(st, "concurrency limit: 2 of 2 running")) {
                    const char *status[] = {wf,       "--redis",          srv.url,
                                            "status", wf_run_id(runs[i]), NULL};
                    if (wf_test_run(status, NULL, NULL, &out, 10000) == 0 &&
                        strstr(out, "\"waitReason\":\"concurrency limit: 2 of 2 running\""))
                        saw_reason = 1;
                    free(out);
                }
                free(st);
            }
        }
        usleep(10000);
    }
    cr_assert_eq(completed("slow"), N, "every run completed");
    printf("flow test: max running %lld with a limit of 2 and 8 slots\n", max_running);
    cr_assert_leq(max_running, 2, "never more than the limit running (%lld)", max_running);
    cr_assert_eq(max_running, 2, "the limit was used");
    cr_assert(saw_reason, "a held run showed why in `wf status`");
    /* The limit is visible, and removable. */
    const char *show[] = {wf, "--redis", srv.url, "--json", "limit", "slow", NULL};
    cr_assert_eq(wf_test_run(show, NULL, NULL, &out, 10000), 0);
    cr_assert(strstr(out, "\"maxRunning\":2") && strstr(out, "\"held\":0"), "%s", out);
    free(out);
    const char *clear[] = {wf, "--redis", srv.url, "limit", "slow", "--clear", NULL};
    cr_assert_eq(wf_test_run(clear, NULL, NULL, &out, 10000), 0);
    free(out);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{slow}:limits"), 0);
    for (int i = 0; i < N; i++) wf_run_free(runs[i]);
    free(wf);
}

Test(flow, held_runs_hold_no_worker_slot)
{
    start_worker("1", "2"); /* 2 slots in all */
    wf_flow_limits lim = {.max_running = 1};
    wf_error err = {0};
    cr_assert_eq(wf_flow_set(cl, "slow", &lim, &err), WF_OK, "%s", err.message);
    enum { SLOW = 3, FAST = 6 };
    wf_run *slow[SLOW];
    for (int i = 0; i < SLOW; i++) slow[i] = start_json("slow", "2000");
    usleep(300000);
    /* Two slow runs are held, one runs (for 2 s). Other work still gets the second slot at once:
     * without the limit, or if held runs waited inside the worker, both slots would be busy with
     * slow runs for 2 s. */
    for (int i = 0; i < FAST; i++) wf_run_free(start_json("stepper", "{\"n\":1}"));
    for (int t = 0; t < 150 && completed("stepper") < FAST; t++) usleep(10000);
    int fast_done = completed("stepper"), slow_done = completed("slow");
    printf("flow test: %d of %d other runs completed while %d of %d limited runs were done\n",
           fast_done, FAST, slow_done, SLOW);
    cr_assert_eq(fast_done, FAST, "other runs completed within 1.5 s");
    cr_assert_eq(slow_done, 0, "while the limited runs were still running or held back");
    long long held = 0;
    wf_flow_limits got;
    char key[64];
    cr_assert_eq(wf_flow_get(cl, "slow", &got, key, sizeof key, &held, &err), WF_OK);
    cr_assert_eq(got.max_running, 1);
    cr_assert_eq(held, 2, "two runs held back");
    for (int t = 0; t < 1000 && completed("slow") < SLOW; t++) usleep(10000);
    cr_assert_eq(completed("slow"), SLOW, "the held runs all completed in the end");
    for (int i = 0; i < SLOW; i++) wf_run_free(slow[i]);
}

Test(flow, max_per_key_serialises_each_key_only)
{
    start_worker("2", "4");
    wf_flow_limits lim = {.key = "customer", .max_per_key = 1};
    wf_error err = {0};
    cr_assert_eq(wf_flow_set(cl, "stepper", &lim, &err), WF_OK, "%s", err.message);
    wf_flow_limits bad = {.max_per_key = 1};
    cr_assert_eq(wf_flow_set(cl, "stepper", &bad, &err), WF_ERR_INVALID, "per key needs a key");
    enum { PER = 3 };
    wf_run *a[PER], *b[PER];
    for (int i = 0; i < PER; i++) {
        a[i] = start_json("stepper", "{\"n\":1,\"work_ms\":300,\"customer\":\"a\"}");
        b[i] = start_json("stepper", "{\"n\":1,\"work_ms\":300,\"customer\":\"b\"}");
    }
    for (int t = 0; t < 1500 && completed("stepper") < 2 * PER; t++) usleep(10000);
    cr_assert_eq(completed("stepper"), 2 * PER, "every run completed");
    int64_t s[2][PER], f[2][PER];
    for (int i = 0; i < PER; i++) {
        s[0][i] = field_ms(a[i], "started_at");
        f[0][i] = field_ms(a[i], "finished_at");
        s[1][i] = field_ms(b[i], "started_at");
        f[1][i] = field_ms(b[i], "finished_at");
    }
    int same_overlaps = 0, cross_overlaps = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < PER; i++)
            for (int j = 0; j < PER; j++) {
                if (i != j && s[k][i] < f[k][j] && s[k][j] < f[k][i]) same_overlaps++;
                if (s[k][i] < f[1 - k][j] && s[1 - k][j] < f[k][i]) cross_overlaps++;
            }
    printf("flow test: same-key overlaps %d, different-key overlaps %d\n", same_overlaps,
           cross_overlaps);
    cr_assert_eq(same_overlaps, 0, "runs of one customer never ran at the same time");
    cr_assert_gt(cross_overlaps, 0, "runs of different customers did");
    for (int i = 0; i < PER; i++) {
        wf_run_free(a[i]);
        wf_run_free(b[i]);
    }
}

/* ---- rate limits ---------------------------------------------------------------------------- */

static int all_completed(void *arg)
{
    return completed("echo") >= *(int *)arg;
}

static int some_rate_held(void *arg)
{
    (void)arg;
    char *why = NULL;
    redisReply *r = wf_test_command(rc, "ZRANGE wf:{echo}:held 0 0");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        why = wf_test_cmd_str(rc, "HGET wf:{echo}:run:%s wait_reason", r->element[0]->str);
    freeReplyObject(r);
    int ok = why && strncmp(why, "rate limit: ", 12) == 0;
    free(why);
    return ok;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* A workflow-wide rate of 5 per second: 6 runs start at least 200 ms apart (without the limit the
 * 8 free slots start them within a few ms), and the ones held back say why. */
Test(flow, rate_spreads_starts_across_workers)
{
    start_worker("2", "4");
    wf_flow_limits lim = {.rate = 5, .rate_ms = 1000};
    wf_error err = {0};
    cr_assert_eq(wf_flow_set(cl, "echo", &lim, &err), WF_OK, "%s", err.message);
    wf_flow_limits bad = {.rate = 5};
    cr_assert_eq(wf_flow_set(cl, "echo", &bad, &err), WF_ERR_INVALID, "a rate needs a period");
    wf_flow_limits got;
    cr_assert_eq(wf_flow_get(cl, "echo", &got, NULL, 0, NULL, &err), WF_OK);
    cr_assert(got.rate == 5 && got.rate_ms == 1000 && !got.rate_per_key);
    enum { N = 6 };
    wf_run *runs[N];
    for (int i = 0; i < N; i++) runs[i] = start_json("echo", "{\"i\":1}");
    cr_assert(wf_test_wait(some_rate_held, NULL, 5000), "a run waits with a rate-limit reason");
    int n = N;
    cr_assert(wf_test_wait(all_completed, &n, 15000), "every run completed");
    long long s[N];
    for (int i = 0; i < N; i++) s[i] = field_ms(runs[i], "started_at");
    qsort(s, N, sizeof s[0], cmp_ll);
    for (int i = 1; i < N; i++)
        cr_assert_geq(s[i] - s[i - 1], 200, "starts %d and %d are %lld ms apart", i - 1, i,
                      s[i] - s[i - 1]);
    for (int i = 0; i < N; i++) wf_run_free(runs[i]);
}

/* A rate per key: one start per 600 ms for each customer; runs of different customers are not
 * held back by each other's rate. */
Test(flow, rate_per_key_applies_to_each_key_alone)
{
    start_worker("1", "8");
    wf_flow_limits lim = {.key = "customer", .rate = 1, .rate_ms = 600, .rate_per_key = 1};
    wf_error err = {0};
    cr_assert_eq(wf_flow_set(cl, "echo", &lim, &err), WF_OK, "%s", err.message);
    wf_flow_limits nokey = {.rate = 1, .rate_ms = 600, .rate_per_key = 1};
    cr_assert_eq(wf_flow_set(cl, "echo", &nokey, &err), WF_ERR_INVALID);
    enum { PER = 3 };
    wf_run *a[PER], *b[PER];
    for (int i = 0; i < PER; i++) {
        a[i] = start_json("echo", "{\"customer\":\"a\"}");
        b[i] = start_json("echo", "{\"customer\":\"b\"}");
    }
    int n = 2 * PER;
    cr_assert(wf_test_wait(all_completed, &n, 15000), "every run completed");
    long long sa[PER], sb[PER];
    for (int i = 0; i < PER; i++) {
        sa[i] = field_ms(a[i], "started_at");
        sb[i] = field_ms(b[i], "started_at");
    }
    qsort(sa, PER, sizeof sa[0], cmp_ll);
    qsort(sb, PER, sizeof sb[0], cmp_ll);
    int close_cross = 0;
    for (int i = 0; i < PER; i++) {
        if (i > 0) {
            cr_assert_geq(sa[i] - sa[i - 1], 600, "customer a: %lld ms apart", sa[i] - sa[i - 1]);
            cr_assert_geq(sb[i] - sb[i - 1], 600, "customer b: %lld ms apart", sb[i] - sb[i - 1]);
        }
        for (int j = 0; j < PER; j++) close_cross += llabs(sa[i] - sb[j]) < 600;
    }
    cr_assert_gt(close_cross, 0, "customers a and b started within 600 ms of each other");
    for (int i = 0; i < PER; i++) {
        wf_run_free(a[i]);
        wf_run_free(b[i]);
    }
}

/* ---- singleton and debounce ------------------------------------------------------------------ */

static int run_final(void *arg)
{
    wf_status st;
    if (wf_run_status(arg, &st, NULL) != WF_OK) return 0;
    int done = st.state == WF_STATE_COMPLETED;
    wf_status_clear(&st);
    return done;
}

/* Singleton per customer: a second start while one runs returns the same run; another customer
 * gets its own; once the first has ended, a new start makes a new run. */
Test(flow, singleton_returns_the_run_that_stands_for_the_key)
{
    start_worker("1", "4");
    wf_flow_limits lim = {.key = "customer", .singleton = 1};
    wf_error err = {0};
    cr_assert_eq(wf_flow_set(cl, "stepper", &lim, &err), WF_OK, "%s", err.message);
    wf_run *a1 = start_json("stepper", "{\"n\":1,\"work_ms\":600,\"customer\":\"a\"}");
    wf_run *a2 = start_json("stepper", "{\"n\":1,\"work_ms\":600,\"customer\":\"a\"}");
    wf_run *b1 = start_json("stepper", "{\"n\":1,\"work_ms\":600,\"customer\":\"b\"}");
    cr_assert_str_eq(wf_run_id(a2), wf_run_id(a1), "the second start is the first run");
    cr_assert_str_neq(wf_run_id(b1), wf_run_id(a1), "another customer has its own run");
    /* Through a batch as well: it answers with the standing run. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(wf_json_to_msgpack("{\"n\":1,\"customer\":\"a\"}", 22, NULL, &sb, &err), WF_OK);
    const void *payloads[1] = {sb.data};
    size_t lens[1] = {sb.size};
    wf_run *batch[1];
    cr_assert_eq(wf_run_workflow_batch(cl, "stepper", 1, payloads, lens, NULL, batch, &err), WF_OK,
                 "%s", err.message);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_str_eq(wf_run_id(batch[0]), wf_run_id(a1));
    wf_run_free(batch[0]);
    cr_assert(wf_test_wait(run_final, a1, 15000), "the first run completed");
    wf_run *a3 = start_json("stepper", "{\"n\":1,\"customer\":\"a\"}");
    cr_assert_str_neq(wf_run_id(a3), wf_run_id(a1), "after it ended, a new run");
    /* Counted once all have ended: three separate ZCARDs of moving runs could see a run in no
     * index or in two (a3 claimed between the reads). */
    cr_assert(wf_test_wait(run_final, a3, 15000), "a3 completed");
    cr_assert(wf_test_wait(run_final, b1, 15000), "b1 completed");
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{stepper}:state:completed"), 3,
                 "three runs in all: a1, b1, a3");
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{stepper}:leases") +
                     wf_test_cmd_int(rc, "XLEN wf:{stepper}:queue"),
                 0);
    wf_run_free(a1);
    wf_run_free(a2);
    wf_run_free(a3);
    wf_run_free(b1);
}

/* Debounce 400 ms per customer: three starts 100 ms apart make one run, which starts at least
 * 400 ms after the last of them, with the first start's input. */
Test(flow, debounce_starts_once_after_the_quiet_period)
{
    start_worker("1", "4");
    wf_flow_limits lim = {.key = "customer", .debounce_ms = 400};
    wf_error err = {0};
    cr_assert_eq(wf_flow_set(cl, "echo", &lim, &err), WF_OK, "%s", err.message);
    wf_flow_limits neg = {.debounce_ms = -1};
    cr_assert_eq(wf_flow_set(cl, "echo", &neg, &err), WF_ERR_INVALID);
    wf_run *r[3];
    char body[64];
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "{\"customer\":\"a\",\"i\":%d}", i);
        r[i] = start_json("echo", body);
        if (i < 2) usleep(100 * 1000); /* the scenario: requests 100 ms apart (nothing awaited) */
    }
    redisReply *tr = wf_test_command(rc, "TIME"); /* Redis time just after the last request */
    cr_assert(tr && tr->type == REDIS_REPLY_ARRAY && tr->elements == 2);
    long long t_last = atoll(tr->element[0]->str) * 1000 + atoll(tr->element[1]->str) / 1000;
    freeReplyObject(tr);
    cr_assert_str_eq(wf_run_id(r[1]), wf_run_id(r[0]));
    cr_assert_str_eq(wf_run_id(r[2]), wf_run_id(r[0]));
    char *why = wf_test_cmd_str(rc, "HGET %s wait_reason", wf_run_native(r[0]));
    cr_assert(why && strncmp(why, "debounce", 8) == 0, "waits for the quiet period: %s", why);
    free(why);
    wf_run *other = start_json("echo", "{\"customer\":\"b\"}");
    cr_assert_str_neq(wf_run_id(other), wf_run_id(r[0]));
    cr_assert(wf_test_wait(run_final, r[0], 10000), "the debounced run completed");
    int64_t started = field_ms(r[0], "started_at");
    cr_assert_geq(started, t_last + 400 - 5, "started %lld ms after the last request",
                  (long long)(started - t_last));
    wf_status st;
    cr_assert_eq(wf_run_status(r[0], &st, &err), WF_OK);
    cr_assert_not_null(memmem(st.output, st.output_len, "\xa1i\x00", 3), "the first input");
    wf_status_clear(&st);
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed") +
                     wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:waiting") +
                     wf_test_cmd_int(rc, "XLEN wf:{echo}:queue") +
                     wf_test_cmd_int(rc, "ZCARD wf:{echo}:leases"),
                 2, "one run for customer a, one for b");
    for (int i = 0; i < 3; i++) wf_run_free(r[i]);
    wf_run_free(other);
}
