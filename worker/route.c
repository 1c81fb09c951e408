/* route.c - sending commands on a worker connection (wf__conn), a thin layer over the shared async
 * router (redis/aroute.h), which formats each command once, routes it to the one server or to
 * the cluster node owning its slot (or to a workflow's lane of the block connection), loads the
 * library after "Function not found", follows MOVED and ASK, and sends again what Redis refused
 * for now for as long as a lease lasts (the worker's lease_ms): a Redis that loads its data set
 * for seconds costs the callers a delay, not an error.
 *
 * What is the worker's is here: which context a lane or node is (conn.c makes and reconnects
 * them), and what the router tells the connection. READONLY (a master demoted by a failover)
 * drops the connection: the caller hears "connection lost" and resends after the reconnect, which
 * asks Sentinel or the slot map for the new master. A lane whose slot moved resets the
 * connection onto the new map. The barrier (PINGs after everything sent) is here too.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "aroute.h"
#include "cluster.h"
#include "wf_worker_internal.h"

static redisAsyncContext *conn_ctx(void *owner, int lane, int node)
{
    wf__conn *conn = owner;
    if (!conn->cluster) return conn->ac;
    if (node < 0) node = conn->any_node;
    return wf__conn_lane(conn, lane >= 0 ? lane : node, node);
}

static void conn_note(void *owner, const wf__ar_note *n)
{
    wf__conn *conn = owner;
    int len = n->r ? (int)(n->r->len > 120 ? 120 : n->r->len) : 0;
    const char *text = n->r ? n->r->str : "";
    switch (n->ev) {
    case WF__AR_READONLY:
        /* This node is no master now: the caller heard "lost" and resends once the connection
         * is back, to the master Sentinel or the slot map names then. */
        wf__log(WF__LOG_WARN, "%s connection: Redis answered %.*s; reconnecting", conn->name, len,
                text);
        wf__conn_drop(conn, n->ac, "the server is a read-only replica now");
        break;
    case WF__AR_LANE_MOVED:
        /* A blocking lane is tied to its node: reconnect the connection to the new map. */
        wf__conn_reset(conn, "a workflow's slot moved");
        break;
    case WF__AR_REFUSED:
        wf__log(WF__LOG_WARN,
                "Redis refused a command for now (%.*s); sending it again in %d ms, for up to %lld "
                "ms (nothing was run)",
                len, text, n->wait_ms, (long long)n->ms);
        break;
    case WF__AR_ACCEPTED:
        wf__log(WF__LOG_INFO, "Redis accepts commands again after refusing them for %lld ms",
                (long long)n->ms);
        break;
    default: /* a lost context: conn.c hears it from hiredis and reconnects */
        break;
    }
}

struct wf__ar *wf__conn_router(wf__conn *conn)
{
    wf_worker *w = conn->w;
    wf__ar_cfg cfg = {
        .base = w->base,
        .map = conn->map,
        .budget_ms = w->opt.lease_ms > w->url.timeout_ms ? w->opt.lease_ms : w->url.timeout_ms,
        .resend_lost = 0,
        .owner = conn,
        .ctx = conn_ctx,
        .note = conn_note,
    };
    return wf__ar_new(&cfg, &w->url);
}

int wf__conn_argv(wf__conn *conn, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                  const size_t *argvlen)
{
    return wf__ar_argv(conn->ar, fn, priv, argc, argv, argvlen);
}

int wf__conn_lane_argv(wf__conn *conn, int lane, redisCallbackFn *fn, void *priv, int argc,
                       const char **argv, const size_t *argvlen)
{
    return wf__ar_lane_argv(conn->ar, lane, fn, priv, argc, argv, argvlen);
}

int wf__conn_command(wf__conn *conn, redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = wf__ar_vcommand(conn->ar, fn, priv, fmt, ap);
    va_end(ap);
    return rc;
}

int wf__conn_script(wf__conn *conn, redisCallbackFn *fn, void *priv, wf__script script, int nkeys,
                    const char *const *keys, int nargs, const char *const *args,
                    const size_t *arglens)
{
    return wf__ar_script(conn->ar, fn, priv, script, nkeys, keys, nargs, args, arglens);
}

typedef struct barrier {
    void (*done)(wf_worker *w);
    wf_worker *w;
    int pending; /* PINGs out, plus one held while they are being sent */
    int lost;
} barrier;

static void barrier_release(barrier *b)
{
    if (--b->pending > 0) return;
    if (!b->lost) b->done(b->w);
    free(b);
}

static void barrier_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    barrier *b = priv;
    if (!reply) b->lost = 1;
    barrier_release(b);
}

int wf__conn_barrier(wf__conn *conn, void (*done)(wf_worker *w))
{
    barrier *b = calloc(1, sizeof *b);
    if (!b) return REDIS_ERR;
    b->done = done;
    b->w = conn->w;
    b->pending = 1;
    /* Each node connection answers in order: its PING's reply follows every earlier reply. */
    if (conn->cluster) {
        for (int i = 0; i < conn->nlanes; i++)
            if (conn->lane[i] &&
                redisAsyncCommand(conn->lane[i], barrier_reply, b, "PING") == REDIS_OK)
                b->pending++;
    } else if (conn->ac && redisAsyncCommand(conn->ac, barrier_reply, b, "PING") == REDIS_OK) {
        b->pending++;
    }
    barrier_release(b);
    return REDIS_OK;
}
