/* test_lua.c - every script of lua/ on its own, called directly with EVAL against a real
 * redis-server: each success path and each refusal, and that the state index zsets follow the
 * run's state. The sources are the embedded ones (lib.lua prepended), exactly what libwf sends;
 * keys come from wf__wfkeys_init / wf__key_run, exactly what libwf builds.
 *
 * Waiting for Redis time to pass (lease expiry, timers) polls a condition with wf_test_wait.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "wf_internal.h"

#define PREFIX    "wf"
#define WFN       "lt"
#define RETENTION "60000"

static wf_test_redis srv;
static redisContext *c;
static wf__wfkeys wk;

/* Strings the tests allocate, freed in teardown so leak checking stays quiet. */
static char *kept[256];
static int nkept;

static char *keep(char *s)
{
    cr_assert_not_null(s, "out of memory");
    cr_assert_lt(nkept, (int)(sizeof kept / sizeof kept[0]), "raise kept[]");
    kept[nkept++] = s;
    return s;
}

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0, "could not start redis-server");
    c = wf_test_redis_connect(&srv);
    cr_assert_not_null(c);
    cr_assert_eq(wf__wfkeys_init(&wk, PREFIX, WFN), WF_OK);
    wf_error err = {0};
    cr_assert_eq(wf__ensure_group(c, wk.k[WF__K_QUEUE], &err), WF_OK, "%s", err.message);
}

static void teardown(void)
{
    for (int i = 0; i < nkept; i++) free(kept[i]);
    nkept = 0;
    wf__wfkeys_free(&wk);
    if (c) redisFree(c);
    c = NULL;
    wf_test_redis_stop(&srv);
}

TestSuite(lua, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers --------------------------------------------------------------------------------- */

static const char *run_key(const char *id)
{
    return keep(wf__key_run(PREFIX, WFN, id));
}

static const char *steps_key(const char *id)
{
    return keep(wf__key_steps(PREFIX, WFN, id));
}

static const char *run_id(const char *suffix)
{
    size_t n = strlen(WFN) + strlen(suffix) + 2;
    char *id = keep(malloc(n));
    snprintf(id, n, "%s:%s", WFN, suffix);
    return id;
}

/* EVALs `script` with the 12 fixed keys plus `nextra` keys, then arguments: the variadic list holds
 * the extra keys followed by the arguments, NULL-terminated. Caller frees the reply. */
static redisReply *eval(wf__script script, int nextra, ...)
{
    const wf__script_src *s = wf__script_get(script);
    cr_assert_not_null(s, "script %d not embedded", (int)script);
    const char *argv[64];
    size_t lens[64];
    char numkeys[16];
    snprintf(numkeys, sizeof numkeys, "%d", WF__NFIXED + nextra);
    int argc = 0;
    argv[argc] = "EVAL";
    lens[argc++] = 4;
    argv[argc] = s->src;
    lens[argc++] = s->len;
    argv[argc] = numkeys;
    lens[argc++] = strlen(numkeys);
    for (int i = 0; i < WF__NFIXED; i++) {
        argv[argc] = wk.k[i];
        lens[argc++] = strlen(wk.k[i]);
    }
    va_list ap;
    va_start(ap, nextra);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        cr_assert_lt(argc, 64);
        argv[argc] = a;
        lens[argc++] = strlen(a);
    }
    va_end(ap);
    cr_assert_geq(argc, 3 + WF__NFIXED + nextra, "fewer arguments than keys");
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    cr_assert_not_null(r, "connection failed: %s", c->errstr);
    return r;
}

/* Asserts that `r` is an error reply starting with `prefix`, and frees it. */
static void expect_error(redisReply *r, const char *prefix)
{
    cr_assert_eq(r->type, REDIS_REPLY_ERROR, "expected error %s, got reply type %d", prefix,
                 r->type);
    cr_assert_eq(strncmp(r->str, prefix, strlen(prefix)), 0, "expected %s..., got: %s", prefix,
                 r->str);
    freeReplyObject(r);
}

static void expect_status_ok(redisReply *r)
{
    cr_assert_eq(r->type, REDIS_REPLY_STATUS, "type %d: %s", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
}

static long long expect_int(redisReply *r)
{
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "type %d: %s", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Redis time in ms: the scripts' clock. */
static long long rnow(void)
{
    redisReply *r = redisCommand(c, "TIME");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    long long ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
}

/* A field of the run hash (kept copy) or NULL. */
static const char *hget(const char *id, const char *field)
{
    char *v = wf_test_cmd_str(c, "HGET %s %s", run_key(id), field);
    return v ? keep(v) : NULL;
}

/* A zset member's score, or -1 when absent. */
static long long zscore(const char *key, const char *member)
{
    char *v = wf_test_cmd_str(c, "ZSCORE %s %s", key, member);
    if (!v) return -1;
    long long s = atoll(v);
    free(v);
    return s;
}

static long long xlen(void)
{
    return wf_test_cmd_int(c, "XLEN %s", wk.k[WF__K_QUEUE]);
}

static long long xpending(void)
{
    redisReply *r = redisCommand(c, "XPENDING %s %s", wk.k[WF__K_QUEUE], WF__GROUP);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1);
    long long n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

/* The run hash says `state` and the run is in that state's index zset and in no other. */
static void assert_state(const char *id, const char *state)
{
    const char *s = hget(id, "state");
    cr_assert_not_null(s, "run %s has no hash", id);
    cr_assert_str_eq(s, state, "run %s", id);
    for (int i = 1; i <= 8; i++) {
        const char *name = wf_state_name((wf_state)i);
        long long sc = zscore(wk.k[WF__K_STATE((wf_state)i)], id);
        if (strcmp(name, state) == 0)
            cr_assert_geq(sc, 0, "run %s missing from index state:%s", id, name);
        else
            cr_assert_eq(sc, -1, "run %s (state %s) still in index state:%s", id, state, name);
    }
}

static void enqueue(const char *id, const char *delay_ms, const char *want_state)
{
    redisReply *r =
        eval(WF__SCRIPT_ENQUEUE, 1, run_key(id), id, WFN, "input-bytes", delay_ms, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "enqueue: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->integer, 1);
    cr_assert_str_eq(r->element[1]->str, want_state);
    freeReplyObject(r);
}

/* Reads the next undelivered entry as consumer "c1": fills entry id, decodes its record (run id
 * and attempt). Returns 0 when the stream had nothing new. */
static int read_entry(char *entry, size_t entry_size, char *id, int *attempt)
{
    redisReply *r = redisCommand(c, "XREADGROUP GROUP %s c1 COUNT 1 STREAMS %s >", WF__GROUP,
                                 wk.k[WF__K_QUEUE]);
    cr_assert_not_null(r);
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    redisReply *msgs = r->element[0]->element[1];
    cr_assert_eq(msgs->elements, 1);
    redisReply *msg = msgs->element[0];
    snprintf(entry, entry_size, "%s", msg->element[0]->str);
    redisReply *fields = msg->element[1];
    cr_assert_eq(fields->elements, 2);
    cr_assert_str_eq(fields->element[0]->str, "r");
    if (id) {
        wf_error err = {0};
        int rc =
            wf__record_decode(fields->element[1]->str, fields->element[1]->len, id, attempt, &err);
        cr_assert_eq(rc, WF_OK, "record: %s", err.message);
    }
    freeReplyObject(r);
    return 1;
}

/* Enqueues (if asked) and claims run `id` with a lease of `lease_ms`; returns its token (kept). */
static const char *claim(const char *id, const char *lease_ms)
{
    char entry[64], rid[WF__ID_MAX];
    int attempt = 0;
    cr_assert(read_entry(entry, sizeof entry, rid, &attempt), "no entry to claim");
    cr_assert_str_eq(rid, id);
    redisReply *r = eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", lease_ms, "1", entry, id, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "claim: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->elements, 1);
    redisReply *it = r->element[0];
    cr_assert_eq(it->elements, 5, "claim did not take run %s", id);
    cr_assert_str_eq(it->element[0]->str, id);
    cr_assert_eq(it->element[2]->integer, attempt, "record attempt and claimed attempt differ");
    char *token = keep(strdup(it->element[1]->str));
    freeReplyObject(r);
    return token;
}

static const char *enqueue_and_claim(const char *id, const char *lease_ms)
{
    enqueue(id, "0", "queued");
    return claim(id, lease_ms);
}

/* wf_test_wait conditions: a zset member's score is not in the future by Redis time. */
typedef struct due_arg {
    const char *key, *member;
} due_arg;

static int score_due(void *arg)
{
    due_arg *d = arg;
    long long s = zscore(d->key, d->member);
    return s >= 0 && s <= rnow();
}

static void wait_due(const char *key, const char *member)
{
    due_arg d = {key, member};
    cr_assert(wf_test_wait(score_due, &d, 5000), "%s in %s never came due", member, key);
}

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
    cr_assert_str_eq(hget(id, "lease"), "0");
    cr_assert_str_eq(hget(id, "reclaims"), "0");
    cr_assert_geq(atoll(hget(id, "created_at")), t0);
    cr_assert_eq(xlen(), 1);

    char entry[64], rid[WF__ID_MAX];
    int attempt = 0;
    cr_assert(read_entry(entry, sizeof entry, rid, &attempt));
    cr_assert_str_eq(rid, id);
    cr_assert_eq(attempt, 1);
    cr_assert_str_eq(hget(id, "entry"), entry, "the hash remembers its current entry");
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
    redisReply *r =
        eval(WF__SCRIPT_CLAIM, 1, run_key(id), "worker-7", "30000", "1", entry, id, NULL);
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
    cr_assert_null(hget(id, "entry"));
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

    redisReply *r = eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", "30000", "1", entry, id, NULL);
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
    redisReply *r = eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", "30000", "1", entry, id, NULL);
    cr_assert_eq(r->element[0]->elements, 1);
    freeReplyObject(r);
    assert_state(id, "queued");
    cr_assert_str_eq(hget(id, "lease"), "0", "no token handed out");
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
        eval(WF__SCRIPT_CLAIM, 0, "c1", "30000", "0", entry, "record is not msgpack", NULL);
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

/* ---- complete -------------------------------------------------------------------------------- */

Test(lua, complete_finishes_the_run_and_sets_retention)
{
    const char *id = run_id("ok");
    const char *token = enqueue_and_claim(id, "30000");
    cr_assert_eq(wf_test_cmd_int(c, "HSET %s s1 x", steps_key(id)), 1);
    expect_status_ok(eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token,
                          "output-bytes", RETENTION, NULL));
    assert_state(id, "completed");
    cr_assert_str_eq(hget(id, "output"), "output-bytes");
    cr_assert_not_null(hget(id, "finished_at"));
    cr_assert_null(hget(id, "error"));
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

/* ---- fail ------------------------------------------------------------------------------------ */

/* Calls fail.lua; returns the reply (caller frees). */
static redisReply *fail(const char *id, const char *token, const char *fatal, const char *max,
                        const char *backoff, const char *cap, const char *retry_after,
                        const char *final_state)
{
    return eval(WF__SCRIPT_FAIL, 2, run_key(id), steps_key(id), id, token, "boom", fatal, max,
                backoff, cap, retry_after, RETENTION, final_state, NULL);
}

Test(lua, fail_with_attempts_left_waits_for_the_backoff)
{
    const char *id = run_id("retry");
    const char *token = enqueue_and_claim(id, "30000");
    long long t0 = rnow();
    redisReply *r = fail(id, token, "0", "3", "1000", "60000", "-1", "failed");
    long long t1 = rnow();
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_str_eq(r->element[0]->str, "waiting");
    long long wake = r->element[1]->integer;
    freeReplyObject(r);
    cr_assert(wake >= t0 + 1000 && wake <= t1 + 1000, "wake %lld not in [%lld, %lld]", wake,
              t0 + 1000, t1 + 1000);
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
    long long t0 = rnow();
    redisReply *r = fail(id, token, "0", "10", "1000", "3000", "-1", "failed");
    long long t1 = rnow();
    long long wake = r->element[1]->integer;
    freeReplyObject(r);
    cr_assert(wake >= t0 + 3000 && wake <= t1 + 3000, "wake %lld not in [%lld, %lld]", wake,
              t0 + 3000, t1 + 3000);
    cr_assert_str_eq(hget(id, "attempt"), "4");
}

Test(lua, fail_with_retry_after_uses_it_instead_of_the_backoff)
{
    const char *id = run_id("after");
    const char *token = enqueue_and_claim(id, "30000");
    long long t0 = rnow();
    redisReply *r = fail(id, token, "0", "3", "1000", "60000", "250", "failed");
    long long t1 = rnow();
    long long wake = r->element[1]->integer;
    freeReplyObject(r);
    cr_assert(wake >= t0 + 250 && wake <= t1 + 250);
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

Test(lua, fail_fatal_fails_at_once)
{
    const char *id = run_id("fatal");
    const char *token = enqueue_and_claim(id, "30000");
    redisReply *r = fail(id, token, "1", "5", "1000", "60000", "-1", "failed");
    cr_assert_str_eq(r->element[0]->str, "failed");
    freeReplyObject(r);
    assert_state(id, "failed");
    cr_assert_str_eq(hget(id, "attempt"), "1");
}

Test(lua, fail_fatal_terminated_variant)
{
    const char *id = run_id("timeout");
    const char *token = enqueue_and_claim(id, "30000");
    redisReply *r = fail(id, token, "1", "5", "1000", "60000", "-1", "terminated");
    cr_assert_str_eq(r->element[0]->str, "terminated");
    freeReplyObject(r);
    assert_state(id, "terminated");
}

Test(lua, fail_with_a_wrong_token_is_stale)
{
    const char *id = run_id("fstale");
    enqueue_and_claim(id, "30000");
    expect_error(fail(id, "99", "0", "3", "1000", "60000", "-1", "failed"), "STALE ");
    assert_state(id, "running");
    cr_assert_null(hget(id, "error"));
}

/* ---- stop ------------------------------------------------------------------------------------ */

static redisReply *stop(const char *id)
{
    return eval(WF__SCRIPT_STOP, 2, run_key(id), steps_key(id), id, "stopped by test", RETENTION,
                NULL);
}

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
    redisReply *r = redisCommand(c, "HINCRBY %s lease 1", run_key(id)); /* claimed again */
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
    cr_assert_eq(wf_test_cmd_int(c, "HSET %s reclaims 2", run_key(id)), 0);
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
