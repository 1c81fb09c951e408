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

#include "sentinel.h"
#include "wf_worker_internal.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

int wf__conn_usable(const wf__conn *conn)
{
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
    if (conn->closed || conn->w->closing) return;
    struct timeval tv = {conn->backoff_ms / 1000, (conn->backoff_ms % 1000) * 1000};
    evtimer_add(conn->retry_ev, &tv);
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > BACKOFF_MAX_MS) conn->backoff_ms = BACKOFF_MAX_MS;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    wf__conn *conn = ac->data;
    if (status == REDIS_OK) {
        wf__log(WF__LOG_DEBUG, "%s connection to Redis established", conn->name);
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
    int was_ready = conn->ready;
    conn->ac = NULL;
    conn->ready = 0;
    if (conn->closed || conn->w->closing) return;
    if (status != REDIS_OK || was_ready)
        wf__log(WF__LOG_WARN, "%s connection to Redis lost%s%s; reconnecting in %d ms", conn->name,
                ac->errstr && ac->errstr[0] ? ": " : "", ac->errstr ? ac->errstr : "",
                conn->backoff_ms);
    if (was_ready) {
        conn->lost = 1;
        wf__loop_on_down(conn->w, conn);
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

/* The last handshake step answered (TIME on cmd, PING on block): the connection is ready. */
static void ready_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    wf__conn *conn = ac->data;
    redisReply *r = reply;
    if (!r || conn->failed) return;
    if (r->type == REDIS_REPLY_ERROR) {
        conn->failed = 1;
        wf__log(WF__LOG_ERROR, "%s connection: Redis answered %s", conn->name, r->str);
        redisAsyncDisconnect(ac);
        return;
    }
    wf_worker *w = conn->w;
    if (conn == &w->cmd && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        int64_t ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                     strtoll(r->element[1]->str, NULL, 10) / 1000;
        w->clock_offset = ms - wf__mono_ms();
        w->have_clock = 1;
    }
    conn->ready = 1;
    conn->backoff_ms = BACKOFF_MIN_MS;
    if (conn->lost) wf__log(WF__LOG_INFO, "%s connection to Redis restored", conn->name);
    conn->lost = 0;
    wf__loop_on_ready(w, conn);
}

int wf__conn_init(wf__conn *conn, struct wf_worker *w, const char *name)
{
    memset(conn, 0, sizeof *conn);
    conn->w = w;
    conn->name = name;
    conn->backoff_ms = BACKOFF_MIN_MS;
    conn->retry_ev = evtimer_new(w->base, retry_cb, conn);
    return conn->retry_ev ? WF_OK : WF_ERR_NOMEM;
}

void wf__conn_start(wf__conn *conn)
{
    wf_worker *w = conn->w;
    if (conn->ac || conn->closed || w->closing) return;
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
    if (w->url.password) {
        if (w->url.user)
            redisAsyncCommand(ac, handshake_reply, "AUTH", "AUTH %s %s", w->url.user,
                              w->url.password);
        else
            redisAsyncCommand(ac, handshake_reply, "AUTH", "AUTH %s", w->url.password);
    }
    if (w->url.db) redisAsyncCommand(ac, handshake_reply, "SELECT", "SELECT %d", w->url.db);
    if (conn == &w->cmd)
        redisAsyncCommand(ac, ready_reply, NULL, "TIME");
    else
        redisAsyncCommand(ac, ready_reply, NULL, "PING");
}

void wf__conn_close(wf__conn *conn)
{
    conn->closed = 1;
    if (conn->retry_ev) evtimer_del(conn->retry_ev);
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
    conn->retry_ev = NULL;
}
