/* test_lua_start.c - enqueue.lua and claim.lua on their own against a real redis-server: new,
 * duplicate and delayed runs; claims, stale entries and dead letters. Shared set-up and helpers:
 * lua_env.h. */
#include "lua_env.h"

#define LIMITS_KEY PREFIX ":{" WFN "}:limits"
#define SINGLE_KEY PREFIX ":{" WFN "}:single"

/* ---- enqueue --------------------------------------------------------------------------------- */

Test(lua, enqueue_new_run_is_queued_with_a_stream_entry)
{
    const char *id = run_id("a1");
    long long t0 = rnow();
    enqueue(id, "0", "queued");
    assert_state(id, "queued");
    cr_assert_str_eq(hget(id, "workflow"), WFN);
    cr_assert_str_eq(hget(id, "attempt"), "1");
    cr_assert_str_eq(hget(id, "input"), "input-bytes");
    /* Counters are made when first counted (the claim, a reclaim): a queued run stays small. */
    cr_assert_null(hget(id, "lease"));
    cr_assert_null(hget(id, "reclaims"));
    cr_assert_geq(atoll(hget(id, "created_at")), t0);
    cr_assert_eq(xlen(), 1);

    char entry[64], rid[WF__ID_MAX];
    int attempt = 0;
    cr_assert(read_entry(entry, sizeof entry, rid, &attempt));
    cr_assert_str_eq(rid, id);
    cr_assert_eq(attempt, 1);
    cr_assert_str_eq(hget(id, "entry"), entry, "the hash remembers its current entry");
}

Test(lua, enqueue_of_several_runs_answers_each_in_order)
{
    /* wf_run_workflow_batch's form: further runs after the first, one answer per run; an id
     * that exists is answered as such and left alone. */
    const char *a = run_id("many-a"), *b = run_id("many-b"), *d = run_id("many-dup");
    enqueue(d, "0", "queued");
    char entry[64];
    cr_assert(read_entry(entry, sizeof entry, NULL, NULL));
    redisReply *r =
        eval(WF__SCRIPT_ENQUEUE, 5, run_key(a), LIMITS_KEY, SINGLE_KEY, run_key(d), run_key(b), a,
             WFN, "in-a", "0", "", "", "", "", d, "in-d", b, "in-b", NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "enqueue: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->element[0]->integer, 1);
    cr_assert_str_eq(r->element[0]->element[1]->str, "queued");
    cr_assert_eq(r->element[1]->element[0]->integer, 0, "the existing run is not created again");
    cr_assert_eq(r->element[2]->element[0]->integer, 1);
    freeReplyObject(r);
    cr_assert_str_eq(hget(a, "input"), "in-a");
    cr_assert_str_eq(hget(b, "input"), "in-b");
    cr_assert_str_eq(hget(d, "input"), "input-bytes", "untouched");
    assert_state(b, "queued");
    cr_assert_eq(xlen(), 3, "one entry per new run (and d's own)");
    char rid[WF__ID_MAX];
    cr_assert(read_entry(entry, sizeof entry, rid, NULL));
    cr_assert_str_eq(rid, a);
    cr_assert(read_entry(entry, sizeof entry, rid, NULL));
    cr_assert_str_eq(rid, b);
}

Test(lua, enqueue_duplicate_id_returns_existing_state_untouched)
{
    const char *id = run_id("dup");
    enqueue(id, "0", "queued");
    redisReply *r = eval(WF__SCRIPT_ENQUEUE, 1, run_key(id), id, WFN, "other-input", "0", NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->element[0]->integer, 0);
    cr_assert_str_eq(r->element[1]->str, "queued");
    freeReplyObject(r);
    cr_assert_str_eq(hget(id, "input"), "input-bytes");
    cr_assert_eq(xlen(), 1, "no second stream entry");
}

Test(lua, enqueue_with_delay_waits_in_the_delayed_zset)
{
    const char *id = run_id("later");
    long long t0 = rnow();
    enqueue(id, "60000", "waiting");
    long long t1 = rnow();
    assert_state(id, "waiting");
    cr_assert_str_eq(hget(id, "wait_reason"), "delayed start");
    long long due = zscore(wk.k[WF__K_DELAYED], id);
    cr_assert(due >= t0 + 60000 && due <= t1 + 60000, "due %lld not in [%lld, %lld]", due,
              t0 + 60000, t1 + 60000);
    cr_assert_eq(atoll(hget(id, "wake_at")), due);
    cr_assert_eq(xlen(), 0, "not on the queue yet");
    cr_assert_null(hget(id, "entry"));
}

/* ---- claim ----------------------------------------------------------------------------------- */

Test(lua, claim_turns_queued_into_running_with_token_and_lease)
{
    const char *id = run_id("c1");
    enqueue(id, "0", "queued");
    char entry[64], rid[WF__ID_MAX];
    int attempt = 0;
    cr_assert(read_entry(entry, sizeof entry, rid, &attempt));
    cr_assert_eq(xpending(), 1);
    long long t0 = rnow();
    redisReply *r = eval(WF__SCRIPT_CLAIM, 1, run_key(id), "worker-7", "30000", "1", "", "r", entry,
                         id, "", NULL);
    long long t1 = rnow();
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 1);
    redisReply *it = r->element[0];
    cr_assert_eq(it->elements, 5);
    cr_assert_str_eq(it->element[0]->str, id);
    cr_assert_str_eq(it->element[1]->str, "1", "first lease token");
    cr_assert_eq(it->element[2]->integer, 1, "attempt");
    cr_assert_str_eq(it->element[3]->str, "input-bytes");
    long long started = it->element[4]->integer;
    cr_assert(started >= t0 && started <= t1);
    freeReplyObject(r);

    assert_state(id, "running");
    cr_assert_str_eq(hget(id, "lease"), "1");
    cr_assert_str_eq(hget(id, "worker"), "worker-7");
    cr_assert_eq(atoll(hget(id, "started_at")), started);
    /* The entry id stays in the hash until the run ends (no HDEL on the hot path); it is stale
     * already, since the stream entry is gone and a claim needs state queued. */
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), started + 30000);
    cr_assert_eq(xlen(), 0, "entry deleted at claim");
    cr_assert_eq(xpending(), 0, "entry acknowledged at claim");
}

Test(lua, claim_skips_and_deletes_a_stale_entry)
{
    /* The run was stopped after its entry was read: the entry is stale. */
    const char *id = run_id("stale");
    enqueue(id, "0", "queued");
    char entry[64];
    cr_assert(read_entry(entry, sizeof entry, NULL, NULL));
    redisReply *s =
        eval(WF__SCRIPT_STOP, 2, run_key(id), steps_key(id), id, "stop", RETENTION, NULL);
    cr_assert_eq(s->type, REDIS_REPLY_STRING);
    freeReplyObject(s);

    redisReply *r =
        eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", "30000", "1", "", "r", entry, id, "", NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 1);
    cr_assert_eq(r->element[0]->elements, 1, "stale: only the id comes back");
    cr_assert_str_eq(r->element[0]->element[0]->str, id);
    freeReplyObject(r);
    assert_state(id, "cancelled");
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    cr_assert_eq(xpending(), 0);
    cr_assert_eq(xlen(), 0);
}

Test(lua, claim_of_an_entry_that_is_no_longer_the_runs_current_one_is_stale)
{
    /* A queued run whose hash points at a newer entry (re-queued since): the old one is skipped. */
    const char *id = run_id("old");
    enqueue(id, "0", "queued");
    char entry[64];
    cr_assert(read_entry(entry, sizeof entry, NULL, NULL));
    cr_assert_eq(wf_test_cmd_int(c, "HSET %s entry 9999999999999-0", run_key(id)), 0);
    redisReply *r =
        eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", "30000", "1", "", "r", entry, id, "", NULL);
    cr_assert_eq(r->element[0]->elements, 1);
    freeReplyObject(r);
    assert_state(id, "queued");
    cr_assert_null(hget(id, "lease"), "no token handed out");
    cr_assert_eq(xlen(), 0);
    cr_assert_eq(xpending(), 0);
}

Test(lua, claim_sends_a_bad_entry_to_the_dead_list)
{
    char *bad = wf_test_cmd_str(c, "XADD %s * r not-msgpack", wk.k[WF__K_QUEUE]);
    cr_assert_not_null(bad);
    keep(bad);
    char entry[64];
    cr_assert(read_entry(entry, sizeof entry, NULL, NULL));
    cr_assert_str_eq(entry, bad);
    redisReply *r =
        eval(WF__SCRIPT_CLAIM, 0, "c1", "30000", "0", "", "", entry, "record is not msgpack", NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 0);
    freeReplyObject(r);
    cr_assert_eq(xlen(), 0);
    cr_assert_eq(xpending(), 0);
    cr_assert_eq(wf_test_cmd_int(c, "LLEN %s", wk.k[WF__K_DEAD]), 1);
    char *dead = keep(wf_test_cmd_str(c, "LINDEX %s 0", wk.k[WF__K_DEAD]));
    cr_assert(strstr(dead, "\"reason\":\"record is not msgpack\""), "%s", dead);
    cr_assert(strstr(dead, bad), "dead letter names its entry: %s", dead);
    cr_assert(strstr(dead, "not-msgpack"), "dead letter keeps the fields: %s", dead);
    cr_assert(strstr(dead, "\"consumer\":\"c1\""), "%s", dead);
}

/* ---- singleton and debounce (enqueue.lua with P:{W}:limits and P:{W}:single) ----------------- */

#define LIMITS PREFIX ":{" WFN "}:limits"
#define SINGLE PREFIX ":{" WFN "}:single"

static int redis_time_after(void *arg)
{
    return rnow() > *(const long long *)arg;
}

static redisReply *enqueue_limited(const char *id)
{
    redisReply *r =
        eval(WF__SCRIPT_ENQUEUE, 3, run_key(id), LIMITS, SINGLE, id, WFN, "input-bytes", "0", NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "enqueue: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    return r;
}

Test(lua, enqueue_singleton_answers_with_the_active_run_until_it_ends)
{
    freeReplyObject(wf_test_command(c, "HSET %s singleton 1", LIMITS));
    const char *x = run_id("single-x"), *y = run_id("single-y"), *z = run_id("single-z");
    redisReply *r = enqueue_limited(x);
    cr_assert_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
    r = enqueue_limited(y);
    cr_assert_eq(r->elements, 3, "answered with the standing run");
    cr_assert_eq(r->element[0]->integer, 0);
    cr_assert_str_eq(r->element[1]->str, "queued");
    cr_assert_str_eq(r->element[2]->str, x);
    freeReplyObject(r);
    cr_assert_null(hget(y, "state"), "no second run was written");
    /* x ends: the next start is a new run. */
    freeReplyObject(wf_test_command(c, "HSET %s state completed", run_key(x)));
    r = enqueue_limited(z);
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
    char *now = wf_test_cmd_str(c, "HGET %s %s", SINGLE, "");
    cr_assert_str_eq(now, z);
    free(now);
}

Test(lua, enqueue_debounce_pushes_a_pending_run_back_but_not_one_that_started)
{
    freeReplyObject(wf_test_command(c, "HSET %s debounce_ms 60000", LIMITS));
    const char *a = run_id("deb-a"), *b = run_id("deb-b"), *d = run_id("deb-d");
    redisReply *r = enqueue_limited(a);
    cr_assert_str_eq(r->element[1]->str, "waiting");
    freeReplyObject(r);
    long long due = zscore(wk.k[WF__K_DELAYED], a);
    cr_assert_gt(due, 0);
    long long t0 = rnow();
    cr_assert(wf_test_wait(redis_time_after, &t0, 2000)); /* so a push back is visible */
    r = enqueue_limited(b);
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[2]->str, a);
    freeReplyObject(r);
    cr_assert_gt(zscore(wk.k[WF__K_DELAYED], a), due, "a's start moved later");
    cr_assert_null(hget(b, "state"));
    /* a started and now sleeps durably: its timer is no longer the debounce's. */
    freeReplyObject(wf_test_command(c, "ZADD %s 1 %s", wk.k[WF__K_DELAYED], a));
    r = enqueue_limited(d);
    cr_assert_eq(r->elements, 2, "a new run, a's sleep left alone");
    cr_assert_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], a), 1);
}

Test(lua, enqueue_refuses_a_clobbered_single_key)
{
    freeReplyObject(wf_test_command(c, "HSET %s singleton 1", LIMITS));
    freeReplyObject(wf_test_command(c, "SET %s x", SINGLE));
    expect_error(eval(WF__SCRIPT_ENQUEUE, 3, run_key(run_id("clob")), LIMITS, SINGLE,
                      run_id("clob"), WFN, "", "0", NULL),
                 "WRONGTYPE");
}

Test(lua, enqueue_refuses_a_clobbered_limits_key)
{
    freeReplyObject(wf_test_command(c, "SET %s x", LIMITS));
    const char *id = run_id("clob-limits");
    expect_error(eval(WF__SCRIPT_ENQUEUE, 3, run_key(id), LIMITS, SINGLE, id, WFN, "", "0", NULL),
                 "WRONGTYPE wf key " LIMITS);
    cr_assert_null(hget(id, "state"), "nothing written");
}
