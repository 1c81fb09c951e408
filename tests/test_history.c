/* test_history.c - the per-minute counters of started, completed and failed runs that the scripts
 * keep (lib_history.lua hist_add, P:{W}:hist:KIND:HOUR) and wf_workflow_history(), which reads
 * them. The scripts are called directly (lua_env.h), so every transition is exact: first claims
 * count as started, reclaims and retries do not; a batch completion counts each run; a retry is not
 * a failure, the final failure is, and so is a run reclaim.lua gives up on. */
#include "lua_env.h"

typedef struct totals {
    long long started, completed, failed;
    size_t n;
} totals;

static totals history_totals(void)
{
    wf_error err = {0};
    wf_client *cl = wf_client_connect(srv.url, &err);
    cr_assert_not_null(cl, "%s", err.message);
    wf_history_point *p = NULL;
    totals t = {0};
    cr_assert_eq(wf_workflow_history(cl, WFN, 0, 0, &p, &t.n, &err), WF_OK, "%s", err.message);
    for (size_t i = 0; i < t.n; i++) {
        t.started += p[i].started;
        t.completed += p[i].completed;
        t.failed += p[i].failed;
        if (i > 0) cr_assert_eq(p[i].minute_ms - p[i - 1].minute_ms, 60000);
    }
    long long now = rnow();
    cr_assert_eq(p[t.n - 1].minute_ms, now - now % 60000, "the last point is the current minute");
    wf_history_free(p);
    wf_client_free(cl);
    return t;
}

static void wake(const char *id)
{
    wait_due(wk.k[WF__K_DELAYED], id);
    cr_assert_eq(expect_int(eval(WF__SCRIPT_WAKE, 1, run_key(id), id, NULL)), 1);
}

static void reclaim(const char *id, const char *max_reclaims)
{
    wait_due(wk.k[WF__K_LEASES], id);
    cr_assert_eq(expect_int(eval(WF__SCRIPT_RECLAIM, 2, run_key(id), steps_key(id), max_reclaims,
                                 RETENTION, id, NULL)),
                 1);
}

Test(lua, history_counts_first_starts_and_final_ends)
{
    const char *a = run_id("a"), *b = run_id("b"), *cc = run_id("c"), *d = run_id("d"),
               *e = run_id("e"), *f = run_id("f"), *g = run_id("g");
    const char *ta = enqueue_and_claim(a, "30000");
    const char *tb = enqueue_and_claim(b, "30000");
    const char *tc = enqueue_and_claim(cc, "30000");
    expect_status_ok(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(a), steps_key(a), a, ta, "out", RETENTION, NULL));
    /* The worker's batch form counts each run. */
    redisReply *r = eval(WF__SCRIPT_COMPLETE, 4, run_key(b), steps_key(b), run_key(cc),
                         steps_key(cc), b, tb, "out", cc, tc, "out", RETENTION, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    /* d: a retry (not a failure, and its second claim is not a start), then the final failure. */
    const char *td = enqueue_and_claim(d, "30000");
    freeReplyObject(fail(d, td, "0", "2", "10", "10", "0", "failed"));
    assert_state(d, "waiting");
    wake(d);
    td = claim(d, "30000");
    freeReplyObject(fail(d, td, "0", "2", "10", "10", "0", "failed"));
    assert_state(d, "failed");
    /* e: a fatal failure. */
    const char *te = enqueue_and_claim(e, "30000");
    freeReplyObject(fail(e, te, "1", "5", "10", "10", "-1", "terminated"));
    /* f: its worker dies; the run is re-queued and claimed again (not a start), then completes. */
    enqueue_and_claim(f, "1");
    reclaim(f, "5");
    const char *tf = claim(f, "30000");
    expect_status_ok(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(f), steps_key(f), f, tf, "out", RETENTION, NULL));
    /* g: reclaimed once too often: reclaim.lua fails it. */
    enqueue_and_claim(g, "1");
    reclaim(g, "0");
    assert_state(g, "failed");
    /* The same scripts record the runs' histories (lib_history.lua ev_fields; test_run_events.c).
     */
    cr_assert(strstr(hget(f, "ev3"), " reclaimed lease expired: worker c1 presumed dead"), "%s",
              hget(f, "ev3"));
    cr_assert(strstr(hget(g, "ev3"), " failed worker lost 1 times"), "%s", hget(g, "ev3"));
    cr_assert(strstr(hget(d, "ev3"), " retried attempt 1: boom; attempt 2 at "), "%s",
              hget(d, "ev3"));

    totals t = history_totals();
    cr_assert_eq(t.n, 60);
    cr_assert_eq(t.started, 7, "started %lld", t.started);
    cr_assert_eq(t.completed, 4, "completed %lld", t.completed);
    cr_assert_eq(t.failed, 3, "failed %lld", t.failed);

    /* Every counter hash expires (25 h), named as docs/redis-layout.md says. */
    long long hour = rnow() / 3600000;
    int found = 0;
    for (long long h = hour - 1; h <= hour; h++)
        for (const char *k = "scf"; *k; k++) {
            char key[64];
            snprintf(key, sizeof key, "wf:{" WFN "}:hist:%c:%lld", *k, h);
            long long ttl = wf_test_cmd_int(c, "TTL %s", key);
            if (ttl == -2) continue; /* no such key: the test did not straddle that hour */
            cr_assert(ttl > 0 && ttl <= 90000, "TTL %lld of %s", ttl, key);
            found++;
        }
    cr_assert_geq(found, 3);
}

Test(lua, history_range_and_arguments)
{
    wf_error err = {0};
    wf_client *cl = wf_client_connect(srv.url, &err);
    cr_assert_not_null(cl, "%s", err.message);
    wf_history_point *p = NULL;
    size_t n = 0;
    /* A range: since rounded down to its minute, until exclusive. */
    cr_assert_eq(wf_workflow_history(cl, WFN, 600030, 600000 + 3 * 60000 + 1, &p, &n, &err), WF_OK,
                 "%s", err.message);
    cr_assert_eq(n, 4);
    cr_assert_eq(p[0].minute_ms, 600000);
    cr_assert_eq(p[3].minute_ms, 780000);
    cr_assert_eq(p[0].started + p[3].completed, 0);
    wf_history_free(p);
    /* A counter written by hand lands on its minute. */
    cr_assert_eq(wf_test_cmd_int(c, "HSET wf:{" WFN "}:hist:c:0 12 5"), 1);
    cr_assert_eq(wf_workflow_history(cl, WFN, 11 * 60000, 14 * 60000, &p, &n, &err), WF_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(p[0].completed, 0);
    cr_assert_eq(p[1].completed, 5);
    cr_assert_eq(p[1].minute_ms, 12 * 60000);
    wf_history_free(p);
    cr_assert_eq(wf_workflow_history(cl, "bad name", 0, 0, &p, &n, &err), WF_ERR_BAD_NAME);
    cr_assert_null(p);
    cr_assert_eq(wf_workflow_history(cl, WFN, 120000, 60000, &p, &n, &err), WF_ERR_INVALID);
    cr_assert_eq(wf_workflow_history(cl, WFN, 60000, 60000 + 10081LL * 60000, &p, &n, &err),
                 WF_ERR_INVALID);
    cr_assert_eq(wf_workflow_history(cl, WFN, -1, 0, &p, &n, &err), WF_ERR_INVALID);
    cr_assert_eq(wf_workflow_history(cl, WFN, 0, 0, NULL, &n, &err), WF_ERR_INVALID);
    wf_history_free(NULL);
    wf_client_free(cl);
}
