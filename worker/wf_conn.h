/* wf_conn.h - the worker's async Redis connections: one wf__conn with its reconnect state
 * (conn.c), and sending on it, to one server or routed across a cluster (route.c, over the
 * shared async router redis/aroute.h).
 *
 * Design
 * ------
 * Only the loop thread touches the two connections of a worker:
 *
 *   block  XREADGROUP over the queues of every defined workflow, one at a time, only while
 *          executor slots are free: the high lanes, then the normal ones, then BLOCK 1000 over
 *          all (claim.c);
 *   cmd    everything else: claim.lua for what block read, complete/fail/release for results,
 *          heartbeat.lua, timers (wake.lua, reclaim.lua), XAUTOCLAIM, and the calls that
 *          handlers make through wf__ctx_call().
 */
#ifndef WF_CONN_H
#define WF_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "wf/wf.h"
#include "wf_internal.h"

struct wf__conn;
/* What a connection tells its owner, the way hiredis hands onConnect/onDisconnect: conn.c knows
 * nothing of the loop above it and calls only what it was given at wf__conn_init. */
typedef void (*wf__conn_event_fn)(struct wf_worker *w, struct wf__conn *conn);

/* One async connection with its reconnect state. */
typedef struct wf__conn {
    struct wf_worker *w;
    const char *name;           /* "block" or "cmd", for logs */
    wf__conn_event_fn on_ready; /* the handshake is done (again): commands may be sent */
    wf__conn_event_fn on_down;  /* a ready connection dropped (it reconnects by itself) */
    redisAsyncContext *ac;      /* NULL while down */
    int ready;                  /* AUTH/SELECT (and TIME for cmd) done */
    int backoff_ms;             /* next reconnect delay: 100 ms doubling to 5 s */
    struct event *retry_ev;
    struct event *reset_ev; /* cluster: wf__conn_reset from the loop */
    int closed;             /* closed for good: no reconnect */
    int failed;             /* the handshake failed on this connection attempt */
    int lost;               /* was ready, then dropped: log when it is back */
    /* redis+cluster:// (route.c): a context per node (cmd) or per workflow (block: its
     * blocking reads each need a connection of their own), made on first use */
    int cluster;
    struct wf__slotmap *map;  /* CLUSTER SLOTS, refreshed on every (re)connect */
    redisAsyncContext **lane; /* nlanes contexts, NULL until used */
    int *lane_node;           /* the node each lane is connected to */
    int nlanes;
    int any_node; /* for commands without a key */
    int tearing;  /* wf__conn_reset in progress */
    /* Sending: the shared async router (redis/aroute.h) over this connection's contexts. */
    struct wf__ar *ar;
    int64_t loading_since_mono; /* the readiness probe was first refused; 0: not refused */
    struct event *probe_ev;     /* one server: the readiness probe sent again while Redis loads */
} wf__conn;

/* conn.c: set up, start (or restart) a connection; close it for good; whether commands may be
 * sent on it now (connected, handshake done, not dying). */
int wf__conn_init(wf__conn *conn, struct wf_worker *w, const char *name, wf__conn_event_fn on_ready,
                  wf__conn_event_fn on_down);
void wf__conn_start(wf__conn *conn);
void wf__conn_close(wf__conn *conn);
void wf__conn_free(wf__conn *conn);
int wf__conn_usable(const wf__conn *conn);
/* cluster: the context of lane `lane`, connected to node `node` of the map on first use (AUTH
 * sent first). NULL when it cannot be made (then the connection is being reset). */
redisAsyncContext *wf__conn_lane(wf__conn *conn, int lane, int node);
/* Drops every context of the connection (their callbacks fire with NULL replies) and reconnects
 * after the backoff, as when a connection is lost. */
void wf__conn_reset(wf__conn *conn, const char *why);
/* Drops the connection `ac` belongs to (a node answered READONLY): it reconnects with backoff;
 * replies still pending fire first. Safe from inside a reply callback. */
void wf__conn_drop(wf__conn *conn, redisAsyncContext *ac, const char *why);
/* route.c: the router over `conn` (its contexts, and what it tells the connection). NULL when
 * out of memory. */
struct wf__ar *wf__conn_router(wf__conn *conn);

/* route.c: sending on a connection. Like redisAsyncCommand(Argv): `fn` fires exactly once with
 * the final reply (NULL: the connection was lost) unless the call returns REDIS_ERR. In a
 * cluster the command goes to the node owning its first key, MOVED and ASK are followed, and a
 * cmd-connection XREADGROUP over streams of several slots is split and its replies merged. */
int wf__conn_argv(wf__conn *conn, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                  const size_t *argvlen);
int wf__conn_command(wf__conn *conn, redisCallbackFn *fn, void *priv, const char *fmt, ...);
/* A blocking command on lane `lane` of the block connection (one lane per workflow in a
 * cluster; the one context otherwise). */
int wf__conn_lane_argv(wf__conn *conn, int lane, redisCallbackFn *fn, void *priv, int argc,
                       const char **argv, const size_t *argvlen);
/* Lua script `script` as FCALL, re-sent after loading the library where Redis lacks it
 * (aroute.h). Returns WF_OK or an error (then `fn` never fires). Arguments are copied. */
int wf__conn_script(wf__conn *conn, redisCallbackFn *fn, void *priv, wf__script script, int nkeys,
                    const char *const *keys, int nargs, const char *const *args,
                    const size_t *arglens);
/* Calls done(w) once every command sent on `conn` so far has been answered (in a cluster its
 * node connections answer in no common order; a PING on each, after them, marks the end). Not
 * called when a connection is lost first: the reconnect starts over. REDIS_ERR when out of
 * memory. */
int wf__conn_barrier(wf__conn *conn, void (*done)(wf_worker *w));

#endif
