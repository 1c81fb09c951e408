/* history.c - what happened, as the scripts recorded it when it happened: a workflow's runs
 * started, completed and failed per minute (wf_workflow_history, from the hashes
 * P:{W}:hist:KIND:HOUR that lua/lib.lua's hist_add keeps for a day). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

#define MINUTE_MS  60000LL
#define HOUR_MS    3600000LL
#define MAX_POINTS 10080 /* a week of minutes */

void wf_history_free(wf_history_point *points)
{
    free(points);
}

/* The counters of one kind for one hour (an HGETALL reply: minute -> count) into `pts`, which
 * start at minute `since`. */
static void add_hour(wf_history_point *pts, size_t n, int64_t since, long long hour, int kind,
                     const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        long long minute = strtoll(f->str, NULL, 10);
        if (minute < 0 || minute > 59) continue;
        int64_t at = (int64_t)hour * HOUR_MS + minute * MINUTE_MS;
        if (at < since || (at - since) / MINUTE_MS >= (int64_t)n) continue;
        wf_history_point *p = &pts[(at - since) / MINUTE_MS];
        long long c = strtoll(v->str, NULL, 10);
        if (kind == 0) p->started += c;
        if (kind == 1) p->completed += c;
        if (kind == 2) p->failed += c;
    }
}

/* The range [*since, *until) in whole minutes, with the defaults of wf_workflow_history(). */
static int history_range(wf_client *client, int64_t *since, int64_t *until, wf_error *err)
{
    if (*since < 0 || *until < 0)
        return wf_error_set(err, WF_ERR_INVALID, "history: times must not be negative");
    if (*until == 0) {
        int64_t now = 0;
        int rc = wf__client_time(client, &now, err);
        if (rc != WF_OK) return rc;
        *until = now - now % MINUTE_MS + MINUTE_MS;
    }
    if (*since == 0) *since = *until - 60 * MINUTE_MS;
    *since -= *since % MINUTE_MS;
    if (*since >= *until)
        return wf_error_set(err, WF_ERR_INVALID,
                            "history: since (%lld) must be before until (%lld)", (long long)*since,
                            (long long)*until);
    if ((*until - *since + MINUTE_MS - 1) / MINUTE_MS > MAX_POINTS)
        return wf_error_set(err, WF_ERR_INVALID, "history: at most %d minutes at once", MAX_POINTS);
    return WF_OK;
}

int wf_workflow_history(wf_client *client, const char *workflow, int64_t since_ms, int64_t until_ms,
                        wf_history_point **points, size_t *n, wf_error *err)
{
    if (points) *points = NULL;
    if (n) *n = 0;
    if (!client || !points || !n) return wf_error_set(err, WF_ERR_INVALID, "NULL argument");
    if (!workflow || !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'",
                            workflow ? workflow : "(null)");
    int rc = history_range(client, &since_ms, &until_ms, err);
    if (rc != WF_OK) return rc;
    size_t npts = (size_t)((until_ms - since_ms + MINUTE_MS - 1) / MINUTE_MS);
    long long h0 = since_ms / HOUR_MS, h1 = (until_ms - 1) / HOUR_MS;
    size_t ncmd = 3 * (size_t)(h1 - h0 + 1);
    static const char *const kinds[] = {"s", "c", "f"};
    wf_history_point *pts = calloc(npts, sizeof *pts);
    char **keys = calloc(ncmd, sizeof *keys);
    const char **argv = calloc(3 * ncmd, sizeof *argv);
    const char *const **cmds = calloc(ncmd, sizeof *cmds);
    redisReply **r = calloc(ncmd, sizeof *r);
    rc = pts && keys && argv && cmds && r ? WF_OK : WF_ERR_NOMEM;
    for (size_t i = 0; rc == WF_OK && i < ncmd; i++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, "hist:%s:%lld", kinds[i % 3], h0 + (long long)(i / 3));
        if (!(keys[i] = wf__key_wf(client->url.prefix, workflow, suffix))) rc = WF_ERR_NOMEM;
        argv[3 * i] = "HGETALL";
        argv[3 * i + 1] = keys[i];
        argv[3 * i + 2] = NULL;
        cmds[i] = &argv[3 * i];
    }
    if (rc == WF_ERR_NOMEM) wf_error_set(err, rc, "out of memory");
    if (rc == WF_OK) rc = wf__client_pipeline(client, ncmd, cmds, r, err);
    for (size_t i = 0; rc == WF_OK && i < ncmd; i++)
        if (r[i] && r[i]->type == REDIS_REPLY_ERROR)
            rc = wf__script_error(r[i]->str, r[i]->len, err);
    for (size_t i = 0; rc == WF_OK && i < npts; i++)
        pts[i].minute_ms = since_ms + (int64_t)i * MINUTE_MS;
    for (size_t i = 0; rc == WF_OK && i < ncmd; i++)
        add_hour(pts, npts, since_ms, h0 + (long long)(i / 3), (int)(i % 3), r[i]);
    for (size_t i = 0; r && keys && i < ncmd; i++) {
        freeReplyObject(r[i]);
        free(keys[i]);
    }
    free(r);
    free(cmds);
    free(argv);
    free(keys);
    if (rc != WF_OK) {
        free(pts);
        return rc;
    }
    *points = pts;
    *n = npts;
    return WF_OK;
}
