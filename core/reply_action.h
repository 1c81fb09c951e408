/* reply_action.h - the one place that decides what a Redis error reply means for the command that
 * got it: done (a result or a final error), follow a redirect, load the library, wait and send the
 * same command again, or reconnect first. Every caller (the worker's async router, the attached
 * client's router, the synchronous wf__rc, the worker's end operations and executor requests)
 * asks wf__reply_action() instead of matching error prefixes of its own.
 *
 * What "retry" promises: Redis did not run the command (LOADING, BUSY, MASTERDOWN, TRYAGAIN,
 * CLUSTERDOWN are all refused before execution), so sending it again can never run it twice.
 * READONLY (a master demoted by a failover) is refused before execution too, but sending again to
 * the same node cannot succeed: the caller reconnects first (Sentinel or the slot map name the new
 * master). A lost connection is not a reply and is the caller's to handle (the command may or may
 * not have run: only idempotent commands are re-sent, see docs/reliability.md).
 */
#ifndef WF_REPLY_ACTION_H
#define WF_REPLY_ACTION_H

#include <stddef.h>

#include <hiredis/hiredis.h>

typedef enum wf__reply_act {
    WF__ACT_DONE = 0,  /* not an error, or an error that is the command's answer: deliver it */
    WF__ACT_MOVED,     /* cluster: the slot lives elsewhere; update the map, send there */
    WF__ACT_ASK,       /* cluster: slot being migrated; ASKING + the command to the node named */
    WF__ACT_LOAD,      /* FCALL of a function this server lacks: load the library, send again */
    WF__ACT_RETRY,     /* refused for now (LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN) */
    WF__ACT_RECONNECT, /* READONLY: this node is no master now; reconnect, then send again */
} wf__reply_act;

/* The action for an error reply's text (`msg`, `len` bytes, as hiredis gives r->str/r->len).
 * Matches whole error codes: "BUSYGROUP" or "BUSYKEY" is not BUSY. */
wf__reply_act wf__reply_action_of(const char *msg, size_t len);

/* The same for a reply: WF__ACT_DONE for NULL (a lost connection is not decided here) and for
 * every reply that is not an error. */
wf__reply_act wf__reply_action(const redisReply *r);

/* Name of an action, for logs ("retry", "moved", ...). */
const char *wf__reply_act_name(wf__reply_act a);

/* Backoff before retry number `attempt` (0-based) of a refused command: 20 ms doubling, at most
 * 500 ms. A Redis that loads a large data set for seconds is asked about twice a second. */
int wf__reply_retry_ms(int attempt);

#endif
