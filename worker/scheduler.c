/* scheduler.c - firing schedules (include/wf/client.h, "Schedules"), on the worker's 100 ms tick.
 *
 * Every worker process does this for each workflow it runs, with no leader and no lock:
 *
 *   1. ZRANGE P:{W}:schedules:due 0 9 WITHSCORES   the earliest ten; none due: done, and the
 *      next scan waits for the earliest of them (at most IDLE_CAP_MS: a client may add one)
 *   2. HMGET P:{W}:schedules <ids...>        the records, for their spec and catch-up policy
 *   3. per due schedule: plan the firing in C (wf__sched_plan: run or skip, and the next fire
 *      time from the spec) and call fire.lua, which compare-and-sets next_at, starts the run
 *      "W:sched-<id>-<fire_ms>" and moves next_at, atomically in the workflow's slot.
 *
 * Workers race for the same firing; fire.lua lets exactly one through (the others see 'moved'),
 * and the run id derived from the firing makes even a repeated script call start no second run.
 * "now" is the worker's estimate of Redis time; fire.lua re-checks against Redis's own clock, so
 * a skewed estimate only costs a wasted call ('early'). One scan per workflow is in flight at a
 * time; when a firing leaves the schedule due again (catch-up "all"), the next scan starts at
 * once instead of on the next tick.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule_internal.h"
#include "wf_worker_internal.h"

#define SCAN_LIMIT  10
#define IDLE_CAP_MS 1000 /* a schedule added meanwhile by a client fires at most this late */

/* One scan of one workflow's due schedules: from ZRANGEBYSCORE to the last fire.lua answer. */
typedef struct sched_scan {
    wf_worker *w;
    wf__wdef *def;
    char *hkey, *zkey; /* P:{W}:schedules, P:{W}:schedules:due */
    int pending;       /* fire.lua calls not answered yet */
    int again;         /* a firing left its schedule due: scan again at once */
    size_t n;          /* due ids read */
    char **ids;
    int64_t *scores;
} sched_scan;

/* One fire.lua call. */
typedef struct fire_call {
    sched_scan *scan;
    char id[WF__SCHED_ID_MAX + 1];
    int64_t next_at; /* what we asked fire.lua to set */
} fire_call;

static void scan_free(sched_scan *s)
{
    for (size_t i = 0; s->ids && i < s->n; i++) free(s->ids[i]);
    free(s->ids);
    free(s->scores);
    free(s->hkey);
    free(s->zkey);
    free(s);
}

/* The scan is over when nothing is in flight: let the next tick (or, for catch-up, right now)
 * start another. */
static void scan_done(sched_scan *s)
{
    if (s->pending > 0) return;
    wf_worker *w = s->w;
    wf__wdef *def = s->def;
    int again = s->again && !w->stop.closing && !w->stop.draining;
    scan_free(s);
    def->sched_busy = 0;
    if (again) wf__scheduler_tick(w, def);
}

static void fire_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    fire_call *f = privdata;
    sched_scan *s = f->scan;
    redisReply *r = reply;
    s->pending--;
    if (r && r->type == REDIS_REPLY_ERROR) {
        wf_error e = {0};
        wf__script_error(r->str, r->len, &e);
        wf__log(WF__LOG_ERROR, "fire.lua failed for schedule %s of workflow %s: %s", f->id,
                s->def->name, e.message);
    } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
               r->element[0]->type == REDIS_REPLY_INTEGER &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        long long outcome = r->element[0]->integer;
        const char *what = r->element[1]->str;
        if (outcome == 1) {
            wf__log(WF__LOG_INFO, "schedule %s of workflow %s fired: run %s%s", f->id, s->def->name,
                    what,
                    r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING &&
                            strcmp(r->element[2]->str, "exists") == 0
                        ? " (already started)"
                        : "");
        } else if (outcome == 0) {
            wf__log(WF__LOG_INFO,
                    "schedule %s of workflow %s: missed firing skipped (catch-up none)", f->id,
                    s->def->name);
        } else if (strcmp(what, "unreadable") == 0) {
            wf__log(WF__LOG_ERROR,
                    "schedule %s of workflow %s has an unreadable record: taken off %s (see "
                    "`wf schedule list`; remove or re-add it)",
                    f->id, s->def->name, s->zkey);
        } else {
            wf__log(WF__LOG_DEBUG, "schedule %s of workflow %s: %s (another worker fired it?)",
                    f->id, s->def->name, what);
        }
        if (outcome >= 0 && f->next_at >= 0 && f->next_at <= wf__worker_redis_now(s->w))
            s->again = 1;
    }
    free(f);
    scan_done(s);
}

/* Plans and sends fire.lua for due schedule `i` whose record is `val`. */
static void fire_one(sched_scan *s, size_t i, const redisReply *val)
{
    wf_worker *w = s->w;
    wf__wdef *def = s->def;
    const char *id = s->ids[i];
    wf__sched_rec rec;
    wf__cron cron = {0};
    wf_error e = {0};
    if (!val || val->type != REDIS_REPLY_STRING) {
        memset(&rec, 0, sizeof rec); /* removed since: fire.lua answers 'gone' and tidies up */
        rec.next_at = s->scores[i];
    } else if (wf__sched_decode(val->str, val->len, &rec, &e) != WF_OK ||
               wf__cron_parse(rec.spec, &cron, &e) != WF_OK) {
        wf__log(WF__LOG_ERROR,
                "schedule %s of workflow %s is unreadable (%s): taking it off %s; the record "
                "stays in %s for `wf schedule list` (remove or re-add it)",
                id, def->name, e.message, s->zkey, s->hkey);
        wf__conn_command(&w->cmd, NULL, NULL, "ZREM %s %s", s->zkey, id);
        return;
    }
    int fire = 0;
    int64_t next = -1;
    if (rec.spec[0])
        wf__sched_plan(&cron, rec.catch_up, rec.next_at, wf__worker_redis_now(w), &fire, &next);
    char run_id[WF__ID_MAX];
    wf__sched_run_id(def->name, id, rec.next_at, run_id);
    char *run_key = wf__key_run(w->url.prefix, def->name, run_id);
    fire_call *f = calloc(1, sizeof *f);
    if (!run_key || !f) {
        free(run_key);
        free(f);
        return;
    }
    f->scan = s;
    snprintf(f->id, sizeof f->id, "%s", id);
    f->next_at = next;
    const char *keys[WF__NFIXED + 3];
    for (int k = 0; k < WF__NFIXED; k++) keys[k] = def->keys.k[k];
    keys[WF__NFIXED] = s->hkey;
    keys[WF__NFIXED + 1] = s->zkey;
    keys[WF__NFIXED + 2] = run_key;
    char seen[24], nxt[24];
    snprintf(seen, sizeof seen, "%lld", (long long)rec.next_at);
    snprintf(nxt, sizeof nxt, "%lld", (long long)next);
    const char *args[] = {id, seen, rec.spec, nxt, fire ? run_id : "", def->name};
    if (wf__conn_script(&w->cmd, fire_reply, f, WF__SCRIPT_FIRE, WF__NFIXED + 3, keys, 6, args,
                        NULL) == WF_OK)
        s->pending++;
    else
        free(f);
    free(run_key);
}

static void records_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    sched_scan *s = privdata;
    redisReply *r = reply;
    s->pending--;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == s->n && !s->w->stop.closing &&
        wf__conn_usable(&s->w->cmd)) {
        for (size_t i = 0; i < s->n; i++) fire_one(s, i, r->element[i]);
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        wf__log(WF__LOG_ERROR, "reading %s failed: %s", s->hkey, r->str);
    }
    scan_done(s);
}

static void due_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    sched_scan *s = privdata;
    wf_worker *w = s->w;
    redisReply *r = reply;
    s->pending--;
    /* The set is read lowest scores first, due or not (wf__scheduler_tick): keep the due ones,
     * and read again when the first one that is not falls due (at most IDLE_CAP_MS later). */
    int64_t redis_now = wf__worker_redis_now(w), mono = wf__mono_ms();
    s->def->next_sched = mono + IDLE_CAP_MS;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || w->stop.closing ||
        !wf__conn_usable(&w->cmd)) {
        if (r && r->type == REDIS_REPLY_ERROR)
            wf__log(WF__LOG_ERROR, "reading %s failed: %s", s->zkey, r->str);
        scan_done(s);
        return;
    }
    size_t n = r->elements / 2;
    for (size_t i = 0; i < n; i++) {
        const redisReply *score = r->element[2 * i + 1];
        long long at = score->type == REDIS_REPLY_STRING ? strtoll(score->str, NULL, 10) : 0;
        if (at > redis_now) {
            if (at - redis_now < IDLE_CAP_MS) s->def->next_sched = mono + (at - redis_now);
            n = i;
            break;
        }
    }
    if (n > 0) s->def->next_sched = 0; /* firing moves them on: look again at the next tick */
    if (n == 0) {
        scan_done(s);
        return;
    }
    s->ids = calloc(n, sizeof *s->ids);
    s->scores = calloc(n, sizeof *s->scores);
    const char **argv = calloc(2 + n, sizeof *argv);
    if (!s->ids || !s->scores || !argv) goto out;
    argv[0] = "HMGET";
    argv[1] = s->hkey;
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = r->element[2 * i], *score = r->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING) continue;
        if (!wf__sched_id_valid(id->str) || strlen(id->str) != id->len) {
            wf__log(WF__LOG_WARN, "removing invalid member '%.*s' from %s",
                    (int)(id->len > 80 ? 80 : id->len), id->str, s->zkey);
            wf__conn_command(&w->cmd, NULL, NULL, "ZREM %s %b", s->zkey, id->str, id->len);
            continue;
        }
        if (!(s->ids[s->n] = strdup(id->str))) break;
        s->scores[s->n] = strtoll(score->str, NULL, 10);
        argv[2 + s->n] = s->ids[s->n];
        s->n++;
    }
    if (s->n > 0 &&
        wf__conn_argv(&w->cmd, records_reply, s, (int)(2 + s->n), argv, NULL) == REDIS_OK)
        s->pending++;
out:
    free(argv);
    scan_done(s);
}

void wf__scheduler_tick(wf_worker *w, wf__wdef *def)
{
    if (def->sched_busy || !w->have_clock || w->stop.closing || w->stop.draining ||
        !wf__conn_usable(&w->cmd) || wf__mono_ms() < def->next_sched)
        return;
    sched_scan *s = calloc(1, sizeof *s);
    if (!s) return;
    s->w = w;
    s->def = def;
    s->hkey = wf__key_wf(w->url.prefix, def->name, "schedules");
    s->zkey = wf__key_wf(w->url.prefix, def->name, "schedules:due");
    if (!s->hkey || !s->zkey ||
        wf__conn_command(&w->cmd, due_reply, s, "ZRANGE %s 0 %d WITHSCORES", s->zkey,
                         SCAN_LIMIT - 1) != REDIS_OK) {
        scan_free(s);
        return;
    }
    s->pending = 1;
    def->sched_busy = 1;
}
