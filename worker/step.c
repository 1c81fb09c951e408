/* step.c - durable steps by deterministic replay (include/wf/step.h).
 *
 * On the first step call of an execution the run's steps hash is read once (HGETALL through the
 * loop); after that a finished step is answered from memory and a new result costs exactly one
 * script call (step.lua, which also checks the lease). Sleeps, event waits and step retries end
 * the execution with suspend.lua: the run becomes `waiting`, gives back its lease, and the
 * handler returns WF_SUSPEND. Results handed to the handler live in a zone freed with the job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/step.h"
#include "wf_worker_internal.h"

#define LOOKBACK_MS 60000
#define MAX_NAMES   4096

typedef struct seen {
    char *name;
    char kind[8];
} seen;

/* Per-execution state, hung off the ctx on first use and freed with the job. */
struct wf__steps {
    redisReply *all;   /* HGETALL of the steps hash at the first step call */
    msgpack_zone zone; /* decoded results handed to the handler */
    seen *seen;        /* names used in this execution, to refuse duplicates */
    int nseen, cap;
    char **names; /* wf_step_name() strings */
    int nnames;
    _Atomic int64_t deadline_mono; /* step timeout: wf_ctx_cancelled() turns true after it */
    int attempt;                   /* attempt of the step body now executing, 0 outside one */
    int lost; /* executions lost with their worker since the last step record (the steps hash's
               * " lost", reclaim.lua): added to the attempts of the first step body this
               * execution runs, and cleared by the first record it writes */
};

#define LOST_FIELD " lost" /* lua/lib.lua WF_LOST_FIELD */

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

int wf__steps_deadline_passed(const wf_ctx *ctx)
{
    const struct wf__steps *s = ctx->steps;
    if (!s) return 0;
    int64_t d = s->deadline_mono;
    return d > 0 && wf__mono_ms() >= d;
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
    if (s->all) return WF_OK;
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
        seen *n = realloc(s->seen, sizeof *n * (size_t)cap);
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

static int64_t redis_now(wf_ctx *ctx)
{
    return ctx->job->claimed_redis_ms + (wf__mono_ms() - ctx->job->claimed_mono);
}

static int64_t delay_for(const wf_step_options *o, int attempt, int64_t retry_after)
{
    if (retry_after >= 0) return retry_after;
    double d = (double)o->base_delay_ms;
    if (o->backoff == WF_BACKOFF_LINEAR)
        d *= attempt;
    else
        for (int i = 1; i < attempt && d < (double)o->max_delay_ms; i++) d *= o->factor;
    if (d > (double)o->max_delay_ms) d = (double)o->max_delay_ms;
    if (o->jitter_pct > 0) {
        double j = d * o->jitter_pct / 100.0;
        d += j * (2.0 * ((double)rand() / RAND_MAX) - 1.0);
        if (d < 0) d = 0;
    }
    return (int64_t)d;
}

int wf_step_run_ex(wf_ctx *ctx, const char *name, wf_step_fn fn, void *arg,
                   const wf_step_options *options, const msgpack_object **result)
{
    if (result) *result = NULL;
    if (!ctx || !fn) return WF_ERR_INVALID;
    if (wf_ctx_cancelled(ctx)) return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "run was stopped");
    struct wf__steps *s = steps_of(ctx);
    if (!s) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    int rc = claim_name(ctx, s, name, "run");
    if (rc == WF_OK) rc = load(ctx, s);
    if (rc != WF_OK) return rc;
    wf_step_options o = options ? *options : (wf_step_options){0};
    if (o.max_attempts <= 0) o.max_attempts = 3;
    if (o.base_delay_ms <= 0) o.base_delay_ms = 1000;
    if (o.factor <= 1.0) o.factor = 2.0;
    if (o.max_delay_ms <= 0) o.max_delay_ms = 300000;

    wf__steprec rec;
    int had = lookup(s, name, &rec);
    if (had && (rc = kind_matches(ctx, &rec, name, "run")) != WF_OK) return rc;
    if (had && strcmp(rec.status, "done") == 0)
        return decode_result(ctx, s, rec.result, rec.result_len, result);
    int attempts = had ? rec.attempts : 0;
    int64_t t0 = had && rec.t0 ? rec.t0 : redis_now(ctx);

    /* Self-fencing: past the lease we last know was renewed (less a tenth of it for the time
     * a heartbeat takes), another worker may own the run and have run this step already: this
     * process was frozen or stalled. Do not start the side effect; the run goes on elsewhere. */
    int64_t fence = atomic_load(&ctx->job->lease_until_mono) - ctx->job->lease_ms / 10;
    ctx->step_admitted_ms = wf__now_ms();
    if (ctx->job->lease_ms > 0 && wf__mono_ms() >= fence) {
        atomic_store(&ctx->job->fenced, 1);
        atomic_store(&ctx->job->cancelled, 1);
        return wf_ctx_fail(ctx, WF_ERR_CANCELLED,
                           "step '%s' not started: this worker's lease on the run may have "
                           "expired (the process stalled); the run continues elsewhere",
                           name);
    }

    /* Execute the step body. */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    ctx->job->retry_after = -1;
    int64_t start = wf__mono_ms();
    s->deadline_mono = o.timeout_ms > 0 ? start + o.timeout_ms : 0;
    /* Executions of this body lost with their worker (killed mid-step, reclaimed) count too: the
     * first step body after them is the one that was running, or may have been. */
    attempts += s->lost;
    s->attempt = attempts + 1;
    rc = fn(ctx, arg, &pk);
    s->attempt = 0;
    s->deadline_mono = 0;
    int64_t took = wf__mono_ms() - start;
    wf__metrics_step_ms(ctx->job->workflow, took); /* wf_step_duration_seconds (metrics.c) */
    attempts++;
    if (rc == WF_OK && o.timeout_ms > 0 && took > o.timeout_ms)
        rc = wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "step '%s' took %lld ms, over its timeout of %lld ms",
                         name, (long long)took, (long long)o.timeout_ms);
    if (rc == WF_OK && ctx->job->cancelled) rc = WF_ERR_CANCELLED;
    wf__steprec nrec = {0};
    snprintf(nrec.kind, sizeof nrec.kind, "run");
    nrec.attempts = attempts;
    nrec.t0 = t0;
    nrec.t1 = redis_now(ctx);
    if (rc == WF_OK) {
        if (out.size == 0) msgpack_pack_nil(&pk);
        snprintf(nrec.status, sizeof nrec.status, "done");
        nrec.result = out.data;
        nrec.result_len = out.size;
        rc = record(ctx, name, &nrec);
        if (rc == WF_OK) rc = decode_result(ctx, s, out.data, out.size, result);
        msgpack_sbuffer_destroy(&out);
        return rc;
    }
    msgpack_sbuffer_destroy(&out);
    if (rc == WF_ERR_CANCELLED || rc == WF_SUSPEND || rc == WF_ERR_STALE) return rc;
    const char *why = ctx->job->error ? ctx->job->error : wf_strerror(rc);
    snprintf(nrec.status, sizeof nrec.status, "failed");
    nrec.error = why;
    if (rc == WF_ERR_FATAL || attempts >= o.max_attempts) {
        wf__log_step(WF__LOG_WARN, ctx->job->id, ctx->job->workflow, ctx->job->attempt, name,
                     "step failed for good after %d attempt%s: %s", attempts,
                     attempts == 1 ? "" : "s", why);
        int r2 = record(ctx, name, &nrec);
        if (r2 != WF_OK) return r2;
        return wf_ctx_fail(ctx, WF_ERR_FATAL, "step '%s' failed after %d attempt%s: %s", name,
                           attempts, attempts == 1 ? "" : "s", nrec.error);
    }
    int64_t delay = delay_for(&o, attempts, ctx->job->retry_after);
    int64_t wake = redis_now(ctx) + delay;
    wf__log_step(WF__LOG_INFO, ctx->job->id, ctx->job->workflow, ctx->job->attempt, name,
                 "step failed (attempt %d of %d): %s; retrying in %lld ms", attempts,
                 o.max_attempts, why, (long long)delay);
    char reason[300];
    snprintf(reason, sizeof reason, "retry step %s (attempt %d of %d) after: %.200s", name,
             attempts + 1, o.max_attempts, nrec.error);
    nrec.until = wake;
    char saved[256];
    snprintf(saved, sizeof saved, "%s", why);
    nrec.error = saved;
    return suspend(ctx, name, &nrec, wake, reason, 0, NULL);
}

int wf_step_run(wf_ctx *ctx, const char *name, wf_step_fn fn, void *arg,
                const msgpack_object **result)
{
    return wf_step_run_ex(ctx, name, fn, arg, NULL, result);
}

int wf_step_sleep_until(wf_ctx *ctx, const char *name, int64_t epoch_ms)
{
    if (!ctx) return WF_ERR_INVALID;
    if (wf_ctx_cancelled(ctx)) return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "run was stopped");
    struct wf__steps *s = steps_of(ctx);
    if (!s) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    int rc = claim_name(ctx, s, name, "sleep");
    if (rc == WF_OK) rc = load(ctx, s);
    if (rc != WF_OK) return rc;
    wf__steprec rec;
    int had = lookup(s, name, &rec);
    if (had && (rc = kind_matches(ctx, &rec, name, "sleep")) != WF_OK) return rc;
    if (had && strcmp(rec.status, "done") == 0) return WF_OK;
    int64_t until = had && rec.until ? rec.until : epoch_ms;
    int64_t now = redis_now(ctx);
    /* Whether the sleep is over is Redis's decision (suspend.lua compares its TIME with the wake
     * time and, when it has come, records `done` in the same call): never early, and the worker's
     * estimate of Redis time does not matter. A wake time at or before the epoch is due at once. */
    wf__steprec w = {0};
    snprintf(w.kind, sizeof w.kind, "sleep");
    snprintf(w.status, sizeof w.status, "waiting");
    w.t0 = had && rec.t0 ? rec.t0 : now;
    w.until = until;
    wf__steprec done = w;
    snprintf(done.status, sizeof done.status, "done");
    done.t1 = now > until ? now : until; /* Redis time was at least `until` */
    char reason[200];
    snprintf(reason, sizeof reason, "sleep %s until %lld", name, (long long)until);
    rc = suspend(ctx, name, &w, until > 0 ? until : 1, reason, 1, &done);
    if (rc == WF__STEP_DUE) return WF_OK;
    return rc; /* WF_SUSPEND, WF_OK (recorded done meanwhile) or an error */
}

int wf_step_sleep(wf_ctx *ctx, const char *name, int64_t ms)
{
    if (!ctx) return WF_ERR_INVALID;
    /* The wake time is fixed when the step is first reached (kept in its record), so replays do
     * not push it back. */
    return wf_step_sleep_until(ctx, name, redis_now(ctx) + (ms > 0 ? ms : 0));
}

int wf_step_attempt(const wf_ctx *ctx)
{
    return ctx && ctx->steps ? ctx->steps->attempt : 0;
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

/* ---- For invoke.c (wf_worker_internal.h) ---------------------------------------------------- */

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
    return redis_now(ctx);
}

void wf__step_forget(wf_ctx *ctx)
{
    struct wf__steps *s = ctx->steps;
    if (!s) return;
    wf__reply_free(s->all);
    s->all = NULL;
    if (s->nseen > 0) free(s->seen[--s->nseen].name);
}

/* ---- events --------------------------------------------------------------------------------- */

/* event_wait.lua: registers (mode "wait") or unregisters ("done") this run's wait. With "wait":
 * returns 1 and the payload when a matching event logged before `deadline` (Redis ms, 0: none)
 * is in the log, EVENT_TIMEOUT when there is none and Redis time reached the deadline (the wait
 * is unregistered), 0 when the run must wait. */
#define EVENT_TIMEOUT 2
static int event_call(wf_ctx *ctx, const char *event, const char *key, const char *member,
                      const char *since, const char *mode, int64_t deadline, char **payload,
                      size_t *plen)
{
    char *log = wf__key_event(wf__ctx_prefix(ctx), event, "log");
    char *waiters = wf__key_event(wf__ctx_prefix(ctx), event, "waiters");
    char *deadlines = wf__key_event(wf__ctx_prefix(ctx), event, "deadlines");
    if (!log || !waiters || !deadlines) {
        free(log);
        free(waiters);
        free(deadlines);
        return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    }
    char dl[24];
    snprintf(dl, sizeof dl, "%lld", (long long)(deadline > 0 ? deadline : 0));
    const char *keys[3] = {log, waiters, deadlines};
    const char *args[5] = {member, key ? key : "", since, mode, dl};
    redisReply *reply = NULL;
    wf_error err = {0};
    int rc = wf__ctx_call(ctx, WF__SCRIPT_EVENT_WAIT, 3, keys, 5, args, NULL, &reply, &err);
    free(log);
    free(waiters);
    free(deadlines);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "event wait on '%s': %s", event, err.message);
    int found = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "TIMEOUT") == 0) {
        found = EVENT_TIMEOUT;
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && payload) {
        const redisReply *p = reply->element[1];
        *plen = p->len;
        *payload = malloc(p->len + 1);
        if (*payload) {
            memcpy(*payload, p->str, p->len);
            found = 1;
        }
    }
    wf__reply_free(reply);
    return found;
}

int wf_step_wait_for_event(wf_ctx *ctx, const char *name, const char *event, const char *key,
                           int64_t timeout_ms, const msgpack_object **payload)
{
    if (payload) *payload = NULL;
    if (!ctx) return WF_ERR_INVALID;
    if (!event || !wf__name_valid(event))
        return wf_ctx_fail(ctx, WF_ERR_BAD_NAME, "invalid event name");
    if (key && *key && !wf__name_valid(key))
        return wf_ctx_fail(ctx, WF_ERR_INVALID, "invalid event key");
    if (wf_ctx_cancelled(ctx)) return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "run was stopped");
    struct wf__steps *s = steps_of(ctx);
    if (!s) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    int rc = claim_name(ctx, s, name, "event");
    if (rc == WF_OK) rc = load(ctx, s);
    if (rc != WF_OK) return rc;
    wf__steprec rec;
    int had = lookup(s, name, &rec);
    if (had && (rc = kind_matches(ctx, &rec, name, "event")) != WF_OK) return rc;
    char member[WF__ID_MAX + 140];
    snprintf(member, sizeof member, "%s %s", ctx->job->id, name);
    if (had && strcmp(rec.status, "done") == 0) {
        event_call(ctx, event, key, member, "0", "done", 0, NULL, NULL);
        return decode_result(ctx, s, rec.result ? rec.result : "\xc0",
                             rec.result ? rec.result_len : 1, payload);
    }
    if (had && strcmp(rec.status, "timeout") == 0)
        return wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "timed out waiting for event '%s'", event);

    int64_t now = redis_now(ctx);
    wf__steprec w = {0};
    snprintf(w.kind, sizeof w.kind, "event");
    snprintf(w.status, sizeof w.status, "waiting");
    snprintf(w.event, sizeof w.event, "%s", event);
    if (key) snprintf(w.key, sizeof w.key, "%s", key);
    w.t0 = had && rec.t0 ? rec.t0 : now;
    /* The deadline is fixed when the wait is first reached and kept in its record; whether it
     * has passed, and which events came before it, only Redis's clock decides (event_wait.lua,
     * suspend.lua, deliver.lua). */
    w.until = had ? rec.until : (timeout_ms > 0 ? now + timeout_ms : 0);
    if (had && rec.since[0])
        snprintf(w.since, sizeof w.since, "%s", rec.since);
    else
        snprintf(w.since, sizeof w.since, "%lld", (long long)(now - LOOKBACK_MS));

    for (int tries = 0;; tries++) {
        char *data = NULL;
        size_t len = 0;
        int found = event_call(ctx, event, key, member, w.since, "wait", w.until, &data, &len);
        if (found < 0) return found;
        if (found == 1) {
            wf__steprec done = w;
            snprintf(done.status, sizeof done.status, "done");
            done.result = len ? data : "\xc0";
            done.result_len = len ? len : 1;
            done.t1 = redis_now(ctx);
            rc = record(ctx, name, &done);
            if (rc == WF_OK) rc = decode_result(ctx, s, done.result, done.result_len, payload);
            free(data);
            if (rc == WF_OK) event_call(ctx, event, key, member, "0", "done", 0, NULL, NULL);
            return rc;
        }
        if (found == EVENT_TIMEOUT) {
            /* No event logged before the deadline, and Redis time reached it: a late delivery
             * (deliver.lua) is refused from now on, so this record cannot hide an event. */
            wf__steprec t = w;
            snprintf(t.status, sizeof t.status, "timeout");
            t.t1 = redis_now(ctx);
            if ((rc = record(ctx, name, &t)) != WF_OK) return rc;
            return wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "timed out waiting for event '%s'", event);
        }
        char reason[300];
        snprintf(reason, sizeof reason, "event %s%s%s%s", event, key && *key ? " key " : "",
                 key && *key ? key : "", w.until ? "" : " (no timeout)");
        rc = suspend(ctx, name, &w, w.until, reason, w.until > 0 && tries == 0, NULL);
        if (rc == WF__STEP_DUE) continue; /* the deadline came meanwhile: look again, decide */
        if (rc == WF_OK) {
            /* Delivered between the registration and the suspend: read the record it wrote. */
            wf__reply_free(s->all);
            s->all = NULL;
            s->nseen--; /* let the replayed lookup below reuse the name */
            free(s->seen[s->nseen].name);
            return wf_step_wait_for_event(ctx, name, event, key, timeout_ms, payload);
        }
        return rc;
    }
}

int64_t wf__ctx_step_admitted_ms(const wf_ctx *ctx)
{
    return ctx ? ctx->step_admitted_ms : 0;
}
