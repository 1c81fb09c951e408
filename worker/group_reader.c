/* group_reader.c - one consumer group read over several streams on the cmd connection, for the
 * streams the loop drains beside the queues: the child runs' ends (P:{W}:parents, invoke.c) and
 * the webhook outboxes (P:{W}:outbox, webhook.c).
 *
 * Both need the same three things, and both had their own copy of them:
 *   - the group on every stream (XGROUP CREATE ... MKSTREAM; again when a read says NOGROUP,
 *     e.g. after someone deleted a stream by hand),
 *   - a non-blocking XREADGROUP over every stream at once, at most one in flight, repeated at
 *     once when it brought entries (there may be more) and otherwise after an interval,
 *   - XAUTOCLAIM per stream of the entries a consumer left pending longer than an idle time (a
 *     worker that died or stalled): the at-least-once takeover.
 * The owner gets every batch of entries with the index of its stream and whether it came from a
 * takeover; what an entry means, and when it is acknowledged, stays the owner's business.
 *
 * Non-blocking reads on the shared cmd connection rather than a blocking read of their own:
 * these streams are quiet next to the queues, and a poll costs Redis one call, where a
 * connection per worker and stream kind would cost every Redis one client per worker. A poll
 * that finds nothing doubles the interval to the next, up to QUIET_MAX times the owner's
 * interval, so an idle worker does not keep Redis busy; entries, or a nudge from the owner
 * (this worker just wrote to one of the streams), bring it back to reading at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

#define QUIET_MAX 8 /* an idle reader polls every read_every_ms * 8 at the slowest */

typedef struct stream_state {
    wf__greader *g;
    int i;
    int claim_busy;     /* XAUTOCLAIM in flight */
    int64_t next_claim; /* mono ms */
} stream_state;

struct wf__greader {
    wf_worker *w;
    char *group;
    char *what; /* for log lines: "the child ends" */
    const char **streams;
    int n;
    int64_t read_every_ms;
    wf__greader_fn on_entries;
    void *ud;
    int read_busy;     /* the XREADGROUP over every stream is in flight */
    int64_t next_read; /* mono ms */
    int quiet;         /* the interval's multiplier: doubled by every empty read */
    stream_state *st;
};

wf__greader *wf__greader_new(wf_worker *w, const char *group, const char *what,
                             const char *const *streams, int n, int64_t read_every_ms,
                             wf__greader_fn on_entries, void *ud)
{
    wf__greader *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->w = w;
    g->n = n;
    g->read_every_ms = read_every_ms;
    g->on_entries = on_entries;
    g->ud = ud;
    g->group = strdup(group);
    g->what = strdup(what);
    g->streams = calloc(n > 0 ? (size_t)n : 1, sizeof *g->streams);
    g->st = calloc(n > 0 ? (size_t)n : 1, sizeof *g->st);
    if (!g->group || !g->what || !g->streams || !g->st) {
        wf__greader_free(g);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        g->streams[i] = streams[i];
        g->st[i].g = g;
        g->st[i].i = i;
    }
    return g;
}

void wf__greader_free(wf__greader *g)
{
    if (!g) return;
    free(g->group);
    free(g->what);
    free(g->streams);
    free(g->st);
    free(g);
}

static void group_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    const stream_state *s = privdata;
    const redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        wf__log(WF__LOG_ERROR, "creating the consumer group %s on %s failed: %s", s->g->group,
                s->g->streams[s->i], r->str);
}

void wf__greader_ensure_groups(wf__greader *g)
{
    for (int i = 0; i < g->n && wf__conn_usable(&g->w->cmd); i++)
        wf__conn_command(&g->w->cmd, group_reply, &g->st[i], "XGROUP CREATE %s %s 0 MKSTREAM",
                         g->streams[i], g->group);
}

static int stream_index(const wf__greader *g, const redisReply *name)
{
    if (name->type != REDIS_REPLY_STRING) return -1;
    for (int i = 0; i < g->n; i++)
        if (strlen(g->streams[i]) == name->len && memcmp(g->streams[i], name->str, name->len) == 0)
            return i;
    return -1;
}

static void read_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    wf__greader *g = privdata;
    const redisReply *r = reply;
    g->read_busy = 0;
    if (!r || g->w->stop.closing) return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0)
            wf__greader_ensure_groups(g);
        else
            wf__log(WF__LOG_ERROR, "reading %s failed: %s", g->what, r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY) return; /* nil: nothing new */
    for (size_t k = 0; k < r->elements; k++) {
        const redisReply *s = r->element[k];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            s->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        int i = stream_index(g, s->element[0]);
        if (i < 0) continue;
        if (s->element[1]->elements > 0) wf__greader_nudge(g); /* maybe more: read again */
        g->on_entries(g->ud, i, s->element[1], 0);
    }
}

void wf__greader_nudge(wf__greader *g)
{
    if (!g) return;
    g->next_read = 0;
    g->quiet = 0;
}

void wf__greader_read(wf__greader *g, int64_t now, int count)
{
    wf_worker *w = g->w;
    if (g->read_busy || now < g->next_read || g->n == 0 || count <= 0) return;
    if (!wf__conn_usable(&w->cmd)) return;
    const char **argv = calloc(7 + 2 * (size_t)g->n, sizeof *argv);
    if (!argv) return;
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%d", count);
    int a = 0;
    argv[a++] = "XREADGROUP";
    argv[a++] = "GROUP";
    argv[a++] = g->group;
    argv[a++] = w->consumer;
    argv[a++] = "COUNT";
    argv[a++] = cnt;
    argv[a++] = "STREAMS";
    for (int i = 0; i < g->n; i++) argv[a++] = g->streams[i];
    for (int i = 0; i < g->n; i++) argv[a++] = ">";
    if (wf__conn_argv(&w->cmd, read_reply, g, a, argv, NULL) == REDIS_OK) {
        g->read_busy = 1;
        /* Until an answer with entries (or a nudge) says otherwise, this read found nothing. */
        g->quiet = g->quiet == 0 ? 1 : (g->quiet < QUIET_MAX ? g->quiet * 2 : QUIET_MAX);
        g->next_read = now + g->read_every_ms * g->quiet;
    }
    free(argv);
}

static void claim_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    stream_state *s = privdata;
    wf__greader *g = s->g;
    const redisReply *r = reply;
    s->claim_busy = 0;
    if (!r || g->w->stop.closing) return;
    if (r->type == REDIS_REPLY_ERROR) {
        /* NOGROUP: the next read recreates the group; nothing can be pending in it. */
        if (strncmp(r->str, "NOGROUP", 7) != 0)
            wf__log(WF__LOG_ERROR, "XAUTOCLAIM on %s failed: %s", g->streams[s->i], r->str);
        return;
    }
    /* Reply: next cursor, the claimed entries, (Redis 7) ids of entries deleted meanwhile. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements > 0)
        g->on_entries(g->ud, s->i, r->element[1], 1);
}

void wf__greader_takeover(wf__greader *g, int64_t now, int64_t idle_ms, int count, int64_t every_ms)
{
    wf_worker *w = g->w;
    if (count <= 0) return;
    for (int i = 0; i < g->n && wf__conn_usable(&w->cmd); i++) {
        stream_state *s = &g->st[i];
        if (s->claim_busy || now < s->next_claim) continue;
        if (wf__conn_command(&w->cmd, claim_reply, s, "XAUTOCLAIM %s %s %s %lld 0-0 COUNT %d",
                             g->streams[i], g->group, w->consumer, (long long)idle_ms,
                             count) == REDIS_OK) {
            s->claim_busy = 1;
            s->next_claim = now + every_ms;
        }
    }
}
