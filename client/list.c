/* list.c - listing runs (newest first, with an optional time window and paging) from where each
 * state keeps them (schema 2): queued runs are their entries on the lanes, running runs their
 * leases, the other states their index zsets; and the registered workflows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

void wf_list_free(char **items, size_t count)
{
    if (!items) return;
    for (size_t i = 0; i < count; i++) free(items[i]);
    free(items);
}

void wf__records_free(void *items, size_t n, size_t size, const size_t *strs, size_t nstrs)
{
    if (!items) return;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nstrs; k++) {
            char *s; /* memcpy: the member is a char * at a byte offset, maybe unaligned for us */
            memcpy(&s, (char *)items + i * size + strs[k], sizeof s);
            free(s);
        }
    free(items);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int wf_list_workflows(wf_client *client, char ***names, size_t *count, wf_error *err)
{
    *names = NULL;
    *count = 0;
    char *key = wf__key_global(client->url.prefix, "workflows");
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__client_cmd(client, 1, err, "HKEYS %s", key);
    free(key);
    if (!r) return err ? err->code : WF_ERR_IO;
    char **out = calloc(r->elements + 1, sizeof(char *));
    if (!out) {
        freeReplyObject(r);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && wf__name_valid(r->element[i]->str))
            if ((out[n] = strdup(r->element[i]->str))) n++;
    freeReplyObject(r);
    if (n) qsort(out, n, sizeof(char *), cmp_str);
    *names = out;
    *count = n;
    return WF_OK;
}

typedef struct scored {
    char *id;
    double score;
} scored;

/* The runs found so far, across workflows and states. */
typedef struct found {
    scored *all;
    size_t n, cap;
} found;

static int cmp_newest(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    /* Ties newest-id first, the order ZREVRANGEBYSCORE gives them: every index's newest `want`
     * then holds the overall newest `want`, so pages neither repeat nor skip a run. */
    return x->score < y->score ? 1 : x->score > y->score ? -1 : strcmp(y->id, x->id);
}

static int found_add(found *f, const char *id, double score, wf_error *err)
{
    if (f->n == f->cap) {
        /* `cap` grows only with `all`: a failed realloc leaves both as they were. */
        size_t ncap = f->cap ? f->cap * 2 : 64;
        scored *na = realloc(f->all, ncap * sizeof *f->all);
        if (!na) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        f->all = na;
        f->cap = ncap;
    }
    f->all[f->n].id = strdup(id);
    f->all[f->n].score = score;
    if (f->all[f->n].id) f->n++;
    return WF_OK;
}

/* Members of zset `key` with scores in [min, max], newest `want` of them. */
static int list_zset(wf_client *client, const char *key, const char *min, const char *max,
                     size_t want, found *f, wf_error *err)
{
    redisReply *r =
        wf__client_cmd(client, 1, err, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT 0 %lld", key,
                       max, min, (long long)want);
    if (!r) return err ? err->code : WF_ERR_IO;
    int rc = WF_OK;
    for (size_t i = 0; i + 1 < r->elements && rc == WF_OK; i += 2)
        rc = found_add(f, r->element[i]->str, strtod(r->element[i + 1]->str, NULL), err);
    freeReplyObject(r);
    return rc;
}

/* The run id of queue entry `e` of `workflow` into `id`: its `c` (a lean run) or its record's. */
static int entry_id(const redisReply *e, const char *workflow, char *id)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *fl = e->element[1];
    for (size_t i = 0; i + 1 < fl->elements; i += 2) {
        const redisReply *k = fl->element[i], *v = fl->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || k->len != 1 || v->type != REDIS_REPLY_STRING) continue;
        if (k->str[0] == 'c' && wf__suffix_valid(v->str)) {
            snprintf(id, WF__ID_MAX, "%s:%s", workflow, v->str);
            return 1;
        }
        if (k->str[0] == 'r') return wf__record_decode(v->str, v->len, id, NULL, NULL) == WF_OK;
    }
    return 0;
}

/* Adds the runs of XRANGE reply `r`; `last` gets the id of its last entry ("" if none). */
static int add_entries(const redisReply *r, const char *workflow, found *f, char last[64],
                       wf_error *err)
{
    int rc = WF_OK;
    last[0] = 0;
    for (size_t i = 0; i < r->elements && rc == WF_OK; i++) {
        char id[WF__ID_MAX];
        const redisReply *e = r->element[i];
        if (entry_id(e, workflow, id)) rc = found_add(f, id, strtod(e->element[0]->str, NULL), err);
        if (e->type == REDIS_REPLY_ARRAY && e->elements &&
            e->element[0]->type == REDIS_REPLY_STRING)
            snprintf(last, 64, "%s", e->element[0]->str);
    }
    return rc;
}

/* Queued runs: the entries of the lanes with times in [min, max] ms (0: open), newest `want`.
 * A lane orders one millisecond's entries by sequence, the merge by run id: when the newest
 * `want` stop inside a millisecond, the rest of that millisecond is read too, or a page could
 * miss a run that the merge puts before one it has. */
static int list_lanes(wf_client *client, const wf__wfkeys *wk, const char *workflow, int64_t since,
                      int64_t until, size_t want, found *f, wf_error *err)
{
    char lo[32] = "-", hi[32] = "+";
    if (since) snprintf(lo, sizeof lo, "%lld", (long long)since);
    if (until) snprintf(hi, sizeof hi, "%lld", (long long)until);
    int rc = WF_OK;
    for (int l = 0; l < WF__NLANES && rc == WF_OK; l++) {
        const char *lane = wk->k[wf__lane_key((wf__lane)l)];
        redisReply *r = wf__client_cmd(client, 1, err, "XREVRANGE %s %s %s COUNT %lld", lane, hi,
                                       lo, (long long)want);
        if (!r) return err ? err->code : WF_ERR_IO;
        char last[64];
        size_t got = r->elements;
        rc = add_entries(r, workflow, f, last, err);
        freeReplyObject(r);
        if (rc != WF_OK || got < want || !last[0]) continue;
        long long ms = strtoll(last, NULL, 10);
        r = wf__client_cmd(client, 1, err, "XREVRANGE %s (%s %lld-0", lane, last, ms);
        if (!r) return err ? err->code : WF_ERR_IO;
        rc = add_entries(r, workflow, f, last, err);
        freeReplyObject(r);
    }
    return rc;
}

int wf_list_runs(wf_client *client, const wf_list_options *opt, char ***ids, size_t *count,
                 wf_error *err)
{
    *ids = NULL;
    *count = 0;
    wf_list_options o = opt ? *opt : (wf_list_options){0};
    size_t limit = o.limit ? o.limit : 100;
    if (o.since_ms < 0 || o.until_ms < 0 || (o.until_ms && o.since_ms > o.until_ms))
        return wf_error_set(err, WF_ERR_INVALID, "since (%lld) is after until (%lld)",
                            (long long)o.since_ms, (long long)o.until_ms);
    /* Each index gives its newest offset + limit members in the time window; the merge below
     * keeps the overall newest, skips `offset` of them and returns `limit`. */
    size_t want = o.offset + limit;
    char min[32] = "-inf", max[32] = "+inf";
    if (o.since_ms) snprintf(min, sizeof min, "%lld", (long long)o.since_ms);
    if (o.until_ms) snprintf(max, sizeof max, "%lld", (long long)o.until_ms);
    char **wfs = NULL;
    size_t nwf = 0;
    int rc;
    if (o.workflow) {
        if (!wf__name_valid(o.workflow))
            return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name");
        wfs = calloc(1, sizeof(char *));
        if (!wfs || !(wfs[0] = strdup(o.workflow))) {
            free(wfs);
            return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        }
        nwf = 1;
    } else if ((rc = wf_list_workflows(client, &wfs, &nwf, err)) != WF_OK) {
        return rc;
    }
    found f = {0};
    rc = WF_OK;
    for (size_t w = 0; w < nwf && rc == WF_OK; w++) {
        wf__wfkeys wk;
        if (wf__wfkeys_init(&wk, client->url.prefix, wfs[w]) != WF_OK) {
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            break;
        }
        for (int s = WF_STATE_QUEUED; s <= WF_STATE_TERMINATED && rc == WF_OK; s++) {
            if (o.state != WF_STATE_UNKNOWN && (int)o.state != s) continue;
            if (s == WF_STATE_QUEUED)
                rc = list_lanes(client, &wk, wfs[w], o.since_ms, o.until_ms, want, &f, err);
            else /* running: by lease expiry, the time of its last claim or heartbeat + lease */
                rc = list_zset(client,
                               s == WF_STATE_RUNNING ? wk.k[WF__K_LEASES] : wk.k[WF__K_STATE(s)],
                               min, max, want, &f, err);
        }
        wf__wfkeys_free(&wk);
    }
    wf_list_free(wfs, nwf);
    if (rc == WF_OK) {
        if (f.n) qsort(f.all, f.n, sizeof *f.all, cmp_newest);
        size_t first = o.offset < f.n ? o.offset : f.n;
        size_t n = f.n - first < limit ? f.n - first : limit;
        char **out = calloc(n + 1, sizeof(char *));
        if (!out) {
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++) {
                out[i] = f.all[first + i].id;
                f.all[first + i].id = NULL;
            }
            *ids = out;
            *count = n;
        }
    }
    for (size_t i = 0; i < f.n; i++) free(f.all[i].id);
    free(f.all);
    return rc;
}
