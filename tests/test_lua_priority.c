/* test_lua_priority.c - priority lanes in the scripts on their own against a real redis-server: a
 * run with a priority is queued on its lane (P:{W}:queue:high / :low) by enqueue.lua and by every
 * script that queues it again (wake after a retry, reclaim, release, restart, resume), its entry
 * is acknowledged by claim.lua and deleted by stop/pause/restart on that lane, and a normal run
 * keeps using P:{W}:queue with no `pri` field. Shared set-up and helpers: lua_env.h. */
#include "lua_env.h"
#include "script_call.h"

#define HIGH WF__K_QUEUE_HIGH
#define LOW  WF__K_QUEUE_LOW

/* The consumer group on the two extra lanes (lua_env.h makes it on the normal queue). */
static void lanes(void)
{
    wf_error err = {0};
    cr_assert_eq(wf_test_ensure_group(c, wk.k[HIGH], &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_test_ensure_group(c, wk.k[LOW], &err), WF_OK, "%s", err.message);
}

static long long lane_len(int k)
{
    return wf_test_cmd_int(c, "XLEN %s", wk.k[k]);
}

/* enqueue.lua with a priority argument ('high', 'low', '' for normal). */
static void enqueue_pri(const char *id, const char *pri)
{
    redisReply *r = eval(WF__SCRIPT_ENQUEUE, 1, run_key(id), id, WFN, "in", "0", "", "", pri, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "enqueue: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
}

/* Reads lane k's next entry as consumer c1 and claims it with claim.lua, telling it the lane
 * `pri`; asserts it is run `id`'s and returns the token (kept). */
static const char *claim_lane(int k, const char *pri, const char *id, const char *lease_ms)
{
    redisReply *r =
        wf_test_command(c, "XREADGROUP GROUP %s c1 COUNT 1 STREAMS %s >", WF__GROUP, wk.k[k]);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "no entry on %s", wk.k[k]);
    redisReply *msg = r->element[0]->element[1]->element[0];
    char *entry = keep(strdup(msg->element[0]->str));
    char rid[WF__ID_MAX];
    int attempt = 0;
    wf_error err = {0};
    cr_assert_eq(wf__record_decode(msg->element[1]->element[1]->str,
                                   msg->element[1]->element[1]->len, rid, &attempt, &err),
                 WF_OK, "%s", err.message);
    cr_assert_str_eq(rid, id);
    cr_assert_str_eq(hget(id, "entry"), entry, "the run's current entry");
    freeReplyObject(r);
    r = eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", lease_ms, "1", pri, "r", entry, id, "", NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "claim: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->element[0]->elements, 5, "claim did not take run %s", id);
    char *token = keep(strdup(r->element[0]->element[1]->str));
    freeReplyObject(r);
    return token;
}

/* Entries read but not acknowledged on lane k. */
static long long lane_pending(int k)
{
    redisReply *r = wf_test_command(c, "XPENDING %s %s", wk.k[k], WF__GROUP);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1);
    long long n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

Test(lua, enqueue_puts_a_run_on_the_lane_of_its_priority)
{
    lanes();
    const char *h = run_id("ph"), *n = run_id("pn"), *l = run_id("pl");
    enqueue_pri(h, "high");
    enqueue_pri(n, "");
    enqueue_pri(l, "low");
    cr_assert_eq(lane_len(HIGH), 1);
    cr_assert_eq(lane_len(WF__K_QUEUE), 1);
    cr_assert_eq(lane_len(LOW), 1);
    cr_assert_str_eq(hget(h, "pri"), "high");
    cr_assert_str_eq(hget(l, "pri"), "low");
    cr_assert_null(hget(n, "pri"), "a normal run costs no field");
    /* Claimed from its lane: acknowledged and deleted there, nowhere else. */
    claim_lane(HIGH, "high", h, "30000");
    assert_state(h, "running");
    cr_assert_eq(lane_len(HIGH), 0);
    cr_assert_eq(lane_pending(HIGH), 0);
    cr_assert_eq(lane_len(WF__K_QUEUE), 1, "the normal run's entry is untouched");
    claim_lane(LOW, "low", l, "30000");
    cr_assert_eq(lane_len(LOW), 0);
    cr_assert_eq(lane_pending(LOW), 0);
}

Test(lua, a_retried_run_is_woken_onto_its_lane)
{
    lanes();
    const char *id = run_id("retry");
    enqueue_pri(id, "high");
    const char *token = claim_lane(HIGH, "high", id, "30000");
    freeReplyObject(fail(id, token, "0", "3", "1", "60000", "-1", "failed"));
    assert_state(id, "waiting");
    wait_due(wk.k[WF__K_DELAYED], id);
    cr_assert_eq(expect_int(eval(WF__SCRIPT_WAKE, 1, run_key(id), id, NULL)), 1);
    cr_assert_eq(lane_len(HIGH), 1, "back on the high lane");
    cr_assert_eq(lane_len(WF__K_QUEUE), 0);
    claim_lane(HIGH, "high", id, "30000");
    cr_assert_str_eq(hget(id, "attempt"), "2");
}

Test(lua, reclaim_release_restart_and_resume_keep_the_lane)
{
    lanes();
    const char *id = run_id("keep");
    enqueue_pri(id, "low");
    /* Reclaimed after its lease expired. */
    claim_lane(LOW, "low", id, "1");
    wait_due(wk.k[WF__K_LEASES], id);
    cr_assert_eq(expect_int(eval(WF__SCRIPT_RECLAIM, 2, run_key(id), steps_key(id), "3", RETENTION,
                                 id, NULL)),
                 1);
    cr_assert_eq(lane_len(LOW), 1, "reclaim queued it on the low lane");
    /* Released by a draining worker. */
    const char *token = claim_lane(LOW, "low", id, "30000");
    expect_status_ok(eval(WF__SCRIPT_RELEASE, 1, run_key(id), id, token, NULL));
    cr_assert_eq(lane_len(LOW), 1, "release queued it on the low lane");
    /* Restarted while queued: the old entry goes from the low lane, the new one comes to it. */
    const char *old = hget(id, "entry");
    expect_int(eval(WF__SCRIPT_RESTART, 2, run_key(id), steps_key(id), id, "0", NULL));
    cr_assert_eq(lane_len(LOW), 1);
    cr_assert_str_neq(hget(id, "entry"), old);
    cr_assert_eq(wf_test_cmd_int(c, "XLEN %s", wk.k[WF__K_QUEUE]), 0);
    /* Paused while queued: its entry leaves the low lane; resumed: a new one. */
    redisReply *r = eval(WF__SCRIPT_PAUSE, 1, run_key(id), id, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    cr_assert_eq(lane_len(LOW), 0, "pause deleted the entry on the run's lane");
    r = eval(WF__SCRIPT_RESUME, 1, run_key(id), id, NULL);
    cr_assert_str_eq(r->str, "queued");
    freeReplyObject(r);
    cr_assert_eq(lane_len(LOW), 1);
    /* Stopped while queued: the entry is gone from its lane. */
    freeReplyObject(stop(id));
    assert_state(id, "cancelled");
    cr_assert_eq(lane_len(LOW), 0);
    cr_assert_eq(lane_len(HIGH) + lane_len(WF__K_QUEUE), 0, "no other lane was touched");
}

Test(lua, a_clobbered_lane_refuses_only_runs_of_that_priority)
{
    lanes();
    cr_assert_eq(wf_test_cmd_int(c, "DEL %s", wk.k[HIGH]), 1);
    free(wf_test_cmd_str(c, "SET %s x", wk.k[HIGH]));
    const char *h = run_id("ch");
    expect_error(eval(WF__SCRIPT_ENQUEUE, 1, run_key(h), h, WFN, "in", "0", "", "", "high", NULL),
                 "WRONGTYPE wf key wf:{lt}:queue:high");
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", run_key(h)), 0, "nothing half-written");
    enqueue_pri(run_id("cn"), "");
    enqueue_pri(run_id("cl"), "low");
}
