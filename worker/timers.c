/* timers.c - the worker's 100 ms tick: lease heartbeats (every lease_ms / 3, at most 1 s), attempt
 * timeouts, due timers (delayed zset -> wake.lua), expired leases of other workers (leases zset ->
 * reclaim.lua), XAUTOCLAIM (every lease_ms), ctx-call deadlines, and drain progress.
 *
 * Candidates are read with ZRANGE ... WITHSCORES, lowest scores first, and those due by an
 * estimate of Redis time (the TIME read at connect plus the monotonic clock) are passed on; the
 * scripts re-check with Redis's own clock, so a skewed estimate only delays or wastes a call. At
 * most one call of each kind per workflow is in flight.
 *
 * When to read again: an idle worker reading both sets of every workflow on every tick was most
 * of the Redis CPU it cost (two commands per workflow ten times a second). The read also tells
 * the earliest score that is not due yet, so the next read waits until then, but at most a cap
 * (WAKE_CAP_MS; a third of the lease for leases), because another process or a client may add an
 * earlier member meanwhile: a delayed start or the timers of a worker that died are then up to a
 * cap late. Timers this worker sets itself (retries, sleeps, event timeouts) read the set at the
 * next tick (wf__timers_nudge), as every tick did before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

#define SCAN_LIMIT  100
#define WAKE_CAP_MS 500

typedef enum timer_kind { TIMER_WAKE, TIMER_RECLAIM } timer_kind;

typedef struct timer_ctx {
    wf_worker *w;
    wf__wdef *def;
    timer_kind kind;
} timer_ctx;

static int *busy_flag(wf__wdef *def, timer_kind kind)
{
    return kind == TIMER_WAKE ? &def->wake_busy : &def->reclaim_busy;
}

static void script_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    timer_ctx *t = privdata;
    redisReply *r = reply;
    *busy_flag(t->def, t->kind) = 0;
    const char *name = t->kind == TIMER_WAKE ? "wake.lua" : "reclaim.lua";
    if (r && r->type == REDIS_REPLY_ERROR) {
        wf_error e = {0};
        wf__script_error(r->str, r->len, &e);
        wf__log(WF__LOG_ERROR, "%s failed for workflow %s: %s", name, t->def->name, e.message);
    } else if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        if (t->kind == TIMER_RECLAIM) wf__metrics_inc(t->def->name, WF__C_RECLAIMED, r->integer);
        wf__log(t->kind == TIMER_WAKE ? WF__LOG_DEBUG : WF__LOG_WARN,
                t->kind == TIMER_WAKE ? "%lld run%s of workflow %s due again"
                                      : "%lld run%s of workflow %s had an expired lease (worker "
                                        "died or lost Redis): re-queued or failed",
                r->integer, r->integer == 1 ? "" : "s", t->def->name);
    }
    free(t);
}

static int64_t *next_read(wf__wdef *def, timer_kind kind)
{
    return kind == TIMER_WAKE ? &def->next_wake : &def->next_reclaim;
}

void wf__timers_nudge(wf__wdef *def)
{
    def->next_wake = 0;
}

/* `r` is a ZRANGE ... WITHSCORES reply (member, score, ...), lowest scores first. Returns how many
 * of its first members are due by the estimate of Redis time, and sets when to read the set
 * again: at the next tick when something was due (more may be, and a wake lets them go on),
 * else when its earliest member falls due, within the cap (see the top of the file). */
static size_t due_prefix(wf_worker *w, wf__wdef *def, timer_kind kind, const redisReply *r)
{
    int64_t now = wf__mono_ms(), redis_now = wf__worker_redis_now(w);
    int64_t cap = WAKE_CAP_MS;
    if (kind == TIMER_RECLAIM && w->opt.lease_ms / 3 < cap) cap = w->opt.lease_ms / 3;
    size_t n = 0, pairs = r->elements / 2;
    int64_t next = now + cap;
    while (n < pairs) {
        const redisReply *s = r->element[2 * n + 1];
        long long score = s->type == REDIS_REPLY_STRING ? strtoll(s->str, NULL, 10) : 0;
        if (score > redis_now) {
            if (now + (score - redis_now) < next) next = now + (score - redis_now);
            break;
        }
        n++;
    }
    *next_read(def, kind) = n > 0 ? 0 : next;
    return n;
}

/* A run id from a zset: valid and of this workflow? Otherwise it is dropped from the zset so a
 * clobbered entry cannot block the scan forever. */
static int candidate_ok(wf_worker *w, wf__wdef *def, const char *zset, const redisReply *id)
{
    char wfname[WF__NAME_MAX + 1];
    if (id->type == REDIS_REPLY_STRING && id->len < WF__ID_MAX && strlen(id->str) == id->len &&
        wf__runid_parse(id->str, wfname, NULL) == WF_OK && strcmp(wfname, def->name) == 0)
        return 1;
    wf__log(WF__LOG_WARN, "removing invalid member '%.*s' from %s",
            (int)(id->len > 200 ? 200 : id->len), id->str ? id->str : "", zset);
    if (wf__conn_usable(&w->cmd))
        wf__conn_command(&w->cmd, NULL, NULL, "ZREM %s %b", zset, id->str, id->len);
    return 0;
}

static void scan_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    timer_ctx *t = privdata;
    wf_worker *w = t->w;
    wf__wdef *def = t->def;
    redisReply *r = reply;
    const char *zset = def->keys.k[t->kind == TIMER_WAKE ? WF__K_DELAYED : WF__K_LEASES];
    size_t n = r && r->type == REDIS_REPLY_ARRAY ? due_prefix(w, def, t->kind, r) : 0;
    if (n == 0 || w->stop.closing || !wf__conn_usable(&w->cmd)) {
        if (r && r->type == REDIS_REPLY_ERROR)
            wf__log(WF__LOG_ERROR, "reading %s failed: %s", zset, r->str);
        *busy_flag(def, t->kind) = 0;
        free(t);
        return;
    }
    int per = t->kind == TIMER_WAKE ? 1 : 2; /* keys per candidate: run (+ steps) */
    const char **keys = calloc(WF__NFIXED + per * n + 1, sizeof *keys);
    char **owned = calloc(per * n, sizeof *owned);
    const char **args = calloc(2 + n, sizeof *args);
    size_t *arglen = calloc(2 + n, sizeof *arglen);
    int nc = 0, nowned = 0, nargs = 0;
    char maxr[16], ret[24];
    if (!keys || !owned || !args || !arglen) goto out;
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = def->keys.k[i];
    if (t->kind == TIMER_RECLAIM) {
        snprintf(maxr, sizeof maxr, "%d", w->opt.max_reclaims);
        snprintf(ret, sizeof ret, "%lld", (long long)w->url.retention_ms);
        args[nargs++] = maxr;
        args[nargs++] = ret;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = r->element[2 * i];
        if (!candidate_ok(w, def, zset, id)) continue;
        char *run = wf__key_run(w->url.prefix, def->name, id->str);
        char *steps = per == 2 ? wf__key_steps(w->url.prefix, def->name, id->str) : NULL;
        if (!run || (per == 2 && !steps)) {
            free(run);
            free(steps);
            continue;
        }
        owned[nowned++] = run;
        keys[WF__NFIXED + per * nc] = run;
        if (steps) {
            owned[nowned++] = steps;
            keys[WF__NFIXED + per * nc + 1] = steps;
        }
        args[nargs++] = id->str;
        nc++;
    }
    /* reclaim.lua: P:{W}:parents last, where a child run it fails is recorded (invoke.c). */
    const char *parents = t->kind == TIMER_RECLAIM ? def->aux[WF__AUX_PARENTS] : NULL;
    int nkeys = WF__NFIXED + per * nc;
    if (parents) keys[nkeys++] = parents;
    if (nc > 0) {
        for (int i = 0; i < nargs; i++) arglen[i] = strlen(args[i]);
        wf__script s = t->kind == TIMER_WAKE ? WF__SCRIPT_WAKE : WF__SCRIPT_RECLAIM;
        if (wf__conn_script(&w->cmd, script_reply, t, s, nkeys, keys, nargs, args, arglen) == WF_OK)
            t = NULL; /* script_reply frees it */
    }
out:
    if (t) {
        *busy_flag(def, t->kind) = 0;
        free(t);
    }
    for (int i = 0; i < nowned; i++) free(owned[i]);
    free(owned);
    free(keys);
    free(args);
    free(arglen);
}

static void scan(wf_worker *w, wf__wdef *def, timer_kind kind, int64_t now)
{
    int *busy = busy_flag(def, kind);
    if (*busy || !w->have_clock || now < *next_read(def, kind)) return;
    timer_ctx *t = malloc(sizeof *t);
    if (!t) return;
    t->w = w;
    t->def = def;
    t->kind = kind;
    const char *zset = def->keys.k[kind == TIMER_WAKE ? WF__K_DELAYED : WF__K_LEASES];
    if (wf__conn_command(&w->cmd, scan_reply, t, "ZRANGE %s 0 %d WITHSCORES", zset,
                         SCAN_LIMIT - 1) != REDIS_OK) {
        free(t);
        return;
    }
    *busy = 1;
}

/* ---- Final state indexes --------------------------------------------------------------------- */

/* A finished run's hash expires after the retention time, and the scripts that end runs prune
 * the final index they write to. An index no run ends in any more would keep its expired members
 * (`wf stats` counting runs that are gone, `wf list` listing them) until the next run ends there;
 * every worker therefore prunes its workflows' four final indexes once per retention time (at
 * least 1 s and at most 60 s apart). Idempotent, so several workers doing it is harmless; a
 * second of margin keeps a member whose hash Redis has not expired yet despite clock skew. */
#define PRUNE_MIN_MS    1000
#define PRUNE_MAX_MS    60000
#define PRUNE_MARGIN_MS 1000

static void prune_final(wf_worker *w, wf__wdef *def, int64_t now)
{
    int64_t retention = w->url.retention_ms;
    if (retention <= 0 || now < def->next_prune || !w->have_clock) return;
    int64_t every = retention < PRUNE_MIN_MS ? PRUNE_MIN_MS : retention;
    def->next_prune = now + (every > PRUNE_MAX_MS ? PRUNE_MAX_MS : every);
    long long cutoff = (long long)(wf__worker_redis_now(w) - retention - PRUNE_MARGIN_MS);
    static const wf_state finals[] = {WF_STATE_COMPLETED, WF_STATE_FAILED, WF_STATE_CANCELLED,
                                      WF_STATE_TERMINATED};
    for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++)
        wf__conn_command(&w->cmd, NULL, NULL, "ZREMRANGEBYSCORE %s -inf %lld",
                         def->keys.k[WF__K_STATE(finals[i])], cutoff);
}

/* ---- Heartbeats ----------------------------------------------------------------------------- */

typedef struct hb_ctx {
    wf_worker *w;
    wf__wdef *def;
    int64_t sent_mono; /* when the heartbeat left: the leases it renewed last lease_ms from here */
} hb_ctx;

static void hb_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    hb_ctx *h = privdata;
    wf_worker *w = h->w;
    redisReply *r = reply;
    h->def->heartbeat_busy = 0;
    if (r && r->type == REDIS_REPLY_ERROR) {
        wf_error e = {0};
        wf__script_error(r->str, r->len, &e);
        wf__log(WF__LOG_ERROR, "heartbeat.lua failed for workflow %s: %s", h->def->name, e.message);
    } else if (r && r->type == REDIS_REPLY_ARRAY && !w->stop.closing) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *p = r->element[i];
            if (p->type != REDIS_REPLY_ARRAY || p->elements != 2 ||
                p->element[0]->type != REDIS_REPLY_STRING ||
                p->element[1]->type != REDIS_REPLY_STRING)
                continue;
            const char *id = p->element[0]->str, *token = p->element[1]->str;
            for (wf__job *j = w->jobs.head; j; j = j->next) {
                if (j->def == h->def && strcmp(j->id, id) == 0 && strcmp(j->token, token) == 0) {
                    wf__job_lost(w, j, "the run was stopped, timed out or taken over");
                    break;
                }
            }
        }
        /* Renewed: every lease of this workflow still held once those reported lost above are
         * marked (a run claimed after the heartbeat left keeps its later claim-time deadline).
         * Lost first: renewing a lost run's deadline, even for a moment, let its executor pass
         * the step fence and run a step another worker had recorded (the pause chaos scenario
         * caught it once: a process thawed from SIGSTOP). */
        int64_t until = h->sent_mono + w->opt.lease_ms;
        for (wf__job *j = w->jobs.head; j; j = j->next)
            if (j->def == h->def && j->lease == WF__LEASE_HELD &&
                atomic_load(&j->lease_until_mono) < until)
                atomic_store(&j->lease_until_mono, until);
    }
    free(h);
}

static void heartbeat(wf_worker *w, wf__wdef *def)
{
    if (def->heartbeat_busy) return;
    int n = 0;
    for (wf__job *j = w->jobs.head; j; j = j->next)
        if (j->def == def && j->lease == WF__LEASE_HELD) n++;
    if (n == 0) return;
    hb_ctx *h = calloc(1, sizeof *h);
    const char **keys = calloc(WF__NFIXED + (size_t)n, sizeof *keys);
    const char **args = calloc(1 + 2 * (size_t)n, sizeof *args);
    char **runkeys = calloc((size_t)n, sizeof *runkeys);
    if (!h || !keys || !args || !runkeys) goto out;
    h->w = w;
    h->def = def;
    h->sent_mono = wf__mono_ms();
    char lease[24];
    snprintf(lease, sizeof lease, "%lld", (long long)w->opt.lease_ms);
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = def->keys.k[i];
    args[0] = lease;
    int k = 0;
    for (wf__job *j = w->jobs.head; j && k < n; j = j->next) {
        if (j->def != def || j->lease != WF__LEASE_HELD) continue;
        if (!(runkeys[k] = wf__key_run(w->url.prefix, def->name, j->id))) goto out;
        keys[WF__NFIXED + k] = runkeys[k];
        args[1 + 2 * k] = j->id;
        args[2 + 2 * k] = j->token;
        k++;
    }
    if (wf__conn_script(&w->cmd, hb_reply, h, WF__SCRIPT_HEARTBEAT, WF__NFIXED + k, keys, 1 + 2 * k,
                        args, NULL) == WF_OK) {
        def->heartbeat_busy = 1;
        h = NULL; /* hb_reply frees it */
    }
out:
    free(h);
    if (runkeys)
        for (int i = 0; i < n; i++) free(runkeys[i]);
    free(runkeys);
    free(keys);
    free(args);
}

/* ---- The tick ----------------------------------------------------------------------------- */

static void check_timeouts(wf_worker *w, int64_t now)
{
    for (wf__job *j = w->jobs.head, *next; j; j = next) {
        next = j->next;
        if (j->lease != WF__LEASE_HELD || !j->dispatched || j->returned || j->opt.timeout_ms <= 0)
            continue;
        int64_t started = atomic_load(&j->started_mono);
        if (started == 0 || now - started <= j->opt.timeout_ms) continue;
        atomic_store(&j->cancelled, 1);
        j->cancel_mono = now;
        wf__log_run(WF__LOG_WARN, j->id, j->workflow, j->attempt,
                    "attempt overran its timeout of %lld ms: terminating the run",
                    (long long)j->opt.timeout_ms);
        wf__job_end(w, j, WF__OP_TIMEOUT);
    }
}

void wf__timers_tick(wf_worker *w)
{
    if (w->stop.closing) return;
    int64_t now = wf__mono_ms();
    wf__reqs_pump(w);
    check_timeouts(w, now);
    wf__recycle_check(w, now);
    wf__ops_tick(w, now);      /* presence, gauges, readiness probe, webhooks */
    wf__children_tick(w, now); /* invoke.c: child ends delivered to their parents */
    if (wf__conn_usable(&w->cmd)) {
        for (int i = 0; i < w->ndefs; i++) {
            wf__wdef *def = w->defs[i];
            if (now >= def->next_heartbeat) {
                /* At most a second apart even with long leases: the heartbeat is also how a
                 * stop, pause or restart of a running run reaches its handler. It costs one
                 * script call per workflow with held runs. */
                int64_t every = w->opt.lease_ms / 3;
                def->next_heartbeat = now + (every > 1000 ? 1000 : every);
                heartbeat(w, def);
            }
            if (w->stop.draining) continue;
            scan(w, def, TIMER_WAKE, now);
            scan(w, def, TIMER_RECLAIM, now);
            prune_final(w, def, now);
            wf__scheduler_tick(w, def);
            wf__flow_tick(w, def);
            if (now >= def->next_autoclaim) {
                def->next_autoclaim = now + w->opt.lease_ms;
                wf__claim_autoclaim(w, def);
            }
        }
    }
    wf__worker_check_drain(w);
    wf__claim_arm(w);
}
