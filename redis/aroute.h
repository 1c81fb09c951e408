/* aroute.h - wf__ar: the one async Redis router, shared by the worker's two connections
 * (worker/conn.c, worker/route.c) and the attached client (client/defer.c).
 *
 * Design
 * ------
 * A command is formatted once and keeps its bytes until its final reply, so that the reply
 * callback can send it again: after FUNCTION LOAD when Redis answers an FCALL with "Function not
 * found" (a node that lost or never had the library `wf`), to the
 * node a MOVED names (the slot map is updated) or, after ASKING, to the node an ASK names, and
 * after a wait when Redis refused it for now (LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN:
 * it did not run), backing off 20 ms doubling to 500 ms (wf__reply_retry_ms), for at most the
 * owner's budget. What each reply means is wf__reply_action's (core/reply_action.h), the policy
 * of the synchronous wf__rc too. The caller's callback sees only the final reply.
 *
 * Where a command goes: over a slot map (cluster) to the master owning its first key, or to the
 * one server; on a fixed lane when the caller names one (the worker's blocking reads, one
 * connection per workflow). The contexts are the owner's (ctx callback: the worker's wf__conn
 * reconnects them itself) or the router's own, one per node, made on first use (ctx NULL: the
 * attached client).
 *
 * The router knows nothing of its owner: what the owner must act on (a node lost or answering
 * READONLY, a lane whose slot moved, Redis refusing or accepting again) it hears through the
 * note callback it handed over, the way hiredis hands onConnect/onDisconnect. The owner decides
 * with `resend_lost` whether a command whose node was lost is sent again later (the attached
 * client: it reloads the slot map meanwhile) or answered NULL at once (the worker: its
 * connection reconnects, and the caller resends what is idempotent).
 *
 * Cross-slot reads: an XREADGROUP over streams of several slots cannot run as one command in a
 * cluster, so it is split by slot and the replies merged into one before the caller sees them
 * (aroute_xread.c). Non-blocking reads only: a blocking one goes on a lane of its own.
 *
 * Contract, as hiredis's: `fn` fires exactly once, on the loop thread, with the final reply or
 * NULL (lost, out of time, or closed), unless the send call returns an error. A reply is valid
 * only inside the callback.
 */
#ifndef WF_AROUTE_H
#define WF_AROUTE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster.h"

struct event_base;
typedef struct wf__ar wf__ar;

/* What the router tells its owner. */
typedef enum wf__ar_event {
    WF__AR_LOST,       /* `ac` gave no reply, or no context could be had for a node (ac NULL) */
    WF__AR_READONLY,   /* `ac` answered READONLY (`r`): a master demoted by a failover */
    WF__AR_LANE_MOVED, /* a command on fixed lane `lane` was redirected (`r`): re-map the lane */
    WF__AR_REFUSED,    /* Redis refused a command for now (`r`): sent again in wait_ms, for up to
                        * ms; told at most every 5 s */
    WF__AR_ACCEPTED,   /* Redis answers again after refusing commands for `ms` */
} wf__ar_event;

typedef struct wf__ar_note {
    wf__ar_event ev;
    redisAsyncContext *ac; /* the context concerned; NULL when none */
    const redisReply *r;   /* the reply that caused it; NULL when none */
    int lane;              /* LANE_MOVED: the lane */
    int wait_ms;           /* REFUSED: the wait before sending again */
    int64_t ms;            /* REFUSED: the budget; ACCEPTED: how long Redis refused */
} wf__ar_note;

typedef struct wf__ar_cfg {
    struct event_base *base; /* timers for the waits */
    wf__slotmap *map; /* cluster: the slot map (borrowed; MOVED updates it); NULL: one server */
    int budget_ms;    /* how long a refused (or, with resend_lost, lost) command is retried */
    int resend_lost;  /* 1: a lost node or READONLY is retried within the budget; 0: NULL */
    void *owner;      /* for the callbacks; the `data` of the context a NULL reply names */
    /* The context to send on: lane `lane` (>= 0), or the one for node `node` of the map (-1: no
     * key, or one server). NULL when none can be had now. NULL callback: the router's own node
     * contexts (needs a map and the URL given to wf__ar_new). */
    redisAsyncContext *(*ctx)(void *owner, int lane, int node);
    void (*note)(void *owner, const wf__ar_note *n); /* may be NULL */
} wf__ar_cfg;

/* A router (cfg copied; `url`, which must outlive it, gives the AUTH of the router's own node
 * contexts and may be NULL when cfg->ctx is set). NULL when out of memory. */
wf__ar *wf__ar_new(const wf__ar_cfg *cfg, const wf__url *url);
/* Closes it for good: commands waiting to be sent again get their NULL reply now, those in flight
 * theirs as their contexts are freed (the router's own now; the owner's by the owner). */
void wf__ar_close(wf__ar *ar);
/* wf__ar_close, then frees it. Call once the owner's contexts are freed. NULL is a no-op. */
void wf__ar_free(wf__ar *ar);

/* Like redisAsyncCommand(Argv): REDIS_OK, or REDIS_ERR when it could not be sent (fn never
 * fires). Arguments are copied. A cluster XREADGROUP over several slots is split and merged. */
int wf__ar_argv(wf__ar *ar, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                const size_t *argvlen);
int wf__ar_vcommand(wf__ar *ar, redisCallbackFn *fn, void *priv, const char *fmt, va_list ap);
/* On lane `lane` of the owner's contexts (cluster; one server: its one context). */
int wf__ar_lane_argv(wf__ar *ar, int lane, redisCallbackFn *fn, void *priv, int argc,
                     const char **argv, const size_t *argvlen);
/* Lua script `script` as FCALL wf_NAME, sent once more after loading the library where Redis
 * answers "Function not found". WF_OK, or WF_ERR_INVALID /
 * WF_ERR_NOMEM / WF_ERR_IO (then fn never fires). NULL args count as "". Copied. */
int wf__ar_script(wf__ar *ar, redisCallbackFn *fn, void *priv, wf__script script, int nkeys,
                  const char *const *keys, int nargs, const char *const *args,
                  const size_t *arglens);

/* Router's own node contexts: reloads the slot map with an asynchronous CLUSTER SLOTS, asked of
 * the first node that takes a connection (known nodes, then the URL's seeds). One at a time. */
void wf__ar_reload(wf__ar *ar);

#endif
