/* lua_env.c - the Lua script tests' shared set-up and helpers (lua_env.h): a real redis-server,
 * the workflow's keys, FCALL of the embedded scripts and small assertions on Redis state. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lua_env.h"
#include "script_call.h"

wf_test_redis srv;
redisContext *c;
wf__wfkeys wk;

/* Strings the tests allocate, freed in teardown so leak checking stays quiet. */
static char *kept[256];
static int nkept;

char *keep(char *s)
{
    cr_assert_not_null(s, "out of memory");
    cr_assert_lt(nkept, (int)(sizeof kept / sizeof kept[0]), "raise kept[]");
    kept[nkept++] = s;
    return s;
}

void lua_env_setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0, "could not start redis-server");
    c = wf_test_redis_connect(&srv);
    cr_assert_not_null(c);
    cr_assert_eq(wf__wfkeys_init(&wk, PREFIX, WFN), WF_OK);
    wf_error err = {0};
    cr_assert_eq(wf_test_functions_load(c, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_test_ensure_group(c, wk.k[WF__K_QUEUE], &err), WF_OK, "%s", err.message);
}

void lua_env_teardown(void)
{
    for (int i = 0; i < nkept; i++) free(kept[i]);
    nkept = 0;
    wf__wfkeys_free(&wk);
    if (c) redisFree(c);
    c = NULL;
    wf_test_redis_stop(&srv);
}

TestSuite(lua, .init = lua_env_setup, .fini = lua_env_teardown, .timeout = 60);

/* ---- helpers --------------------------------------------------------------------------------- */

const char *run_key(const char *id)
{
    return keep(wf__key_run(PREFIX, WFN, id));
}

const char *steps_key(const char *id)
{
    return keep(wf__key_steps(PREFIX, WFN, id));
}

const char *run_id(const char *suffix)
{
    size_t n = strlen(WFN) + strlen(suffix) + 2;
    char *id = keep(malloc(n));
    snprintf(id, n, "%s:%s", WFN, suffix);
    return id;
}

redisReply *eval_argv(wf__script script, int fixed, int nkeys, const char *const *keys, int nargs,
                      const char *const *args, const size_t *lens)
{
    const wf__script_src *s = wf__script_get(script);
    cr_assert_not_null(s, "script %d not embedded", (int)script);
    const char *argv[64];
    size_t alen[64];
    char numkeys[16];
    snprintf(numkeys, sizeof numkeys, "%d", (fixed ? WF__NFIXED : 0) + nkeys);
    const char *head[3] = {"FCALL", s->fn, numkeys};
    size_t head_len[3] = {5, strlen(s->fn), strlen(numkeys)};
    int n = 0;
    for (int i = 0; i < 3; i++, n++) argv[n] = head[i], alen[n] = head_len[i];
    for (int i = 0; fixed && i < WF__NFIXED; i++, n++) argv[n] = wk.k[i], alen[n] = strlen(wk.k[i]);
    cr_assert_leq(n + nkeys + nargs, 64, "more than 64 arguments");
    for (int i = 0; i < nkeys; i++, n++) argv[n] = keys[i], alen[n] = strlen(keys[i]);
    for (int i = 0; i < nargs; i++, n++)
        argv[n] = args[i], alen[n] = lens ? lens[i] : strlen(args[i]);
    redisReply *r = wf_test_command_argv(c, n, argv, alen);
    cr_assert_not_null(r, "connection failed: %s", c->errstr);
    return r;
}

redisReply *eval(wf__script script, int nextra, ...)
{
    const char *rest[48];
    int n = 0;
    va_list ap;
    va_start(ap, nextra);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        cr_assert_lt(n, 48);
        rest[n++] = a;
    }
    va_end(ap);
    cr_assert_geq(n, nextra, "fewer arguments than keys");
    return eval_argv(script, 1, nextra, rest, n - nextra, rest + nextra, NULL);
}

/* Asserts that `r` is an error reply starting with `prefix`, and frees it. */
void expect_error(redisReply *r, const char *prefix)
{
    cr_assert_eq(r->type, REDIS_REPLY_ERROR, "expected error %s, got reply type %d", prefix,
                 r->type);
    cr_assert_eq(strncmp(r->str, prefix, strlen(prefix)), 0, "expected %s..., got: %s", prefix,
                 r->str);
    freeReplyObject(r);
}

void expect_status_ok(redisReply *r)
{
    cr_assert_eq(r->type, REDIS_REPLY_STATUS, "type %d: %s", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
}

long long expect_int(redisReply *r)
{
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "type %d: %s", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Redis time in ms: the scripts' clock. */
long long rnow(void)
{
    redisReply *r = wf_test_command(c, "TIME");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    long long ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
}

/* A field of the run hash (kept copy) or NULL. */
const char *hget(const char *id, const char *field)
{
    char *v = wf_test_cmd_str(c, "HGET %s %s", run_key(id), field);
    return v ? keep(v) : NULL;
}

/* A zset member's score, or -1 when absent. */
long long zscore(const char *key, const char *member)
{
    char *v = wf_test_cmd_str(c, "ZSCORE %s %s", key, member);
    if (!v) return -1;
    long long s = atoll(v);
    free(v);
    return s;
}

long long xlen(void)
{
    return wf_test_cmd_int(c, "XLEN %s", wk.k[WF__K_QUEUE]);
}

long long xpending(void)
{
    redisReply *r = wf_test_command(c, "XPENDING %s %s", wk.k[WF__K_QUEUE], WF__GROUP);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1);
    long long n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

/* The run hash says `state` and the run is in that state's index zset and in no other. Schema 2
 * indexes neither queued nor running runs (lua/lib.lua WF_STATE_KEY): those keys stay empty, and
 * a run is running exactly when it holds a lease. */
void assert_state(const char *id, const char *state)
{
    const char *s = hget(id, "state");
    cr_assert_not_null(s, "run %s has no hash", id);
    cr_assert_str_eq(s, state, "run %s", id);
    long long lease = zscore(wk.k[WF__K_LEASES], id);
    if (strcmp(state, "running") == 0)
        cr_assert_geq(lease, 0, "running run %s has no lease", id);
    else
        cr_assert_eq(lease, -1, "run %s (state %s) holds a lease", id, state);
    for (int i = 1; i <= 8; i++) {
        const char *name = wf_state_name((wf_state)i);
        long long sc = zscore(wk.k[WF__K_STATE((wf_state)i)], id);
        if (strcmp(name, state) == 0 && i != WF_STATE_QUEUED && i != WF_STATE_RUNNING)
            cr_assert_geq(sc, 0, "run %s missing from index state:%s", id, name);
        else
            cr_assert_eq(sc, -1, "run %s (state %s) still in index state:%s", id, state, name);
    }
}

void enqueue(const char *id, const char *delay_ms, const char *want_state)
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
int read_entry(char *entry, size_t entry_size, char *id, int *attempt)
{
    redisReply *r = wf_test_command(c, "XREADGROUP GROUP %s c1 COUNT 1 STREAMS %s >", WF__GROUP,
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
const char *claim(const char *id, const char *lease_ms)
{
    char entry[64], rid[WF__ID_MAX];
    int attempt = 0;
    cr_assert(read_entry(entry, sizeof entry, rid, &attempt), "no entry to claim");
    cr_assert_str_eq(rid, id);
    redisReply *r =
        eval(WF__SCRIPT_CLAIM, 1, run_key(id), "c1", lease_ms, "1", "", "r", entry, id, "", NULL);
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

const char *enqueue_and_claim(const char *id, const char *lease_ms)
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

void wait_due(const char *key, const char *member)
{
    due_arg d = {key, member};
    cr_assert(wf_test_wait(score_due, &d, 5000), "%s in %s never came due", member, key);
}

redisReply *stop(const char *id)
{
    return eval(WF__SCRIPT_STOP, 2, run_key(id), steps_key(id), id, "stopped by test", RETENTION,
                NULL);
}

/* Calls fail.lua; returns the reply (caller frees). */
redisReply *fail(const char *id, const char *token, const char *fatal, const char *max,
                 const char *backoff, const char *cap, const char *retry_after,
                 const char *final_state)
{
    return eval(WF__SCRIPT_FAIL, 2, run_key(id), steps_key(id), id, token, "boom", fatal, max,
                backoff, cap, retry_after, RETENTION, final_state, NULL);
}
