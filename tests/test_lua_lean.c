/* test_lua_lean.c - lean runs of schema 2 through the scripts alone (lua_env.h): enqueue.lua
 * writing one entry, claim.lua writing the hash from it, a repeated enqueue finding the run it
 * started, stop.lua and status.lua on a run that is only an entry, the clock guard, and
 * migrate.lua deleting the schema 1 indexes. */
#include "lua_env.h"

#define LIMITS PREFIX ":{" WFN "}:limits"
#define SINGLE PREFIX ":{" WFN "}:single"

/* A generated id (a ULID of now, as clients make them), kept. */
static const char *fresh_id(void)
{
    char *id = keep(malloc(WF__ID_MAX));
    wf__runid_new(WFN, id);
    return id;
}

/* enqueue.lua as a client sends a generated id: ARGV 8 `how` ('1' first call, '2' a repeat). */
static redisReply *enqueue_gen(const char *id, const char *input, const char *how)
{
    redisReply *r = eval(WF__SCRIPT_ENQUEUE, 3, run_key(id), LIMITS, SINGLE, id, WFN, input, "0",
                         "", "", "", how, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "enqueue: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    return r;
}

/* XREADGROUP of the next entry as consumer c1: its id (kept) and fields (the reply, kept in *r). */
static const char *read_next(redisReply **r)
{
    *r = wf_test_command(c, "XREADGROUP GROUP %s c1 COUNT 1 STREAMS %s >", WF__GROUP,
                         wk.k[WF__K_QUEUE]);
    cr_assert((*r)->type == REDIS_REPLY_ARRAY && (*r)->elements == 1, "nothing to read");
    const redisReply *e = (*r)->element[0]->element[1]->element[0];
    return keep(strdup(e->element[0]->str));
}

static redisReply *claim_lean(const char *entry, const char *id, const char *input)
{
    return eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", "30000", "1", "", "p", entry, id, input,
                NULL);
}

Test(lua, a_generated_run_is_one_entry_until_claimed)
{
    const char *id = fresh_id();
    redisReply *r = enqueue_gen(id, "in-lean", "1");
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->integer, 1);
    cr_assert_str_eq(r->element[1]->str, "queued");
    freeReplyObject(r);
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", run_key(id)), 0, "no hash while queued");
    cr_assert_eq(xlen(), 1);
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", wk.k[WF__K_STATE(WF_STATE_QUEUED)]), 0);

    redisReply *rd;
    const char *entry = read_next(&rd);
    const redisReply *f = rd->element[0]->element[1]->element[0]->element[1];
    cr_assert_eq(f->elements, 4);
    cr_assert_str_eq(f->element[0]->str, "c");
    cr_assert_str_eq(f->element[1]->str, strchr(id, ':') + 1);
    cr_assert_str_eq(f->element[3]->str, "in-lean");
    /* The entry's time is the ULID's (XADD MS-*), which is what lets lean_find find it. */
    char ulid_ms[32];
    snprintf(ulid_ms, sizeof ulid_ms, "%lld", (long long)strtoll(entry, NULL, 10));
    freeReplyObject(rd);

    r = claim_lean(entry, id, "in-lean");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "claim: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    const redisReply *it = r->element[0];
    cr_assert_eq(it->elements, 5, "claimed");
    cr_assert_str_eq(it->element[1]->str, "1", "first lease token");
    cr_assert_eq(it->element[2]->integer, 1);
    cr_assert_str_eq(it->element[3]->str, "in-lean");
    freeReplyObject(r);
    assert_state(id, "running");
    cr_assert_str_eq(hget(id, "input"), "in-lean");
    cr_assert_str_eq(hget(id, "created_at"), ulid_ms, "created when queued, from the entry");
    cr_assert_str_eq(hget(id, "worker"), "c1");
    cr_assert_str_eq(hget(id, "workflow"), WFN);
    cr_assert_eq(xlen(), 0, "the entry is deleted at claim");
    cr_assert_eq(xpending(), 0, "and acknowledged");
}

Test(lua, a_repeated_enqueue_finds_the_run_the_lost_call_started)
{
    const char *id = fresh_id();
    freeReplyObject(enqueue_gen(id, "x", "1"));
    redisReply *r = enqueue_gen(id, "x", "2");
    cr_assert_eq(r->element[0]->integer, 0, "not a second run (%lld %s, %lld entries)",
                 r->element[0]->integer, r->element[1]->str, xlen());
    cr_assert_str_eq(r->element[1]->str, "queued");
    freeReplyObject(r);
    cr_assert_eq(xlen(), 1);
    /* Claimed meanwhile: the repeat finds the hash. */
    redisReply *rd;
    const char *entry = read_next(&rd);
    freeReplyObject(rd);
    freeReplyObject(claim_lean(entry, id, "x"));
    r = enqueue_gen(id, "x", "2");
    cr_assert_eq(r->element[0]->integer, 0);
    cr_assert_str_eq(r->element[1]->str, "running");
    freeReplyObject(r);
    cr_assert_eq(xlen(), 0, "nothing queued again");
    /* A first call is not looked up (the common case pays no read): a second id is new. */
    r = enqueue_gen(fresh_id(), "y", "2");
    cr_assert_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
}

Test(lua, stop_and_status_of_a_run_that_is_only_an_entry)
{
    const char *id = fresh_id();
    freeReplyObject(enqueue_gen(id, "in-s", "1"));
    const char *keys[] = {run_key(id)};
    const char *args[] = {id};
    redisReply *st = eval_argv(WF__SCRIPT_STATUS, 0, 1, keys, 1, args, NULL);
    cr_assert_eq(st->type, REDIS_REPLY_ARRAY);
    int state_ok = 0, input_ok = 0;
    for (size_t i = 0; i + 1 < st->elements; i += 2) {
        state_ok |=
            !strcmp(st->element[i]->str, "state") && !strcmp(st->element[i + 1]->str, "queued");
        input_ok |=
            !strcmp(st->element[i]->str, "input") && !strcmp(st->element[i + 1]->str, "in-s");
    }
    cr_assert(state_ok && input_ok, "status.lua reads the lean run from its entry");
    freeReplyObject(st);
    /* A worker read the entry before the stop (it is pending, not yet claimed). */
    redisReply *rd;
    const char *entry = read_next(&rd);
    freeReplyObject(rd);
    redisReply *r =
        eval(WF__SCRIPT_STOP, 2, run_key(id), steps_key(id), id, "stopped", RETENTION, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "stop: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_str_eq(r->str, "queued");
    freeReplyObject(r);
    assert_state(id, "cancelled");
    cr_assert_str_eq(hget(id, "input"), "in-s", "the input is kept");
    cr_assert_eq(xlen(), 0, "the entry is gone: no worker can start it");
    /* The claim that follows is stale and acknowledges the entry. */
    r = claim_lean(entry, id, "in-s");
    cr_assert_eq(r->element[0]->elements, 1, "stale");
    freeReplyObject(r);
    assert_state(id, "cancelled");
    cr_assert_eq(xpending(), 0);
    /* A run that does not exist: status.lua answers nothing, stop NOTFOUND. */
    const char *none = fresh_id();
    const char *nk[] = {run_key(none)};
    const char *na[] = {none};
    st = eval_argv(WF__SCRIPT_STATUS, 0, 1, nk, 1, na, NULL);
    cr_assert_eq(st->elements, 0);
    freeReplyObject(st);
    expect_error(
        eval(WF__SCRIPT_STOP, 2, run_key(none), steps_key(none), none, "x", RETENTION, NULL),
        "NOTFOUND");
}

Test(lua, a_run_whose_clock_is_far_off_gets_a_hash)
{
    /* A ULID of 1970: a client clock that far from Redis's cannot be trusted to find the entry
     * again by time, so the run is written the way a caller-chosen id is. */
    const char *id = keep(strdup(WFN ":00000000010000000000000000"));
    redisReply *r = enqueue_gen(id, "old", "1");
    cr_assert_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
    assert_state(id, "queued");
    cr_assert_str_eq(hget(id, "input"), "old");
    /* Singleton makes a generated run keep a hash too (its key is looked up by run). */
    freeReplyObject(wf_test_command(c, "HSET %s singleton 1", LIMITS));
    const char *s = fresh_id();
    freeReplyObject(enqueue_gen(s, "single", "1"));
    assert_state(s, "queued");
}

Test(lua, migrate_deletes_the_schema_1_indexes_once)
{
    freeReplyObject(wf_test_command(c, "ZADD %s 1 a 2 b", wk.k[WF__K_STATE(WF_STATE_QUEUED)]));
    freeReplyObject(wf_test_command(c, "ZADD %s 1 r", wk.k[WF__K_STATE(WF_STATE_RUNNING)]));
    freeReplyObject(wf_test_command(c, "ZADD %s 1 w", wk.k[WF__K_STATE(WF_STATE_WAITING)]));
    redisReply *r = eval(WF__SCRIPT_MIGRATE, 0, NULL);
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->integer, 2);
    cr_assert_eq(r->element[1]->integer, 1);
    freeReplyObject(r);
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s %s", wk.k[WF__K_STATE(WF_STATE_QUEUED)],
                                 wk.k[WF__K_STATE(WF_STATE_RUNNING)]),
                 0);
    cr_assert_eq(zscore(wk.k[WF__K_STATE(WF_STATE_WAITING)], "w"), 1, "other indexes are kept");
    r = eval(WF__SCRIPT_MIGRATE, 0, NULL);
    cr_assert_eq(r->element[0]->integer, 0);
    cr_assert_eq(r->element[1]->integer, 0);
    freeReplyObject(r);
}

Test(lua, enqueue_lean_writes_entries_or_hands_the_call_to_enqueue)
{
    const char *a = fresh_id(), *b = fresh_id();
    const char *keys[] = {wk.k[WF__K_QUEUE], LIMITS};
    const char *args[] = {strchr(a, ':') + 1, "in-a", strchr(b, ':') + 1, "in-b"};
    redisReply *r = eval_argv(WF__SCRIPT_ENQUEUE_LEAN, 0, 2, keys, 4, args, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->integer, 2);
    freeReplyObject(r);
    cr_assert_eq(xlen(), 2);
    cr_assert_eq(wf_test_cmd_int(c, "EXISTS %s", run_key(a)), 0, "lean: no hash");
    /* Read back from the id alone, as any lean run. */
    const char *sk[] = {run_key(b)};
    const char *sa[] = {b};
    redisReply *st = eval_argv(WF__SCRIPT_STATUS, 0, 1, sk, 1, sa, NULL);
    cr_assert_gt(st->elements, 0, "status.lua finds b");
    freeReplyObject(st);
    /* A clock far off, or singleton: nothing written, the call is enqueue.lua's. */
    const char *old[] = {"00000000010000000000000000", "x"};
    r = eval_argv(WF__SCRIPT_ENQUEUE_LEAN, 0, 2, keys, 2, old, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(r->str, "FULL");
    freeReplyObject(r);
    freeReplyObject(wf_test_command(c, "HSET %s singleton 1", LIMITS));
    const char *cid = fresh_id();
    const char *one[] = {strchr(cid, ':') + 1, "x"};
    r = eval_argv(WF__SCRIPT_ENQUEUE_LEAN, 0, 2, keys, 2, one, NULL);
    cr_assert_str_eq(r->str, "FULL");
    freeReplyObject(r);
    cr_assert_eq(xlen(), 2, "nothing more was written");
}

/* The entry of run `id` on the lane, or NULL (kept). */
static const char *entry_of(const char *id)
{
    redisReply *r = wf_test_command(c, "XRANGE %s - +", wk.k[WF__K_QUEUE]);
    const char *found = NULL;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        if (f->elements >= 2 && strcmp(f->element[1]->str, strchr(id, ':') + 1) == 0)
            found = keep(strdup(r->element[i]->element[0]->str));
    }
    freeReplyObject(r);
    return found;
}

/* How many calls of `cmd` Redis has run (INFO commandstats); always 0 on the cluster, which the
 * suites share while they run side by side, so its counts say nothing of one test. */
static long long calls_of(const char *cmd)
{
    if (wf_test_cluster_mode()) return 0;
    char *info = wf_test_cmd_str(c, "INFO commandstats"), key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    const char *p = info ? strstr(info, key) : NULL;
    long long n = p ? atoll(p + strlen(key)) : 0;
    free(info);
    return n;
}

/* Runs `n` fresh lean runs queued, then read by consumer `who` in one XREADGROUP: ids and entries
 * (kept). */
static void queue_and_read(int n, const char *who, const char **ids, const char **entries)
{
    for (int i = 0; i < n; i++) {
        ids[i] = fresh_id();
        freeReplyObject(enqueue_gen(ids[i], "in", "1"));
    }
    redisReply *r = wf_test_command(c, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s >", WF__GROUP,
                                    who, n, wk.k[WF__K_QUEUE]);
    cr_assert_eq(r->element[0]->element[1]->elements, (size_t)n);
    for (int i = 0; i < n; i++)
        entries[i] = keep(strdup(r->element[0]->element[1]->element[i]->element[0]->str));
    freeReplyObject(r);
}

/* claim.lua of `n` lean runs read by `who`, in one call. */
static redisReply *claim_batch(int n, const char *who, const char **ids, const char **entries)
{
    const char *keys[8], *args[5 + 3 * 8];
    char g[8], kinds[9] = "";
    snprintf(g, sizeof g, "%d", n);
    for (int i = 0; i < n; i++) {
        keys[i] = run_key(ids[i]);
        kinds[i] = 'p';
        args[5 + 3 * i] = entries[i];
        args[6 + 3 * i] = ids[i];
        args[7 + 3 * i] = "in";
    }
    kinds[n] = 0;
    args[0] = who;
    args[1] = "30000";
    args[2] = g;
    args[3] = "";
    args[4] = kinds;
    return eval_argv(WF__SCRIPT_CLAIM, 1, n, keys, 5 + 3 * n, args, NULL);
}

Test(lua, claim_trims_the_lane_but_keeps_what_is_pending_or_undelivered)
{
    /* Another worker read a (the oldest) and has not claimed it yet; c1 reads and claims four. */
    const char *a[1], *ea[1], *b[4], *eb[4];
    queue_and_read(1, "c2", a, ea);
    queue_and_read(4, "c1", b, eb);
    const char *d = fresh_id();
    freeReplyObject(enqueue_gen(d, "in-d", "1"));
    long long trims = calls_of("xtrim");
    freeReplyObject(claim_batch(4, "c1", b, eb));
    int one = !wf_test_cluster_mode(); /* 1 when counted */
    cr_assert_eq(calls_of("xtrim"), trims + one, "a batch of 4 cuts the lane");
    for (int i = 0; i < 4; i++) {
        assert_state(b[i], "running");
        cr_assert_null(entry_of(b[i]), "b%d's entry is gone", i);
    }
    cr_assert_not_null(entry_of(a[0]), "a is pending with another worker: kept");
    cr_assert_not_null(entry_of(d), "d was never delivered: kept");
    cr_assert_eq(xlen(), 2);
    /* a is claimed in turn, alone: one XDEL, no cut (two calls to find it are not worth it). */
    freeReplyObject(claim_batch(1, "c2", a, ea));
    cr_assert_eq(calls_of("xtrim"), trims + one);
    assert_state(a[0], "running");
    cr_assert_eq(xlen(), 1);
    cr_assert_not_null(entry_of(d));
    cr_assert_eq(xpending(), 0);
    /* d is claimed, then four more, with nothing pending or undelivered before them: the cut
     * goes past them, and the lane is trimmed, not deleted from one by one. */
    const char *ed[1] = {entry_of(d)}, *di[1] = {d};
    freeReplyObject(wf_test_command(c, "XREADGROUP GROUP %s c1 COUNT 1 STREAMS %s >", WF__GROUP,
                                    wk.k[WF__K_QUEUE]));
    freeReplyObject(claim_batch(1, "c1", di, ed));
    const char *e[4], *ee[4];
    long long dels = calls_of("xdel");
    queue_and_read(4, "c1", e, ee);
    freeReplyObject(claim_batch(4, "c1", e, ee));
    cr_assert_eq(calls_of("xtrim"), trims + 2 * one);
    cr_assert_eq(calls_of("xdel"), dels, "nothing left to delete one by one");
    cr_assert_eq(xlen(), 0);
    cr_assert_eq(xpending(), 0);
}

/* A run stopped while its entry waited, read, in a batch is stale; the others are claimed. */
Test(lua, a_batch_claim_skips_a_run_stopped_while_it_waited)
{
    const char *ids[3], *entries[3];
    queue_and_read(3, "c1", ids, entries);
    redisReply *r =
        eval(WF__SCRIPT_STOP, 2, run_key(ids[1]), steps_key(ids[1]), ids[1], "no", RETENTION, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "stop: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    r = claim_batch(3, "c1", ids, entries);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->element[0]->elements, 5, "claimed");
    cr_assert_eq(r->element[1]->elements, 1, "the stopped run is stale");
    cr_assert_eq(r->element[2]->elements, 5, "claimed");
    freeReplyObject(r);
    assert_state(ids[0], "running");
    assert_state(ids[1], "cancelled");
    assert_state(ids[2], "running");
    cr_assert_str_eq(hget(ids[2], "input"), "in");
    cr_assert_eq(xlen(), 0);
    cr_assert_eq(xpending(), 0);
}
