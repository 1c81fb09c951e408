/* list.c - listing runs from the per-state index zsets (newest first, with an optional time window
 * and paging), and the registered workflows. */
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

static int cmp_newest(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : strcmp(x->id, y->id);
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
    scored *all = NULL;
    size_t nall = 0, cap = 0;
    rc = WF_OK;
    for (size_t w = 0; w < nwf && rc == WF_OK; w++) {
        wf__wfkeys wk;
        if (wf__wfkeys_init(&wk, client->url.prefix, wfs[w]) != WF_OK) {
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            break;
        }
        for (int s = WF_STATE_QUEUED; s <= WF_STATE_TERMINATED && rc == WF_OK; s++) {
            if (o.state != WF_STATE_UNKNOWN && (int)o.state != s) continue;
            redisReply *r =
                wf__client_cmd(client, 1, err, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT 0 %lld",
                               wk.k[WF__K_STATE(s)], max, min, (long long)want);
            if (!r) {
                rc = err ? err->code : WF_ERR_IO;
                break;
            }
            for (size_t i = 0; i + 1 < r->elements; i += 2) {
                if (nall == cap) {
                    /* `cap` grows only with `all`: a failed realloc leaves both as they were. */
                    size_t ncap = cap ? cap * 2 : 64;
                    scored *na = realloc(all, ncap * sizeof *all);
                    if (!na) {
                        rc = WF_ERR_NOMEM;
                        wf_error_set(err, rc, "out of memory");
                        break;
                    }
                    all = na;
                    cap = ncap;
                }
                all[nall].id = strdup(r->element[i]->str);
                all[nall].score = strtod(r->element[i + 1]->str, NULL);
                if (all[nall].id) nall++;
            }
            freeReplyObject(r);
        }
        wf__wfkeys_free(&wk);
    }
    wf_list_free(wfs, nwf);
    if (rc == WF_OK) {
        if (nall) qsort(all, nall, sizeof *all, cmp_newest);
        size_t first = o.offset < nall ? o.offset : nall;
        size_t n = nall - first < limit ? nall - first : limit;
        char **out = calloc(n + 1, sizeof(char *));
        if (!out) {
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++) {
                out[i] = all[first + i].id;
                all[first + i].id = NULL;
            }
            *ids = out;
            *count = n;
        }
    }
    for (size_t i = 0; i < nall; i++) free(all[i].id);
    free(all);
    return rc;
}
