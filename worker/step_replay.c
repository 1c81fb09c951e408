/* step_replay.c - the replay engine under every durable step (include/wf/step.h).
 *
 * On the first step call of an execution the run's steps hash is read once (HGETALL through the
 * loop); after that a finished step is answered from memory and a new result costs exactly one
 * script call (step.lua, which also checks the lease; the records of other runs that reach the
 * loop in the same turn share it, batch_step.c). A step claims its name first: a name used
 * twice in one execution, or with another kind than its record, fails the run. Sleeps, event waits
 * and step retries end the execution with suspend.lua: the run becomes `waiting`, gives back its
 * lease, and the handler returns WF_SUSPEND. Results handed to the handler live in a zone freed
 * with the job.
 *
 * The step kinds are built on the wf__step_* functions here: plain steps and their retries
 * (step_run.c), sleeps and event waits (step_wait.c), HTTP calls (step_http.c) and child runs
 * (invoke.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/step.h"
#include "wf_step_engine.h"
#include "wf_worker_internal.h"

#define MAX_NAMES 4096

#define LOST_FIELD " lost" /* lua/lib_history.lua WF_LOST_FIELD */

void wf__steps_free(struct wf__steps *s)
{
    if (!s) return;
    wf__reply_free(s->all);
    msgpack_zone_destroy(&s->zone);
    for (int i = 0; i < s->nseen; i++) free(s->seen[i].name);
    free(s->seen);
    for (int i = 0; i < s->nnames; i++) free(s->names[i]);
    free(s->names);
    free(s);
}

static struct wf__steps *steps_of(wf_ctx *ctx)
{
    if (!ctx->steps) {
        struct wf__steps *s = calloc(1, sizeof *s);
        if (!s) return NULL;
        msgpack_zone_init(&s->zone, 1024);
        ctx->steps = s;
    }
    return ctx->steps;
}

/* The keys every step script takes: fixed keys, run hash, steps hash. */
typedef struct runkeys {
    const char *k[WF__NFIXED + 2];
    char *run, *steps;
} runkeys;

static int runkeys_init(wf_ctx *ctx, runkeys *rk)
{
    const wf__wfkeys *wk = wf__ctx_keys(ctx);
    rk->run = wf__key_run(wf__ctx_prefix(ctx), ctx->job->workflow, ctx->job->id);
    rk->steps = wf__key_steps(wf__ctx_prefix(ctx), ctx->job->workflow, ctx->job->id);
    if (!wk || !rk->run || !rk->steps) {
        free(rk->run);
        free(rk->steps);
        return WF_ERR_NOMEM;
    }
    for (int i = 0; i < WF__NFIXED; i++) rk->k[i] = wk->k[i];
    rk->k[WF__NFIXED] = rk->run;
    rk->k[WF__NFIXED + 1] = rk->steps;
    return WF_OK;
}

static void runkeys_free(runkeys *rk)
{
    free(rk->run);
    free(rk->steps);
}

/* Loads the steps hash once per execution. */
static int load(wf_ctx *ctx, struct wf__steps *s)
{
    if (s->all || (s->none && !s->reread)) return WF_OK;
    if (!s->reread && strcmp(ctx->job->token, "1") == 0) {
        s->none = 1;
        s->lost = 0;
        return WF_OK;
    }
    char *key = wf__key_steps(wf__ctx_prefix(ctx), ctx->job->workflow, ctx->job->id);
    if (!key) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    const char *argv[2] = {"HGETALL", key};
    wf_error err = {0};
    int rc = wf__ctx_command(ctx, 2, argv, NULL, &s->all, &err);
    free(key);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "reading step records: %s", err.message);
    s->lost = 0;
    for (size_t i = 0; s->all && s->all->type == REDIS_REPLY_ARRAY && i + 1 < s->all->elements;
         i += 2) {
        const redisReply *k = s->all->element[i], *v = s->all->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, LOST_FIELD) == 0 &&
            v->type == REDIS_REPLY_STRING && atoi(v->str) > 0)
            s->lost = atoi(v->str);
    }
    return WF_OK;
}

/* Finds the stored record of `name`; 1 and fills rec when there is one. */
static int lookup(struct wf__steps *s, const char *name, wf__steprec *rec)
{
    if (!s->all || s->all->type != REDIS_REPLY_ARRAY) return 0;
    for (size_t i = 0; i + 1 < s->all->elements; i += 2) {
        const redisReply *k = s->all->element[i], *v = s->all->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            v->type == REDIS_REPLY_STRING)
            return wf__steprec_decode(v->str, v->len, rec, NULL) == WF_OK;
    }
    return 0;
}

/* Checks the name and that it is not reused in this execution with another kind (or twice). */
static int claim_name(wf_ctx *ctx, struct wf__steps *s, const char *name, const char *kind)
{
    if (!wf__step_name_valid(name))
        return wf_ctx_fail(ctx, WF_ERR_STEP,
                           "invalid step name: use 1-128 printable characters without spaces");
    for (int i = 0; i < s->nseen; i++)
        if (strcmp(s->seen[i].name, name) == 0)
            return wf_ctx_fail(ctx, WF_ERR_STEP,
                               "step name '%s' used twice in one run (first as a %s step); "
                               "names must be unique: use wf_step_name() in loops",
                               name, s->seen[i].kind);
    if (s->nseen >= MAX_NAMES)
        return wf_ctx_fail(ctx, WF_ERR_STEP, "more than %d steps in one run", MAX_NAMES);
    if (s->nseen == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        wf__seen *n = realloc(s->seen, sizeof *n * (size_t)cap);
        if (!n) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
        s->seen = n;
        s->cap = cap;
    }
    s->seen[s->nseen].name = strdup(name);
    if (!s->seen[s->nseen].name) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    snprintf(s->seen[s->nseen].kind, sizeof s->seen[s->nseen].kind, "%s", kind);
    s->nseen++;
    return WF_OK;
}

static int kind_matches(wf_ctx *ctx, const wf__steprec *rec, const char *name, const char *kind)
{
    if (strcmp(rec->kind, kind) == 0) return WF_OK;
    return wf_ctx_fail(ctx, WF_ERR_STEP,
                       "step '%s' was recorded as a %s step but is now used as a %s step; step "
                       "names and kinds must not change between replays",
                       name, rec->kind, kind);
}

/* Decodes recorded result bytes into the execution's zone. */
static int decode_result(wf_ctx *ctx, struct wf__steps *s, const char *data, size_t len,
                         const msgpack_object **out)
{
    if (!out) return WF_OK;
    msgpack_object *o = msgpack_zone_malloc(&s->zone, sizeof *o);
    if (!o) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    /* The zone must own the bytes: copy them in, then unpack referencing the copy. */
    char *copy = msgpack_zone_malloc(&s->zone, len ? len : 1);
    if (!copy) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    if (len) memcpy(copy, data, len);
    size_t off = 0;
    if (len == 0) {
        o->type = MSGPACK_OBJECT_NIL;
    } else if (msgpack_unpack(copy, len, &off, &s->zone, o) != MSGPACK_UNPACK_SUCCESS) {
        return wf_ctx_fail(ctx, WF_ERR_BAD_PAYLOAD, "a recorded step result does not decode");
    }
    *out = o;
    return WF_OK;
}

/* Writes a step record with step.lua (lease-checked). */
static int record(wf_ctx *ctx, const char *name, const wf__steprec *rec)
{
    runkeys rk;
    if (runkeys_init(ctx, &rk) != WF_OK) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf__steprec_encode(rec, &sb);
    /* The first record of an execution after lost ones clears their count (step.lua ARGV 5). */
    int clear = ctx->steps && ctx->steps->lost > 0;
    const char *args[5] = {ctx->job->id, wf__ctx_token(ctx), name, sb.data, "1"};
    size_t lens[5] = {strlen(args[0]), strlen(args[1]), strlen(name), sb.size, 1};
    redisReply *reply = NULL;
    wf_error err = {0};
    int rc = wf__ctx_call(ctx, WF__SCRIPT_STEP, WF__NFIXED + 2, rk.k, clear ? 5 : 4, args, lens,
                          &reply, &err);
    wf__reply_free(reply);
    msgpack_sbuffer_destroy(&sb);
    runkeys_free(&rk);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "recording step '%s': %s", name, err.message);
    if (clear) ctx->steps->lost = 0;
    return WF_OK;
}

/* Hands the run back as `waiting` (suspend.lua). Returns WF_SUSPEND, or WF_OK when the step was
 * completed meanwhile (RESUME), or an error. With `deadline`, the timer is a deadline decided by
 * Redis time: WF__STEP_DUE when it has already come (nothing waits; `due`, if any, was recorded).
 */
static int suspend(wf_ctx *ctx, const char *name, const wf__steprec *rec, int64_t wake_at,
                   const char *reason, int deadline, const wf__steprec *due)
{
    runkeys rk;
    if (runkeys_init(ctx, &rk) != WF_OK) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    msgpack_sbuffer sb, db;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&db);
    wf__steprec_encode(rec, &sb);
    if (due) wf__steprec_encode(due, &db);
    char wake[32];
    snprintf(wake, sizeof wake, "%lld", (long long)wake_at);
    /* The first record of an execution after lost ones clears their count (ARGV 9). */
    int clear = ctx->steps && ctx->steps->lost > 0;
    const char *args[9] = {ctx->job->id,         wf__ctx_token(ctx), name, sb.data, wake, reason,
                           deadline ? "1" : "0", due ? db.data : "", "1"};
    size_t lens[9] = {strlen(args[0]),
                      strlen(args[1]),
                      strlen(name),
                      sb.size,
                      strlen(wake),
                      strlen(reason),
                      1,
                      due ? db.size : 0,
                      1};
    redisReply *reply = NULL;
    wf_error err = {0};
    int rc = wf__ctx_call(ctx, WF__SCRIPT_SUSPEND, WF__NFIXED + 2, rk.k,
                          clear ? 9 : (deadline ? 8 : 6), args, lens, &reply, &err);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&db);
    runkeys_free(&rk);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "suspending at step '%s': %s", name, err.message);
    const char *said =
        reply && (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING)
            ? reply->str
            : "";
    int resume = strcmp(said, "RESUME") == 0, is_due = strcmp(said, "DUE") == 0;
    wf__reply_free(reply);
    /* Written: the waiting record, or (DUE) the `due` one. RESUME and a bare DUE wrote nothing. */
    if (clear && !resume && (!is_due || due)) ctx->steps->lost = 0;
    if (resume) return WF_OK;
    if (is_due) return WF__STEP_DUE;
    wf__ctx_mark_suspended(ctx);
    return WF_SUSPEND;
}

const char *wf_step_name(wf_ctx *ctx, const char *base, int i)
{
    struct wf__steps *s = steps_of(ctx);
    if (!s || !base) return "";
    char **n = realloc(s->names, sizeof(char *) * (size_t)(s->nnames + 1));
    if (!n) return "";
    s->names = n;
    size_t len = strlen(base) + 16;
    char *name = malloc(len);
    if (!name) return "";
    snprintf(name, len, "%s#%d", base, i);
    s->names[s->nnames++] = name;
    return name;
}

/* ---- For the step kinds (wf_steps.h) ----------------------------------------------------------
 */

int wf__step_begin(wf_ctx *ctx, const char *name, const char *kind, wf__steprec *rec, int *had)
{
    *had = 0;
    if (wf_ctx_cancelled(ctx)) return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "run was stopped");
    struct wf__steps *s = steps_of(ctx);
    if (!s) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    int rc = claim_name(ctx, s, name, kind);
    if (rc == WF_OK) rc = load(ctx, s);
    if (rc != WF_OK) return rc;
    *had = lookup(s, name, rec);
    return *had ? kind_matches(ctx, rec, name, kind) : WF_OK;
}

int wf__step_record(wf_ctx *ctx, const char *name, const wf__steprec *rec)
{
    return record(ctx, name, rec);
}

int wf__step_suspend(wf_ctx *ctx, const char *name, const wf__steprec *rec, int64_t wake_at,
                     const char *reason)
{
    return suspend(ctx, name, rec, wake_at, reason, 0, NULL);
}

int wf__step_suspend_due(wf_ctx *ctx, const char *name, const wf__steprec *rec, int64_t wake_at,
                         const char *reason, const wf__steprec *due)
{
    return suspend(ctx, name, rec, wake_at, reason, wake_at > 0, due);
}

int wf__step_result(wf_ctx *ctx, const char *data, size_t len, const msgpack_object **out)
{
    struct wf__steps *s = steps_of(ctx);
    if (!s) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    return decode_result(ctx, s, data, len, out);
}

int64_t wf__step_now(wf_ctx *ctx)
{
    return ctx->job->claimed_redis_ms + (wf__mono_ms() - ctx->job->claimed_mono);
}

void wf__step_forget(wf_ctx *ctx)
{
    struct wf__steps *s = ctx->steps;
    if (!s) return;
    wf__reply_free(s->all);
    s->all = NULL;
    s->reread = 1;
    if (s->nseen > 0) free(s->seen[--s->nseen].name);
}
