/* presence.c - the worker process's entry in the hash P:workers: field = its consumer name, value
 * = JSON {"host", "pid", "started_at", "last_seen", "concurrency", "busy", "workflows": [...]}
 * (plus "http" when it serves metrics). Written on the cmd connection when it (re)connects and
 * about every 5 s after; removed when the worker exits cleanly. `wf workers` (client/stats.c)
 * reads it and shows an entry whose last_seen is older than 60 s as stale: a process killed
 * without draining leaves its entry behind, so about every 10 minutes each worker also deletes
 * entries not refreshed for an hour. Times are Redis time (ms since the epoch).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "wf_worker_internal.h"
#include "cluster.h"

#define PRESENCE_MS 5000
#define PRUNE_MS    (10 * 60 * 1000)
#define PRUNE_AGE   (60 * 60 * 1000)

/* The entry's JSON (malloc'd), or NULL when out of memory. */
static char *entry_json(wf_worker *w, int64_t now)
{
    wf__ops *ops = w->ops;
    json_t *wfs = json_array();
    for (int i = 0; wfs && i < w->ndefs; i++)
        json_array_append_new(wfs, json_string(w->defs[i]->name));
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:i, s:i, s:o?}", "host", ops->host, "pid",
                          (json_int_t)getpid(), "started_at", (json_int_t)ops->started_at,
                          "last_seen", (json_int_t)now, "concurrency", w->opt.concurrency, "busy",
                          w->jobs.busy, "workflows", wfs);
    if (o && ops->http_addr[0]) json_object_set_new(o, "http", json_string(ops->http_addr));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static void hset_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    wf__ops *ops = privdata;
    redisReply *r = reply;
    ops->presence_busy = 0;
    if (r && r->type == REDIS_REPLY_ERROR)
        wf__log(WF__LOG_WARN, "registering in P:workers failed: %s", r->str);
    else if (r)
        ops->presence_written = 1;
}

/* HGETALL P:workers answered: delete the entries not seen for PRUNE_AGE. */
static void prune_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__ops *ops = privdata;
    wf_worker *w = ops->w;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || w->stop.closing || !wf__conn_usable(&w->cmd)) return;
    int64_t now = wf__worker_redis_now(w);
    char *key = wf__key_global(w->url.prefix, "workers");
    for (size_t i = 0; key && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        json_t *o = json_loadb(v->str, v->len, 0, NULL);
        json_t *seen = json_object_get(o, "last_seen");
        int64_t at = json_is_integer(seen) ? (int64_t)json_integer_value(seen) : 0;
        json_decref(o);
        if (now - at < PRUNE_AGE) continue;
        wf__log(WF__LOG_INFO, "removing worker %.*s from P:workers: not seen for over an hour",
                (int)k->len, k->str);
        redisAsyncCommand(ac, NULL, NULL, "HDEL %s %b", key, k->str, k->len);
    }
    free(key);
}

void wf__presence_tick(wf_worker *w, int64_t now)
{
    wf__ops *ops = w->ops;
    /* Not while draining: the entry is about to be removed, and a late HSET must not bring it
     * back after the HDEL. */
    if (ops->presence_busy || now < ops->next_presence || !w->have_clock || w->stop.draining ||
        !wf__conn_usable(&w->cmd))
        return;
    ops->next_presence = now + PRESENCE_MS;
    int64_t redis_now = wf__worker_redis_now(w);
    if (!ops->started_at) ops->started_at = redis_now;
    char *key = wf__key_global(w->url.prefix, "workers");
    char *json = entry_json(w, redis_now);
    if (key && json &&
        wf__conn_command(&w->cmd, hset_reply, ops, "HSET %s %s %s", key, w->consumer, json) ==
            REDIS_OK)
        ops->presence_busy = 1;
    if (key && now >= ops->next_prune) {
        if (ops->next_prune) wf__conn_command(&w->cmd, prune_reply, ops, "HGETALL %s", key);
        ops->next_prune = now + PRUNE_MS; /* the first one only after PRUNE_MS */
    }
    free(json);
    free(key);
}

void wf__presence_remove(wf_worker *w)
{
    wf__ops *ops = w->ops;
    if (!ops->presence_written) return;
    wf_error err = {0};
    wf__rc *c = wf__rc_open(&w->url, &err);
    char *key = wf__key_global(w->url.prefix, "workers");
    redisReply *r = c && key ? wf__rc_command(c, "HDEL %s %s", key, w->consumer) : NULL;
    if (!r)
        wf__log(WF__LOG_WARN,
                "could not remove this worker from P:workers (%s); it shows as stale after 60 s",
                c ? wf__rc_errstr(c) : err.message);
    if (r) freeReplyObject(r);
    wf__rc_free(c);
    free(key);
    ops->presence_written = 0;
}
