/* conn.c - the worker's two async Redis connections (block and cmd): connecting, the handshake
 * (AUTH, SELECT, and TIME on cmd for the clock offset), and reconnecting with backoff (100 ms
 * doubling to 5 s) whenever one drops, until the worker closes them for good.
 *
 * hiredis 0.14 contract relied on here: a failed connect calls the connect callback with
 * REDIS_ERR and frees the context; a dropped connection calls every pending reply callback with
 * a NULL reply, then the disconnect callback, then frees the context. Either way conn->ac is
 * cleared in the callback and never freed by us.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>

#include "aroute.h"
#include "cluster.h"
#include "reply_action.h"
#include "wf_worker_internal.h"

#define BACKOFF_MIN_MS         100
#define BACKOFF_MAX_MS         5000
#define BACKOFF_MAX_CLUSTER_MS 1000
#define PROBE_MS               100 /* readiness PING again while Redis loads its data set */

int wf__conn_usable(const wf__conn *conn)
{
    if (conn->cluster) return conn->ready && !conn->closed && !conn->tearing;
    const redisAsyncContext *ac = conn->ac;
    return ac && conn->ready && !conn->closed && ac->err == 0 &&
           !(ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf__conn_start(arg);
}

static void schedule_retry(wf__conn *conn)
{
    if (conn->closed || conn->w->stop.closing) return;
    struct timeval tv = {conn->backoff_ms / 1000, (conn->backoff_ms % 1000) * 1000};
    evtimer_add(conn->retry_ev, &tv);
    conn->backoff_ms *= 2;
    /* A cluster fails over in a few seconds: ask again at least every second meanwhile. */
    int max = conn->cluster ? BACKOFF_MAX_CLUSTER_MS : BACKOFF_MAX_MS;
    if (conn->backoff_ms > max) conn->backoff_ms = max;
}

/* cluster: forgets the lane of `ac` (hiredis frees it). 0 when it was no lane of ours any more
 * (dropped by wf__conn_reset, whose callbacks arrive late). */
static int forget_lane(wf__conn *conn, const redisAsyncContext *ac)
{
    for (int i = 0; i < conn->nlanes; i++)
        if (conn->lane[i] == ac) {
            conn->lane[i] = NULL;
            return 1;
        }
    return 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    wf__conn *conn = ac->data;
    if (status == REDIS_OK) {
        wf__log(WF__LOG_DEBUG, "%s connection to Redis established", conn->name);
        return;
    }
    if (conn->cluster) {
        if (forget_lane(conn, ac)) wf__conn_reset(conn, ac->errstr);
        return;
    }
    wf__log(WF__LOG_WARN, "cannot connect (%s connection) to Redis at %s: %s; retrying in %d ms",
            conn->name, conn->w->url.redacted, ac->errstr, conn->backoff_ms);
    conn->ac = NULL;
    conn->ready = 0;
    schedule_retry(conn);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    wf__conn *conn = ac->data;
    if (conn->cluster) {
        if (forget_lane(conn, ac) && !conn->tearing)
            wf__conn_reset(conn, ac->errstr && ac->errstr[0] ? ac->errstr : "closed");
        return;
    }
    int was_ready = conn->ready;
    conn->ac = NULL;
    conn->ready = 0;
    if (conn->closed || conn->w->stop.closing) return;
    if (status != REDIS_OK || was_ready)
        wf__log(WF__LOG_WARN, "%s connection to Redis lost%s%s; reconnecting in %d ms", conn->name,
                ac->errstr && ac->errstr[0] ? ": " : "", ac->errstr ? ac->errstr : "",
                conn->backoff_ms);
    if (was_ready) {
        conn->lost = 1;
        conn->on_down(conn->w, conn);
    }
    schedule_retry(conn);
}

/* A handshake step answered (AUTH or SELECT). */
static void handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__conn *conn = ac->data;
    redisReply *r = reply;
    const char *what = privdata;
    if (!r || r->type != REDIS_REPLY_ERROR || conn->failed) return;
    conn->failed = 1;
    wf__log(WF__LOG_ERROR, "Redis at %s refused %s: %s (check the URL's credentials and db)",
            conn->w->url.redacted, what, r->str);
    redisAsyncDisconnect(ac);
}

static void mark_ready(wf__conn *conn);
static void ready_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* TIME on cmd: the clock offset. Redis answers TIME even while it loads its data set, so this
 * says nothing of readiness: the PING after it does. */
static void clock_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    wf__conn *conn = ac->data;
    redisReply *r = reply;
    if (!r || conn->failed || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    int64_t ms =
        strtoll(r->element[0]->str, NULL, 10) * 1000 + strtoll(r->element[1]->str, NULL, 10) / 1000;
    conn->w->clock_offset = ms - wf__mono_ms();
    conn->w->have_clock = 1;
}

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf__conn *conn = arg;
    if (conn->ac && !conn->closed && !conn->failed)
        redisAsyncCommand(conn->ac, ready_reply, NULL, "PING");
}

/* The readiness probe answered: a PING, which Redis refuses with LOADING until its data set is
 * loaded (TIME, AUTH and SELECT it answers meanwhile). Until then nothing is sent: no set-up, no
 * end operation, no claim (a refused one would have to be told from a lost one). */
static void ready_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    wf__conn *conn = ac->data;
    redisReply *r = reply;
    if (!r || conn->failed) return;
    if (r->type == REDIS_REPLY_ERROR && wf__reply_action(r) == WF__ACT_RETRY) {
        int64_t now = wf__mono_ms();
        if (conn->loading_since_mono == 0) {
            conn->loading_since_mono = now;
            wf__log(WF__LOG_WARN, "%s connection: Redis answered %.*s; waiting until it is ready",
                    conn->name, (int)(r->len > 120 ? 120 : r->len), r->str);
        }
        struct timeval tv = {0, PROBE_MS * 1000};
        evtimer_add(conn->probe_ev, &tv);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        conn->failed = 1;
        wf__log(WF__LOG_ERROR, "%s connection: Redis answered %s", conn->name, r->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (conn->loading_since_mono) {
        wf__log(WF__LOG_INFO, "%s connection: Redis is ready after %lld ms", conn->name,
                (long long)(wf__mono_ms() - conn->loading_since_mono));
        conn->loading_since_mono = 0;
    }
    mark_ready(conn);
}

static void mark_ready(wf__conn *conn)
{
    wf_worker *w = conn->w;
    conn->ready = 1;
    conn->backoff_ms = BACKOFF_MIN_MS;
    if (conn->lost) wf__log(WF__LOG_INFO, "%s connection to Redis restored", conn->name);
    conn->lost = 0;
    conn->on_ready(w, conn);
}

static void reset_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf__conn_reset(arg, "a cluster node is unreachable");
}

int wf__conn_init(wf__conn *conn, struct wf_worker *w, const char *name, wf__conn_event_fn on_ready,
                  wf__conn_event_fn on_down)
{
    memset(conn, 0, sizeof *conn);
    conn->w = w;
    conn->name = name;
    conn->on_ready = on_ready;
    conn->on_down = on_down;
    conn->backoff_ms = BACKOFF_MIN_MS;
    conn->retry_ev = evtimer_new(w->base, retry_cb, conn);
    conn->reset_ev = evtimer_new(w->base, reset_cb, conn);
    conn->probe_ev = evtimer_new(w->base, probe_cb, conn);
    if (!conn->retry_ev || !conn->reset_ev || !conn->probe_ev) return WF_ERR_NOMEM;
    if (w->url.seeds) {
        conn->cluster = 1; /* lanes are made at the first start, when the workflows are known */
        conn->map = calloc(1, sizeof *conn->map);
        if (!conn->map) return WF_ERR_NOMEM;
    }
    conn->ar = wf__conn_router(conn);
    return conn->ar ? WF_OK : WF_ERR_NOMEM;
}

static void auth(wf__conn *conn, redisAsyncContext *ac)
{
    wf__redis_auth_async(ac, &conn->w->url, handshake_reply, "AUTH");
}

/* A new async context to host:port on the loop, callbacks set. NULL (logged) on failure. */
static redisAsyncContext *open_ac(wf__conn *conn, const char *host, int port)
{
    wf_worker *w = conn->w;
    redisAsyncContext *ac =
        w->url.unix_path ? redisAsyncConnectUnix(w->url.unix_path) : redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        wf__log(WF__LOG_WARN,
                "cannot connect (%s connection) to Redis at %s:%d: %s; retrying in %d ms",
                conn->name, host, port, ac ? ac->errstr : "out of memory", conn->backoff_ms);
        if (ac) redisAsyncFree(ac);
        return NULL;
    }
    ac->data = conn;
    if (redisLibeventAttach(ac, w->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    auth(conn, ac);
    return ac;
}

redisAsyncContext *wf__conn_lane(wf__conn *conn, int lane, int node)
{
    if (!conn->cluster || conn->closed || conn->tearing || lane < 0 || lane >= conn->nlanes ||
        node < 0 || node >= conn->map->nnodes)
        return NULL;
    if (conn->lane[lane]) return conn->lane[lane];
    redisAsyncContext *ac = open_ac(conn, conn->map->node[node].host, conn->map->node[node].port);
    if (!ac) {
        /* Not from inside the caller's send: reset from the loop, at once. */
        struct timeval now = {0, 0};
        evtimer_add(conn->reset_ev, &now);
        return NULL;
    }
    conn->lane[lane] = ac;
    conn->lane_node[lane] = node;
    return ac;
}

void wf__conn_reset(wf__conn *conn, const char *why)
{
    if (conn->tearing || !conn->cluster) return;
    wf_worker *w = conn->w;
    int was_ready = conn->ready;
    conn->tearing = 1;
    conn->ready = 0;
    for (int i = 0; i < conn->nlanes; i++) {
        redisAsyncContext *ac = conn->lane[i];
        conn->lane[i] = NULL;
        if (ac) redisAsyncFree(ac); /* pending callbacks fire with NULL replies */
    }
    conn->tearing = 0;
    if (conn->closed || w->stop.closing) return;
    if (was_ready) {
        wf__log(WF__LOG_WARN, "%s connection to Redis Cluster lost: %s; reconnecting in %d ms",
                conn->name, why, conn->backoff_ms);
        conn->lost = 1;
        conn->on_down(w, conn);
    }
    schedule_retry(conn);
}

/* Cluster: learn the slot map, then the cmd connection is ready once its first node answers
 * TIME; the block connection's lanes connect as claim.c first reads on them. */
static void start_cluster(wf__conn *conn)
{
    wf_worker *w = conn->w;
    if (!conn->lane) {
        int n = conn == &w->block ? w->ndefs : WF__NODES_MAX;
        conn->lane = calloc((size_t)n + 1, sizeof *conn->lane);
        conn->lane_node = calloc((size_t)n + 1, sizeof *conn->lane_node);
        if (!conn->lane || !conn->lane_node) {
            wf__log(WF__LOG_ERROR, "%s connection: out of memory", conn->name);
            schedule_retry(conn);
            return;
        }
        conn->nlanes = n;
    }
    for (int i = 0; i < conn->nlanes; i++)
        if (conn->lane[i]) return; /* already up */
    struct wf__slotmap *m = malloc(sizeof *m);
    wf_error e = {0};
    if (!m || wf__slotmap_fetch(&w->url, conn->map->nnodes ? conn->map : NULL, m, &e) != WF_OK) {
        wf__log(WF__LOG_WARN, "%s connection: %s; retrying in %d ms", conn->name,
                m ? e.message : "out of memory", conn->backoff_ms);
        free(m);
        schedule_retry(conn);
        return;
    }
    memcpy(conn->map, m, sizeof *m);
    free(m);
    conn->any_node = 0;
    for (int s = 0; s < WF__SLOTS; s++)
        if (conn->map->owner[s] >= 0) {
            conn->any_node = conn->map->owner[s];
            break;
        }
    conn->ready = 0;
    conn->failed = 0;
    if (conn == &w->block) {
        mark_ready(conn);
        return;
    }
    redisAsyncContext *ac = wf__conn_lane(conn, conn->any_node, conn->any_node);
    if (ac) {
        redisAsyncCommand(ac, clock_reply, NULL, "TIME");
        redisAsyncCommand(ac, ready_reply, NULL, "PING");
    }
}

void wf__conn_start(wf__conn *conn)
{
    wf_worker *w = conn->w;
    if (conn->ac || conn->closed || w->stop.closing) return;
    if (conn->cluster) {
        start_cluster(conn);
        return;
    }
    conn->ready = 0;
    conn->failed = 0;
    /* The address to use now: a sentinel URL asks the sentinels on every (re)connect. */
    char host[256];
    int port = 0;
    wf_error terr = {0};
    if (!w->url.unix_path && wf__url_target(&w->url, host, sizeof host, &port, &terr) != WF_OK) {
        wf__log(WF__LOG_WARN, "%s connection: %s; retrying in %d ms", conn->name, terr.message,
                conn->backoff_ms);
        schedule_retry(conn);
        return;
    }
    redisAsyncContext *ac =
        w->url.unix_path ? redisAsyncConnectUnix(w->url.unix_path) : redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        wf__log(WF__LOG_WARN,
                "cannot connect (%s connection) to Redis at %s: %s; retrying in %d ms", conn->name,
                w->url.redacted, ac ? ac->errstr : "out of memory", conn->backoff_ms);
        if (ac) redisAsyncFree(ac);
        schedule_retry(conn);
        return;
    }
    ac->data = conn;
    if (redisLibeventAttach(ac, w->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(conn);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    conn->ac = ac;
    auth(conn, ac);
    if (w->url.db) redisAsyncCommand(ac, handshake_reply, "SELECT", "SELECT %d", w->url.db);
    if (conn == &w->cmd) redisAsyncCommand(ac, clock_reply, NULL, "TIME");
    redisAsyncCommand(ac, ready_reply, NULL, "PING");
}

void wf__conn_drop(wf__conn *conn, redisAsyncContext *ac, const char *why)
{
    if (conn->closed) return;
    if (conn->cluster) {
        /* From the loop, not from inside a reply callback of one of the lanes it frees. */
        (void)why;
        struct timeval now = {0, 0};
        evtimer_add(conn->reset_ev, &now);
    } else if (ac && ac == conn->ac && !(ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))) {
        redisAsyncDisconnect(ac); /* on_disconnect reconnects (Sentinel names the master) */
    }
}

void wf__conn_close(wf__conn *conn)
{
    conn->closed = 1;
    if (conn->retry_ev) evtimer_del(conn->retry_ev);
    if (conn->reset_ev) evtimer_del(conn->reset_ev);
    if (conn->probe_ev) evtimer_del(conn->probe_ev);
    wf__ar_close(conn->ar); /* what waits to be sent again is answered NULL now */
    if (conn->cluster) {
        conn->ready = 0;
        conn->tearing = 1;
        for (int i = 0; i < conn->nlanes; i++) {
            redisAsyncContext *ac = conn->lane[i];
            conn->lane[i] = NULL;
            if (ac) redisAsyncFree(ac);
        }
        conn->tearing = 0;
    }
    redisAsyncContext *ac = conn->ac;
    if (!ac) return;
    conn->ac = NULL;
    conn->ready = 0;
    redisAsyncFree(ac); /* pending callbacks fire with NULL replies (deferred inside one) */
}

void wf__conn_free(wf__conn *conn)
{
    wf__conn_close(conn);
    if (conn->retry_ev) event_free(conn->retry_ev);
    if (conn->reset_ev) event_free(conn->reset_ev);
    if (conn->probe_ev) event_free(conn->probe_ev);
    conn->retry_ev = conn->reset_ev = conn->probe_ev = NULL;
    wf__ar_free(conn->ar); /* after the contexts: their NULL replies went through it */
    conn->ar = NULL;
    free(conn->map);
    free(conn->lane);
    free(conn->lane_node);
    conn->map = NULL;
    conn->lane = NULL;
    conn->lane_node = NULL;
}
