/* test_lua_finish.c - complete.lua, fail.lua, release.lua and step.lua (one record, or
 * records of several runs in one call) on their own against a real
 * redis-server: results, retention, backoff, retry-after, fatal errors, hand-backs and stale
 * tokens. Shared set-up and helpers: lua_env.h. */
#include "lua_env.h"

/* ---- complete -------------------------------------------------------------------------------- */

Test(lua, complete_finishes_the_run_and_sets_retention)
{
    const char *id = run_id("ok");
    const char *token = enqueue_and_claim(id, "30000");
    /* A step recorded as workers do (step.lua also marks the run hash: complete.lua expires the
     * steps hash only of a run that has one). */
    expect_status_ok(
        eval(WF__SCRIPT_STEP, 2, run_key(id), steps_key(id), id, token, "s1", "x", NULL));
    expect_status_ok(eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token,
                          "output-bytes", RETENTION, NULL));
    assert_state(id, "completed");
    cr_assert_str_eq(hget(id, "output"), "output-bytes");
    cr_assert_not_null(hget(id, "finished_at"));
    cr_assert_null(hget(id, "error"));
    cr_assert_null(hget(id, "entry"), "the stale entry id is dropped at the end");
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    long long ttl = wf_test_cmd_int(c, "PTTL %s", run_key(id));
    cr_assert(ttl > 0 && ttl <= 60000, "run hash ttl %lld", ttl);
    ttl = wf_test_cmd_int(c, "PTTL %s", steps_key(id));
    cr_assert(ttl > 0 && ttl <= 60000, "steps hash ttl %lld", ttl);
}

Test(lua, complete_with_a_wrong_token_is_stale)
{
    const char *id = run_id("wrong");
    enqueue_and_claim(id, "30000");
    expect_error(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, "41", "out", RETENTION, NULL),
        "STALE ");
    assert_state(id, "running");
    cr_assert_null(hget(id, "output"));
}

Test(lua, complete_after_stop_is_stale)
{
    const char *id = run_id("stopped");
    const char *token = enqueue_and_claim(id, "30000");
    redisReply *s =
        eval(WF__SCRIPT_STOP, 2, run_key(id), steps_key(id), id, "user stop", RETENTION, NULL);
    cr_assert_str_eq(s->str, "running");
    freeReplyObject(s);
    expect_error(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token, "out", RETENTION, NULL),
        "STALE ");
    assert_state(id, "cancelled");
    cr_assert_null(hget(id, "output"), "a late result is dropped");
}

Test(lua, complete_of_an_unknown_run_is_notfound)
{
    const char *id = run_id("ghost");
    expect_error(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, "1", "out", RETENTION, NULL),
        "NOTFOUND ");
}

Test(lua, complete_of_several_runs_answers_each_in_order)
{
    /* The worker's batch form: one call, one answer per run; a run that is not ours does not
     * stop the others. */
    const char *a = run_id("many-a"), *g = run_id("many-ghost"), *b = run_id("many-b");
    const char *ta = enqueue_and_claim(a, "30000");
    const char *tb = enqueue_and_claim(b, "30000");
    redisReply *r =
        eval(WF__SCRIPT_COMPLETE, 6, run_key(a), steps_key(a), run_key(g), steps_key(g), run_key(b),
             steps_key(b), a, ta, "out-a", g, "1", "out-g", b, tb, "out-b", RETENTION, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "type %d: %s", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_STATUS);
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_ERROR);
    cr_assert_eq(strncmp(r->element[1]->str, "NOTFOUND ", 9), 0, "%s", r->element[1]->str);
    cr_assert_eq(r->element[2]->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_state(a, "completed");
    assert_state(b, "completed");
    cr_assert_str_eq(hget(a, "output"), "out-a");
    cr_assert_str_eq(hget(b, "output"), "out-b");
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", run_key(g)), 0, "nothing written for the ghost");
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], a), -1);
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], b), -1);
}

/* ---- fail ------------------------------------------------------------------------------------ */

/* fail.lua (not fatal) of run `id` with attempts left: the run waits `delay_ms` from the call
 * (Redis time) for its next attempt. Returns when it wakes. */
static long long fail_and_wait(const char *id, const char *token, const char *max, const char *cap,
                               const char *retry_after, long long delay_ms)
{
    long long t0 = rnow();
    redisReply *r = fail(id, token, "0", max, "1000", cap, retry_after, "failed");
    long long t1 = rnow();
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_str_eq(r->element[0]->str, "waiting");
    long long wake = r->element[1]->integer;
    freeReplyObject(r);
    cr_assert(wake >= t0 + delay_ms && wake <= t1 + delay_ms, "wake %lld not in [%lld, %lld]", wake,
              t0 + delay_ms, t1 + delay_ms);
    return wake;
}

Test(lua, fail_with_attempts_left_waits_for_the_backoff)
{
    const char *id = run_id("retry");
    const char *token = enqueue_and_claim(id, "30000");
    long long wake = fail_and_wait(id, token, "3", "60000", "-1", 1000);
    assert_state(id, "waiting");
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], id), wake);
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    cr_assert_str_eq(hget(id, "attempt"), "2");
    cr_assert_str_eq(hget(id, "wait_reason"), "retry");
    cr_assert_eq(atoll(hget(id, "wake_at")), wake);
    cr_assert_str_eq(hget(id, "error"), "boom");
    /* The lease token is no longer good for anything. */
    expect_error(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token, "out", RETENTION, NULL),
        "STALE ");
}

Test(lua, fail_backoff_doubles_per_attempt_and_is_capped)
{
    const char *id = run_id("cap");
    const char *token = enqueue_and_claim(id, "30000");
    /* Third attempt: 1000 * 2^2 = 4000, capped at 3000. */
    cr_assert_eq(wf_test_cmd_int(c, "HSET %s attempt 3", run_key(id)), 0);
    fail_and_wait(id, token, "10", "3000", "-1", 3000);
    cr_assert_str_eq(hget(id, "attempt"), "4");
}

Test(lua, fail_with_retry_after_uses_it_instead_of_the_backoff)
{
    const char *id = run_id("after");
    const char *token = enqueue_and_claim(id, "30000");
    fail_and_wait(id, token, "3", "60000", "250", 250);
}

Test(lua, fail_with_attempts_exhausted_fails_the_run)
{
    const char *id = run_id("done");
    const char *token = enqueue_and_claim(id, "30000");
    redisReply *r = fail(id, token, "0", "1", "1000", "60000", "-1", "failed");
    cr_assert_str_eq(r->element[0]->str, "failed");
    cr_assert_eq(r->element[1]->integer, 0);
    freeReplyObject(r);
    assert_state(id, "failed");
    cr_assert_str_eq(hget(id, "error"), "boom");
    cr_assert_not_null(hget(id, "finished_at"));
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], id), -1);
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    long long ttl = wf_test_cmd_int(c, "PTTL %s", run_key(id));
    cr_assert(ttl > 0 && ttl <= 60000);
}

/* A fatal failure of run SUFFIX on its first attempt ends it at once in `final_state`, attempts
 * left or not. Returns its id. */
static const char *fail_fatally(const char *suffix, const char *final_state)
{
    const char *id = run_id(suffix);
    const char *token = enqueue_and_claim(id, "30000");
    redisReply *r = fail(id, token, "1", "5", "1000", "60000", "-1", final_state);
    cr_assert_str_eq(r->element[0]->str, final_state);
    freeReplyObject(r);
    assert_state(id, final_state);
    return id;
}

Test(lua, fail_fatal_fails_at_once)
{
    const char *id = fail_fatally("fatal", "failed");
    cr_assert_str_eq(hget(id, "attempt"), "1");
}

Test(lua, fail_fatal_terminated_variant)
{
    fail_fatally("timeout", "terminated");
}

Test(lua, fail_with_a_wrong_token_is_stale)
{
    const char *id = run_id("fstale");
    enqueue_and_claim(id, "30000");
    expect_error(fail(id, "99", "0", "3", "1000", "60000", "-1", "failed"), "STALE ");
    assert_state(id, "running");
    cr_assert_null(hget(id, "error"));
}

/* ---- release --------------------------------------------------------------------------------- */

Test(lua, release_hands_a_running_run_back_to_the_queue)
{
    const char *id = run_id("rel");
    const char *token = enqueue_and_claim(id, "30000");
    expect_status_ok(eval(WF__SCRIPT_RELEASE, 1, run_key(id), id, token, NULL));
    assert_state(id, "queued");
    cr_assert_eq(zscore(wk.k[WF__K_LEASES], id), -1);
    cr_assert_str_eq(hget(id, "lease"), "2");
    cr_assert_str_eq(hget(id, "attempt"), "1", "a release is not a failed attempt");
    cr_assert_eq(xlen(), 1);
    expect_error(
        eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token, "out", RETENTION, NULL),
        "STALE ");
    claim(id, "30000");
}

Test(lua, release_with_a_wrong_token_is_stale)
{
    const char *id = run_id("relw");
    enqueue_and_claim(id, "30000");
    expect_error(eval(WF__SCRIPT_RELEASE, 1, run_key(id), id, "5", NULL), "STALE ");
    assert_state(id, "running");
    expect_error(eval(WF__SCRIPT_RELEASE, 1, run_key(run_id("none")), run_id("none"), "1", NULL),
                 "NOTFOUND ");
}

/* ---- step ------------------------------------------------------------------------------------ */

Test(lua, step_records_under_the_lease_and_refuses_a_stale_token)
{
    const char *id = run_id("step");
    const char *token = enqueue_and_claim(id, "30000");
    expect_status_ok(
        eval(WF__SCRIPT_STEP, 2, run_key(id), steps_key(id), id, token, "s1", "record-1", NULL));
    char *rec = wf_test_cmd_str(c, "HGET %s s1", steps_key(id));
    cr_assert_str_eq(rec, "record-1");
    free(rec);
    cr_assert_str_eq(hget(id, "step"), "s1");
    expect_error(
        eval(WF__SCRIPT_STEP, 2, run_key(id), steps_key(id), id, "999", "s2", "record-2", NULL),
        "STALE ");
    cr_assert_eq(wf_test_cmd_int(c, "HEXISTS %s s2", steps_key(id)), 0, "a stale step is dropped");
    /* A clobbered steps hash fails the write before the run hash is touched. */
    const char *id2 = run_id("step-clob");
    const char *token2 = enqueue_and_claim(id2, "30000");
    freeReplyObject(wf_test_command(c, "SET %s x", steps_key(id2)));
    expect_error(
        eval(WF__SCRIPT_STEP, 2, run_key(id2), steps_key(id2), id2, token2, "s1", "r", NULL),
        "WRONGTYPE");
    cr_assert_null(hget(id2, "step"), "nothing half-written");
}

/* The worker sends the step records of one loop turn in one call (worker/batch_step.c): each
 * record has its own lease check and its own answer, so a stale one in the middle is refused
 * while the records before and after it are written; a clobbered steps hash fails its record
 * alone. */
Test(lua, step_records_several_runs_in_one_call_each_with_its_own_answer)
{
    enum { N = 4 };
    const char *ids[N], *tokens[N];
    const char *keys[2 * N], *args[5 * N];
    const char *names[N] = {"a", "b", "c", "d"};
    char recs[N][16];
    for (int i = 0; i < N; i++) {
        char suffix[16];
        snprintf(suffix, sizeof suffix, "multi%d", i);
        ids[i] = run_id(suffix);
        tokens[i] = enqueue_and_claim(ids[i], "30000");
    }
    freeReplyObject(wf_test_command(c, "HSET %s %s 2", steps_key(ids[0]), " lost"));
    freeReplyObject(wf_test_command(c, "SET %s x", steps_key(ids[3]))); /* clobbered */
    for (int i = 0; i < N; i++) {
        keys[2 * i] = run_key(ids[i]);
        keys[2 * i + 1] = steps_key(ids[i]);
        args[5 * i] = ids[i];
        args[5 * i + 1] = i == 1 ? "999" : tokens[i]; /* run 1: a lease it no longer holds */
        args[5 * i + 2] = names[i];
        snprintf(recs[i], sizeof recs[i], "record-%d", i);
        args[5 * i + 3] = recs[i];
        args[5 * i + 4] = i == 0 ? "1" : "";
    }
    redisReply *r = eval_argv(WF__SCRIPT_STEP, 1, 2 * N, keys, 5 * N, args, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "one answer per record");
    cr_assert_eq(r->elements, (size_t)N);
    const char *want[N] = {"OK", "STALE ", "OK", "WRONGTYPE"};
    for (int i = 0; i < N; i++) {
        const redisReply *e = r->element[i];
        if (strcmp(want[i], "OK") == 0) {
            cr_assert_eq(e->type, REDIS_REPLY_STATUS, "record %d: type %d", i, e->type);
            cr_assert_str_eq(e->str, "OK");
        } else {
            cr_assert_eq(e->type, REDIS_REPLY_ERROR, "record %d: type %d", i, e->type);
            cr_assert_eq(strncmp(e->str, want[i], strlen(want[i])), 0, "record %d: %s", i, e->str);
        }
    }
    freeReplyObject(r);
    for (int i = 0; i < 3; i++) {
        char *rec = wf_test_cmd_str(c, "HGET %s %s", steps_key(ids[i]), names[i]);
        if (i == 1) {
            cr_assert_null(rec, "the stale record is dropped");
            cr_assert_null(hget(ids[i], "step"));
        } else {
            cr_assert_str_eq(rec, recs[i]);
            cr_assert_str_eq(hget(ids[i], "step"), names[i]);
        }
        free(rec);
    }
    cr_assert_eq(wf_test_cmd_int(c, "HEXISTS %s %s", steps_key(ids[0]), " lost"), 0,
                 "the lost flag of record 0 cleared its count");
    cr_assert_null(hget(ids[3], "step"), "the clobbered run's record wrote nothing");
}
