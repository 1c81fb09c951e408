/* test_lua_keep.c - a workflow's own retention (P:{W}:keep, lib_finish.lua keep_policy) through the
 * scripts that end runs: complete.lua keeping completed runs for a time, the last N, or none;
 * fail.lua and stop.lua under the policy of the other final states. */
#include "lua_env.h"

#define KEEP PREFIX ":{" WFN "}:keep"

static void complete_run(const char *id)
{
    const char *token = enqueue_and_claim(id, "30000");
    expect_status_ok(eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token, "out",
                          RETENTION, NULL));
}

Test(lua, keep_none_removes_a_completed_run_and_counts_it)
{
    freeReplyObject(wf_test_command(c, "HSET %s c_none 1", KEEP));
    const char *id = run_id("gone");
    complete_run(id);
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", run_key(id)), 0, "nothing kept");
    cr_assert_eq(zscore(wk.k[WF__K_STATE(WF_STATE_COMPLETED)], id), -1);
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1, "its lease is gone too");
    /* The per-minute history still counts it (the dashboard's chart). */
    long long hour = rnow() / 3600000;
    char *n = wf_test_cmd_str(c, "HGET " PREFIX ":{" WFN "}:hist:c:%lld %lld", hour,
                              (rnow() / 60000) % 60);
    cr_assert_str_eq(n ? n : "(none)", "1");
    free(n);
    /* Failed runs follow their own policy: the default keeps them. */
    const char *bad = run_id("bad");
    const char *token = enqueue_and_claim(bad, "30000");
    redisReply *r = eval(WF__SCRIPT_FAIL, 2, run_key(bad), steps_key(bad), bad, token, "boom", "1",
                         "3", "1000", "60000", "-1", RETENTION, "failed", NULL);
    freeReplyObject(r);
    assert_state(bad, "failed");
}

Test(lua, keep_last_keeps_the_newest_completed_runs)
{
    freeReplyObject(wf_test_command(c, "HSET %s c_last 2", KEEP));
    const char *ids[3] = {run_id("k1"), run_id("k2"), run_id("k3")};
    for (int i = 0; i < 3; i++) {
        complete_run(ids[i]);
        /* Distinct scores: the index orders by the end's millisecond. */
        long long t = rnow();
        wf_test_wait_redis_ms(c, t + 2, 1000);
    }
    cr_assert_eq(wf_test_cmd_int(c, "ZCARD %s", wk.k[WF__K_STATE(WF_STATE_COMPLETED)]), 2);
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", run_key(ids[0])), 0, "the oldest went");
    assert_state(ids[1], "completed");
    assert_state(ids[2], "completed");
}

Test(lua, keep_ms_and_the_failed_policy_of_stop)
{
    freeReplyObject(wf_test_command(c, "HSET %s c_ms 5000 f_none 1", KEEP));
    const char *id = run_id("short");
    complete_run(id);
    long long ttl = wf_test_cmd_int(c, "PTTL %s", run_key(id));
    cr_assert(ttl > 0 && ttl <= 5000, "kept 5 s, not the caller's 60 s: %lld", ttl);
    /* A stopped run is one of the other final states: f_none removes it. */
    const char *st = run_id("stopped");
    enqueue(st, "0", "queued");
    redisReply *r =
        eval(WF__SCRIPT_STOP, 2, run_key(st), steps_key(st), st, "bye", RETENTION, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "stop: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", run_key(st)), 0);
    cr_assert_eq(zscore(wk.k[WF__K_STATE(WF_STATE_CANCELLED)], st), -1);
    cr_assert_eq(xlen(), 0, "its queue entry went with it");
}
