/* wf_loop.h - the parts of the worker's loop, each a file of its own: reading and claiming runs
 * (claim.c), the 100 ms tick (timers.c) and what it drives (schedules, flow limits, the ends of
 * child runs), and the loop itself (loop.c). Everything here runs on the loop thread.
 */
#ifndef WF_LOOP_H
#define WF_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "wf/wf.h"
#include "wf_job.h"

/* claim.c: issue the next XREADGROUP when possible (priority lanes high, normal, low: see
 * claim.c), over the workflows not paused; XAUTOCLAIM of every lane of `def`, of entries idle
 * `min_idle_ms` or more (the tick: the lease time; a resumed workflow: 0). */
void wf__claim_arm(wf_worker *w);
void wf__claim_autoclaim(wf_worker *w, wf__wdef *def, int64_t min_idle_ms);
/* setup.c: on every (re)connect of cmd: schema key, consumer groups, P:workflows registration. */
void wf__claim_setup(wf_worker *w);
/* claim_entry.c: the claim.lua call being built from the entries of one read: its keys and
 * arguments (see lua/claim.lua's header). */
typedef struct wf__claim_call {
    const char **keys;
    const char **good; /* triples (entry, run id, lean input) */
    size_t *good_len;
    const char **bad; /* pairs (entry, reason) */
    char *kinds;      /* 'r' / 'p' per good entry */
    char **owned;     /* run keys, ids, reasons we allocated */
    int ngood, nbad, nowned;
} wf__claim_call;

/* Adds entry `e` of an XREADGROUP / XAUTOCLAIM answer to `cc`: a run (with a hash: field `r`;
 * lean: fields `c` and `p`, an input of one msgpack value or none) or an entry that is not one,
 * with the reason (logged); nothing for a nil entry (deleted while pending) or when out of memory.
 * Anyone who can write the stream can forge `e`: fuzz/fuzz_claim_entry.c. */
void wf__claim_add(wf_worker *w, wf__wdef *def, wf__claim_call *cc, const redisReply *e);
/* claim_lost.c: hands back (release.lua) every run a claim whose reply was lost made ours, once cmd
 * is ready: without it such a run would wait for its lease to expire and be reclaimed as if this
 * worker had died. Called on every reconnect; frees the list at close (w->stop.closing). */
void wf__claim_recover(wf_worker *w);
/* Notes run `id` of `def` as possibly made ours by a claim whose reply was lost (claim_lost.c). */
void wf__claim_lost_add(wf_worker *w, wf__wdef *def, const char *id);
/* The registration value kept in P:workflows for `def` (small JSON). */
void wf__wdef_json(const wf__wdef *def, char *buf, size_t n);

/* timers.c: the 100 ms tick: heartbeats, timeouts, wake, reclaim, autoclaim, drain. */
void wf__timers_tick(wf_worker *w);
/* This worker just made a run of `def` wait for a timer (a retry, a sleep, an event's timeout):
 * read the delayed set at the next tick rather than at the earliest time it saw. */
void wf__timers_nudge(wf__wdef *def);
/* scheduler.c: fires `def`'s due schedules (lua/fire.lua); called from the tick. */
void wf__scheduler_tick(wf_worker *w, wf__wdef *def);
/* flow.c: lets `def`'s runs held back by a flow limit go when there is room (lua/admit.lua);
 * while `def` is paused, checks instead whether the pause was lifted. */
void wf__flow_tick(wf_worker *w, wf__wdef *def);
/* This worker ended a run of `def` (room under a limit may have freed): look at the held runs at
 * the next tick rather than after the idle interval. */
void wf__flow_nudge(wf__wdef *def);

/* invoke.c, loop side: consumer groups on cmd ready; the tick reads P:{W}:parents of every
 * workflow, takes over entries a dead worker left pending, and delivers each to its parent
 * (deliver.lua). */
void wf__children_on_ready(wf_worker *w);
void wf__children_tick(wf_worker *w, int64_t now);

/* loop.c: create the loop's events; run the loop until drained (pool, connections, tick);
 * drain progress check, which leaves the loop when done. */
int wf__loop_init(wf_worker *w, wf_error *err);
int wf__loop_run(wf_worker *w, wf_error *err);
void wf__worker_check_drain(wf_worker *w);

#endif
