/* test_lua_leases.c - stop.lua, heartbeat.lua, reclaim.lua and wake.lua on their own against a real
 * redis-server: cancelling in every state, leases renewed, lost and reclaimed, timers due.
 * Shared set-up and helpers: lua_env.h. */
#include "lua_env.h"

Test(lua, stop_cancels_a_queued_run_and_removes_its_entry)
{
    const char *id = run_id("sq");
    enqueue(id, "0", "queued");
    redisReply *r = stop(id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r->str, "queued");
    freeReplyObject(r);
    assert_state(id, "cancelled");
    cr_assert_str_eq(hget(id, "error"), "stopped by test");
    cr_assert_eq(xlen(), 0);
    cr_assert_null(hget(id, "entry"));
}

Test(lua, stop_cancels_a_waiting_run_and_its_timer)
{
    const char *id = run_id("sw");
    enqueue(id, "60000", "waiting");
    redisReply *r = stop(id);
    cr_assert_str_eq(r->str, "waiting");
    freeReplyObject(r);
    assert_state(id, "cancelled");
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], id), -1);
    cr_assert_null(hget(id, "wake_at"));
}

Test(lua, stop_cancels_a_running_run_and_drops_its_lease)
{
    const char *id = run_id("sr");
    const char *token = enqueue_and_claim(id, "30000");
    redisReply *r = stop(id);
    cr_assert_str_eq(r->str, "running");
    freeReplyObject(r);
    assert_state(id, "cancelled");
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    /* Its worker learns it at the next heartbeat. */
    r = eval(WF__SCRIPT_HEARTBEAT, 1, run_key(id), "30000", id, token, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(r->element[0]->element[0]->str, id);
    cr_assert_str_eq(r->element[0]->element[1]->str, token);
    freeReplyObject(r);
}

Test(lua, stop_of_a_final_run_is_refused)
{
    const char *id = run_id("sf");
    enqueue(id, "0", "queued");
    freeReplyObject(stop(id));
    expect_error(stop(id), "FINAL cancelled");
    assert_state(id, "cancelled");
}

Test(lua, stop_of_an_unknown_run_is_notfound)
{
    expect_error(stop(run_id("nobody")), "NOTFOUND ");
}

/* ---- heartbeat ------------------------------------------------------------------------------- */

Test(lua, heartbeat_extends_leases_and_reports_lost_runs)
{
    const char *a = run_id("hb-a"), *b = run_id("hb-b");
    const char *ta = enqueue_and_claim(a, "1000");
    const char *tb = enqueue_and_claim(b, "1000");
    long long before = zscore(wk.k[WF__K_LEASES], a);
    freeReplyObject(stop(b));
    long long t0 = rnow();
    redisReply *r =
        eval(WF__SCRIPT_HEARTBEAT, 2, run_key(a), run_key(b), "60000", a, ta, b, tb, NULL);
    long long t1 = rnow();
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 1, "only b is lost");
    cr_assert_str_eq(r->element[0]->element[0]->str, b);
    cr_assert_str_eq(r->element[0]->element[1]->str, tb);
    freeReplyObject(r);
    long long after = zscore(wk.k[WF__K_LEASES], a);
    cr_assert(after > before && after >= t0 + 60000 && after <= t1 + 60000);
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], b), -1, "a lost run gets no lease back");
}

Test(lua, heartbeat_with_a_wrong_token_reports_the_run_lost)
{
    const char *id = run_id("hb-w");
    enqueue_and_claim(id, "30000");
    long long before = zscore(wk.k[WF__K_LEASES], id);
    redisReply *r = eval(WF__SCRIPT_HEARTBEAT, 1, run_key(id), "60000", id, "7", NULL);
    cr_assert_eq(r->elements, 1);
    freeReplyObject(r);
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), before, "lease untouched");
}

/* One worker may hold a run twice for a moment: the handler of an attempt whose lease was taken
 * (pause + resume, restart) has not returned yet when the run is claimed again. Only the stale
 * token is reported, so the new attempt is not cancelled with the old one. */
Test(lua, heartbeat_tells_an_old_attempt_from_a_new_one_of_the_same_run)
{
    const char *id = run_id("hb-twice");
    char *old = strdup(enqueue_and_claim(id, "30000"));
    redisReply *r = wf_test_command(c, "HINCRBY %s lease 1", run_key(id)); /* claimed again */
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    char cur[32];
    snprintf(cur, sizeof cur, "%lld", r->integer);
    freeReplyObject(r);
    r = eval(WF__SCRIPT_HEARTBEAT, 2, run_key(id), run_key(id), "60000", id, old, id, cur, NULL);
    cr_assert_eq(r->elements, 1, "only the old attempt is lost");
    cr_assert_str_eq(r->element[0]->element[0]->str, id);
    cr_assert_str_eq(r->element[0]->element[1]->str, old);
    freeReplyObject(r);
    free(old);
}

/* ---- reclaim --------------------------------------------------------------------------------- */

static long long reclaim(const char *id, const char *max)
{
    return expect_int(
        eval(WF__SCRIPT_RECLAIM, 2, run_key(id), steps_key(id), max, RETENTION, id, NULL));
}

Test(lua, reclaim_requeues_a_run_whose_lease_expired)
{
    const char *id = run_id("rc");
    const char *token = enqueue_and_claim(id, "1");
    wait_due(wk.k[WF__K_LEASES], id);
    cr_assert_eq(reclaim(id, "3"), 1);
    assert_state(id, "queued");
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    cr_assert_str_eq(hget(id, "lease"), "2", "token moved on");
    cr_assert_str_eq(hget(id, "reclaims"), "1");
    cr_assert(strstr(hget(id, "error"), "lease expired"), "%s", hget(id, "error"));
    cr_assert_eq(xlen(), 1, "a new stream entry");
    /* The old worker's late answer is refused. */
    expect_error(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token, "out", RETENTION, NULL),
        "STALE ");
    /* The new entry is the run's current one: the next claim takes it with a new token. */
    const char *token2 = claim(id, "30000");
    cr_assert_str_eq(token2, "3");
    assert_state(id, "running");
}

Test(lua, reclaim_fails_a_run_over_max_reclaims)
{
    const char *id = run_id("poison");
    enqueue_and_claim(id, "1");
    wf_test_cmd_int(c, "HSET %s reclaims 2", run_key(id));
    cr_assert_str_eq(hget(id, "reclaims"), "2");
    wait_due(wk.k[WF__K_LEASES], id);
    cr_assert_eq(reclaim(id, "2"), 1);
    assert_state(id, "failed");
    const char *e = hget(id, "error");
    cr_assert(strstr(e, "worker lost 3 times"), "%s", e);
    cr_assert(strstr(e, "c1"), "names the last worker: %s", e);
    cr_assert_eq(xlen(), 0);
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    cr_assert_not_null(hget(id, "finished_at"));
}

Test(lua, reclaim_leaves_a_live_lease_alone)
{
    const char *id = run_id("live");
    const char *token = enqueue_and_claim(id, "60000");
    long long lease = zscore(wk.k[WF__K_LEASES], id);
    cr_assert_eq(reclaim(id, "3"), 0);
    assert_state(id, "running");
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), lease);
    cr_assert_str_eq(hget(id, "lease"), token);
    cr_assert_eq(xlen(), 0);
}

/* ---- wake ------------------------------------------------------------------------------------ */

Test(lua, wake_queues_a_due_run)
{
    const char *id = run_id("wk");
    enqueue(id, "1", "waiting");
    wait_due(wk.k[WF__K_DELAYED], id);
    cr_assert_eq(expect_int(eval(WF__SCRIPT_WAKE, 1, run_key(id), id, NULL)), 1);
    assert_state(id, "queued");
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], id), -1);
    cr_assert_null(hget(id, "wait_reason"));
    cr_assert_null(hget(id, "wake_at"));
    cr_assert_eq(xlen(), 1);
}

Test(lua, wake_after_a_retry_carries_the_next_attempt)
{
    const char *id = run_id("wr");
    const char *token = enqueue_and_claim(id, "30000");
    freeReplyObject(fail(id, token, "0", "3", "1000", "60000", "1", "failed"));
    wait_due(wk.k[WF__K_DELAYED], id);
    cr_assert_eq(expect_int(eval(WF__SCRIPT_WAKE, 1, run_key(id), id, NULL)), 1);
    /* claim() checks that the record's attempt is what the claim hands out. */
    claim(id, "30000");
    cr_assert_str_eq(hget(id, "attempt"), "2");
}

Test(lua, wake_leaves_a_run_that_is_not_due)
{
    const char *id = run_id("notdue");
    enqueue(id, "60000", "waiting");
    long long due = zscore(wk.k[WF__K_DELAYED], id);
    cr_assert_eq(expect_int(eval(WF__SCRIPT_WAKE, 1, run_key(id), id, NULL)), 0);
    assert_state(id, "waiting");
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], id), due);
    cr_assert_eq(xlen(), 0);
}
