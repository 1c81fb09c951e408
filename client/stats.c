/* stats.c - what an operator asks of Redis as a whole rather than of one run: counts per state and
 * throughput per workflow (wf_workflow_stats), the live worker processes (wf_list_workers, from
 * the hash P:workers that workers keep), and deleting old finished runs (wf_purge_runs, through
 * lua/purge.lua). Everything is measured against Redis's clock (TIME), like the scripts do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_impl.h"
#include "cluster.h"

/* ---- Helpers ----------------------------------------------------------------------------------
 */

static long long reply_int(const redisReply *r)
{
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING) return strtoll(r->str, NULL, 10);
    return 0;
}

/* Redis TIME as ms since the epoch, from a TIME reply; 0 when it is not one. */
static int64_t reply_time_ms(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return 0;
    return (int64_t)reply_int(r->element[0]) * 1000 + (int64_t)reply_int(r->element[1]) / 1000;
}

/* Redis time in ms, or 0 with `err` filled. */
static int64_t redis_now(wf_client *client, wf_error *err)
{
    int64_t now = 0;
    return wf__client_time(client, &now, err) == WF_OK ? now : 0;
}

/* The workflows to look at: just `workflow` (checked), or every registered one. Same ownership
 * as wf_list_workflows(). */
static int workflows_of(wf_client *client, const char *workflow, char ***names, size_t *n,
                        wf_error *err)
{
    if (!workflow) return wf_list_workflows(client, names, n, err);
    *names = NULL;
    *n = 0;
    if (!wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'", workflow);
    char **one = calloc(1, sizeof *one);
    if (!one || !(one[0] = strdup(workflow))) {
        free(one);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    *names = one;
    *n = 1;
    return WF_OK;
}

/* ---- Statistics -------------------------------------------------------------------------------
 */

void wf_stats_free(wf_stats *stats, size_t n)
{
    if (!stats) return;
    for (size_t i = 0; i < n; i++) free(stats[i].workflow);
    free(stats);
}

/* Commands per workflow (one pipeline, after TIME): per lane XLEN and its first entry (queued
 * runs are their entries, schema 2), ZCARD of the leases (running runs), ZCARD of the six other
 * state indexes, ZCOUNT completed, LLEN dead, HGET of the pause (wf_workflow_pause). */
#define NSTATS_CMDS (2 * WF__NLANES + 1 + 6 + 3)

/* The Redis ms of the oldest of the lanes' first entries `first` (XRANGE - + COUNT 1 answers),
 * 0 when they are all empty. */
static int64_t oldest_entry(redisReply *const *first)
{
    int64_t oldest = 0;
    for (int l = 0; l < WF__NLANES; l++) {
        const redisReply *q = first[l];
        if (!q || q->type != REDIS_REPLY_ARRAY || q->elements < 1 ||
            q->element[0]->type != REDIS_REPLY_ARRAY || q->element[0]->elements < 1 ||
            q->element[0]->element[0]->type != REDIS_REPLY_STRING)
            continue;
        int64_t ms = (int64_t)strtoll(q->element[0]->element[0]->str, NULL, 10);
        if (ms > 0 && (!oldest || ms < oldest)) oldest = ms;
    }
    return oldest;
}

static void stats_fill(wf_stats *out, redisReply *const *r, int64_t now)
{
    memset(out, 0, sizeof *out);
    out->now_ms = now;
    size_t c = 0;
    for (int l = 0; l < WF__NLANES; l++) out->count[WF_STATE_QUEUED] += reply_int(r[c++]);
    int64_t since = oldest_entry(&r[c]);
    c += WF__NLANES;
    out->oldest_queued_ms = since > 0 && now > since ? now - since : 0;
    out->count[WF_STATE_RUNNING] = reply_int(r[c++]);
    for (int s = WF_STATE_PAUSED; s <= WF_STATE_TERMINATED; s++) out->count[s] = reply_int(r[c++]);
    out->completed_last_minute = reply_int(r[c++]);
    out->runs_per_second = (double)out->completed_last_minute / 60.0;
    out->dead = reply_int(r[c++]);
    out->paused = r[c] && r[c]->type == REDIS_REPLY_STRING;
}

static int stats_one(wf_client *client, const char *workflow, wf_stats *out, wf_error *err)
{
    wf__wfkeys wk;
    char *limits = wf__key_wf(client->url.prefix, workflow, "limits");
    if (!limits || wf__wfkeys_init(&wk, client->url.prefix, workflow) != WF_OK) {
        free(limits);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    /* Redis's clock first, then one pipeline; the last minute is counted back from it. */
    int64_t now = redis_now(client, err);
    if (!now) {
        wf__wfkeys_free(&wk);
        free(limits);
        return err ? err->code : WF_ERR_PROTOCOL;
    }
    char minute_ago[32];
    snprintf(minute_ago, sizeof minute_ago, "(%lld", (long long)(now - 60000));
    const char *cmds[NSTATS_CMDS][7];
    size_t c = 0;
    for (int l = 0; l < WF__NLANES; l++, c++) {
        cmds[c][0] = "XLEN";
        cmds[c][1] = wk.k[wf__lane_key((wf__lane)l)];
        cmds[c][2] = NULL;
    }
    for (int l = 0; l < WF__NLANES; l++, c++) {
        const char *first[] = {"XRANGE", wk.k[wf__lane_key((wf__lane)l)], "-", "+", "COUNT", "1",
                               NULL};
        memcpy(cmds[c], first, sizeof first);
    }
    for (int s = WF_STATE_RUNNING; s <= WF_STATE_TERMINATED; s++, c++) {
        cmds[c][0] = "ZCARD";
        cmds[c][1] = s == WF_STATE_RUNNING ? wk.k[WF__K_LEASES] : wk.k[WF__K_STATE(s)];
        cmds[c][2] = NULL;
    }
    const char *zcount[] = {"ZCOUNT", wk.k[WF__K_STATE(WF_STATE_COMPLETED)], minute_ago, "+inf",
                            NULL};
    const char *dead[] = {"LLEN", wk.k[WF__K_DEAD], NULL};
    const char *paused[] = {"HGET", limits, "paused", NULL};
    const char *const *list[NSTATS_CMDS];
    for (size_t i = 0; i < c; i++) list[i] = cmds[i];
    list[c++] = zcount;
    list[c++] = dead;
    list[c++] = paused;
    redisReply *r[NSTATS_CMDS] = {0};
    int rc = wf__client_pipeline(client, c, list, r, err);
    wf__wfkeys_free(&wk);
    free(limits);
    if (rc != WF_OK) return rc;
    stats_fill(out, r, now);
    for (size_t i = 0; i < c; i++) {
        if (r[i] && r[i]->type == REDIS_REPLY_ERROR && rc == WF_OK)
            rc = wf__script_error(r[i]->str, r[i]->len, err);
        freeReplyObject(r[i]);
    }
    if (rc == WF_OK) out->workflow = strdup(workflow);
    if (rc == WF_OK && !out->workflow) rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    return rc;
}

int wf_workflow_stats(wf_client *client, const char *workflow, wf_stats **stats, size_t *n,
                      wf_error *err)
{
    if (!client || !stats || !n) return wf_error_set(err, WF_ERR_INVALID, "NULL argument");
    *stats = NULL;
    *n = 0;
    char **names;
    size_t count;
    int rc = workflows_of(client, workflow, &names, &count, err);
    if (rc != WF_OK) return rc;
    wf_stats *out = calloc(count + 1, sizeof *out);
    if (!out) rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    size_t done = 0;
    for (; rc == WF_OK && done < count; done++)
        if ((rc = stats_one(client, names[done], &out[done], err)) != WF_OK) break;
    wf_list_free(names, count);
    if (rc != WF_OK) {
        wf_stats_free(out, done);
        return rc;
    }
    *stats = out;
    *n = count;
    return WF_OK;
}

/* ---- Workers ----------------------------------------------------------------------------------
 */

static void worker_clear(wf_worker_info *w)
{
    free(w->name);
    free(w->host);
    wf_list_free(w->workflows, w->nworkflows);
    memset(w, 0, sizeof *w);
}

void wf_workers_free(wf_worker_info *workers, size_t n)
{
    if (!workers) return;
    for (size_t i = 0; i < n; i++) worker_clear(&workers[i]);
    free(workers);
}

static int64_t json_i64(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_real(v)) return (int64_t)json_real_value(v);
    return 0;
}

/* Fills `w` from field `name` = JSON `value`. An entry that does not parse is kept, stale, with
 * only its name. Returns WF_OK or WF_ERR_NOMEM. */
static int parse_worker(const redisReply *name, const redisReply *value, int64_t now,
                        wf_worker_info *w)
{
    memset(w, 0, sizeof *w);
    w->stale = 1;
    if (!(w->name = strndup(name->str, name->len))) return WF_ERR_NOMEM;
    json_t *o = json_loadb(value->str, value->len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return WF_OK;
    }
    const char *host = json_string_value(json_object_get(o, "host"));
    int oom = host && !(w->host = strdup(host));
    w->pid = json_i64(o, "pid");
    w->started_at_ms = json_i64(o, "started_at");
    w->last_seen_ms = json_i64(o, "last_seen");
    w->concurrency = (int)json_i64(o, "concurrency");
    w->busy = (int)json_i64(o, "busy");
    w->age_ms = w->last_seen_ms > 0 && now > w->last_seen_ms ? now - w->last_seen_ms : 0;
    w->stale = w->last_seen_ms <= 0 || w->age_ms > WF_WORKER_STALE_MS;
    json_t *wfs = json_object_get(o, "workflows");
    size_t nw = json_is_array(wfs) ? json_array_size(wfs) : 0;
    if (nw && !oom) {
        w->workflows = calloc(nw, sizeof(char *));
        oom = !w->workflows;
        for (size_t i = 0; !oom && i < nw; i++) {
            const char *s = json_string_value(json_array_get(wfs, i));
            if (!s) continue;
            oom = !(w->workflows[w->nworkflows] = strdup(s));
            if (!oom) w->nworkflows++;
        }
    }
    json_decref(o);
    return oom ? WF_ERR_NOMEM : WF_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const wf_worker_info *)a)->name, ((const wf_worker_info *)b)->name);
}

int wf_list_workers(wf_client *client, int include_stale, wf_worker_info **workers, size_t *n,
                    wf_error *err)
{
    if (!client || !workers || !n) return wf_error_set(err, WF_ERR_INVALID, "NULL argument");
    *workers = NULL;
    *n = 0;
    char *key = wf__key_global(client->url.prefix, "workers");
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    const char *time_cmd[] = {"TIME", NULL};
    const char *hgetall[] = {"HGETALL", key, NULL};
    const char *const *cmds[] = {time_cmd, hgetall};
    redisReply *r[2] = {0};
    int rc = wf__client_pipeline(client, 2, cmds, r, err);
    free(key);
    if (rc != WF_OK) return rc;
    int64_t now = reply_time_ms(r[0]);
    const redisReply *h = r[1];
    wf_worker_info *out = NULL;
    size_t count = 0, cap = h->elements / 2 + 1;
    if (h->type == REDIS_REPLY_ERROR) {
        rc = wf__script_error(h->str, h->len, err);
    } else if (h->type != REDIS_REPLY_ARRAY || !now) {
        rc = wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply to TIME/HGETALL");
    } else if (!(out = calloc(cap, sizeof *out))) {
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i + 1 < h->elements && rc == WF_OK; i += 2) {
            const redisReply *k = h->element[i], *v = h->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
            if (parse_worker(k, v, now, &out[count]) != WF_OK)
                rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            if (rc == WF_OK && !include_stale && out[count].stale)
                worker_clear(&out[count]);
            else
                count++;
        }
    }
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    if (rc != WF_OK) {
        wf_workers_free(out, out ? cap : 0); /* entries past the filled ones are zeroed */
        return rc;
    }
    if (count > 1) qsort(out, count, sizeof *out, by_name);
    *workers = out;
    *n = count;
    return WF_OK;
}

/* ---- Purging ----------------------------------------------------------------------------------
 */

#define PURGE_BATCH 200

/* Purges (or counts) old runs of one final state of one workflow. Adds to *purged. */
static int purge_state(wf_client *client, const wf__wfkeys *wk, const char *workflow, wf_state s,
                       const wf_purge_options *o, int64_t cutoff, size_t *purged, wf_error *err)
{
    const char *index = wk->k[WF__K_STATE(s)];
    char max[32];
    snprintf(max, sizeof max, "%lld", (long long)cutoff);
    if (o->dry_run) {
        redisReply *r = wf__client_cmd(client, 1, err, "ZCOUNT %s -inf %s", index, max);
        if (!r) return err ? err->code : WF_ERR_IO;
        *purged += (size_t)reply_int(r);
        freeReplyObject(r);
        return WF_OK;
    }
    char age[32];
    snprintf(age, sizeof age, "%lld", (long long)o->older_than_ms);
    long long skip = 0; /* candidates the script left alone (not old enough after all) */
    for (;;) {
        redisReply *ids = wf__client_cmd(client, 1, err, "ZRANGEBYSCORE %s -inf %s LIMIT %lld %d",
                                         index, max, skip, PURGE_BATCH);
        if (!ids) return err ? err->code : WF_ERR_IO;
        size_t m = ids->type == REDIS_REPLY_ARRAY ? ids->elements : 0;
        if (m == 0) {
            freeReplyObject(ids);
            return WF_OK;
        }
        const char **keys = calloc(WF__NFIXED + 2 * m, sizeof *keys);
        const char **args = calloc(1 + m, sizeof *args);
        /* rc is not wf_error_set()'s result: clang-analyzer cannot see that it returns `code`, so
         * it followed a "WF_OK" path into the NULL keys[]. */
        int rc = keys && args ? WF_OK : WF_ERR_NOMEM;
        if (rc != WF_OK) wf_error_set(err, rc, "out of memory");
        size_t nk = WF__NFIXED, na = 1;
        if (rc == WF_OK) {
            for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk->k[i];
            args[0] = age;
            for (size_t i = 0; i < m && rc == WF_OK; i++) {
                const char *id = ids->element[i]->str;
                char *h = wf__key_run(client->url.prefix, workflow, id);
                char *st = wf__key_steps(client->url.prefix, workflow, id);
                keys[nk++] = h;
                keys[nk++] = st;
                args[na++] = id;
                if (!h || !st) rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            }
        }
        redisReply *r = NULL;
        if (rc == WF_OK && wf__client_ensure(client, err) == WF_OK)
            r = wf__script_call(client->c, WF__SCRIPT_PURGE, (int)nk, keys, (int)na, args, NULL,
                                err);
        if (rc == WF_OK && !r) rc = err ? err->code : WF_ERR_IO;
        long long deleted = r ? reply_int(r) : 0;
        freeReplyObject(r);
        for (size_t i = WF__NFIXED; keys && i < nk; i++) free((char *)keys[i]);
        free(keys);
        free(args);
        freeReplyObject(ids);
        if (rc != WF_OK) return rc;
        *purged += (size_t)deleted;
        skip += (long long)m - deleted;
        if (m < PURGE_BATCH) return WF_OK;
    }
}

int wf_purge_runs(wf_client *client, const wf_purge_options *options, size_t *purged, wf_error *err)
{
    size_t total = 0;
    if (purged) *purged = 0;
    if (!client || !options) return wf_error_set(err, WF_ERR_INVALID, "NULL argument");
    if (options->older_than_ms < 0)
        return wf_error_set(err, WF_ERR_INVALID, "older_than_ms must not be negative");
    if (options->state != WF_STATE_UNKNOWN && !wf_state_is_final(options->state))
        return wf_error_set(err, WF_ERR_INVALID,
                            "only finished runs can be purged (completed, failed, cancelled, "
                            "terminated), not %s ones",
                            wf_state_name(options->state));
    char **names;
    size_t count;
    int rc = workflows_of(client, options->workflow, &names, &count, err);
    if (rc != WF_OK) return rc;
    int64_t now = redis_now(client, err);
    if (!now) rc = err ? err->code : WF_ERR_PROTOCOL;
    int64_t cutoff = now - options->older_than_ms;
    for (size_t w = 0; w < count && rc == WF_OK; w++) {
        wf__wfkeys wk;
        if (wf__wfkeys_init(&wk, client->url.prefix, names[w]) != WF_OK) {
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            break;
        }
        for (int s = WF_STATE_COMPLETED; s <= WF_STATE_TERMINATED && rc == WF_OK; s++)
            if (options->state == WF_STATE_UNKNOWN || (int)options->state == s)
                rc = purge_state(client, &wk, names[w], (wf_state)s, options, cutoff, &total, err);
        wf__wfkeys_free(&wk);
    }
    wf_list_free(names, count);
    if (purged) *purged = total;
    return rc;
}
