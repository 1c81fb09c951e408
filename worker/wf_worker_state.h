/* wf_worker_state.h - the worker itself: struct wf_worker, the workflows it runs (wf__wdef) and
 * the defaults of its options.
 *
 * Design
 * ------
 * A wf_worker is one libevent loop (the loop thread: whoever calls wf_worker_run) plus a pool of
 * `concurrency` executor threads (wf_executor.h). Only the loop thread touches the two async
 * Redis connections, block and cmd (wf_conn.h). A claimed run becomes a job the loop holds until
 * its attempt ends (wf_job.h). wf_worker_stop writes to a self-pipe, which is async-signal-safe.
 */
#ifndef WF_WORKER_STATE_H
#define WF_WORKER_STATE_H

#include <signal.h>
#include <stdint.h>

#include <event2/event.h>

#include "wf/wf.h"
#include "wf_conn.h"
#include "wf_executor.h"
#include "wf_greader.h"
#include "wf_internal.h"
#include "wf_job.h"

/* The workflow's keys beyond the fixed fourteen, named once at definition (worker.c) rather than
 * on every claim, end or tick. */
typedef enum wf__aux_key {
    WF__AUX_LIMITS,  /* P:{W}:limits  flow control (flow.c, claim.c) */
    WF__AUX_FLOW,    /* P:{W}:flow */
    WF__AUX_HELD,    /* P:{W}:held */
    WF__AUX_RATE,    /* P:{W}:rate */
    WF__AUX_OUTBOX,  /* P:{W}:outbox  webhooks (finish.c) */
    WF__AUX_PARENTS, /* P:{W}:parents child runs' ends (finish.c, timers.c, invoke.c) */
    WF__AUX_N
} wf__aux_key;

/* One workflow as this worker runs it. */
struct wf__wdef {
    char *name;
    wf_handler_fn handler;
    wf_workflow_options opt; /* defaults applied */
    wf__wfkeys keys;
    char *aux[WF__AUX_N];                        /* indexed by wf__aux_key; owned */
    int wake_busy, reclaim_busy, heartbeat_busy; /* one of each in flight */
    int autoclaim_busy;                          /* XAUTOCLAIMs in flight (one per lane) */
    int64_t next_heartbeat, next_autoclaim;      /* mono ms */
    int64_t next_prune; /* mono ms: timers.c drops expired runs from the final state indexes */
    int sched_busy;     /* scheduler.c: a scan of this workflow's due schedules is in flight */
    int flow_busy;      /* flow.c: an admit.lua round for this workflow's held runs is in flight */
    int read_busy;      /* cluster: this workflow's XREADGROUP is in flight on its block lane */
    int read_lane;      /* cluster: the priority lane this workflow's next read takes (claim.c) */
    int read_count;     /* cluster: COUNT of this workflow's outstanding read */
    int paused;         /* claim.lua answered PAUSED (wf_workflow_pause): no reads of its lanes
                           until flow.c sees the pause lifted */
    int pause_busy;     /* flow.c: the check of the pause is in flight */
    int64_t next_pause_check; /* mono ms */
};

struct wf_worker {
    wf_worker_options opt; /* defaults applied; strings point at the copies below */
    char *url_str;
    char *consumer;
    wf__url url;
    wf__rc *sync; /* start-up connection; freed once the loop runs */

    wf__wdef **defs;
    int ndefs;

    struct event_base *base;
    wf__conn block, cmd;
    struct event *tick_ev, *stop_ev, *done_ev;
    int stop_pipe[2];
    volatile sig_atomic_t stop_requested;
    wf__pool *pool;

    int started; /* wf_worker_run was entered */
    int draining;
    int released;           /* drain deadline passed: the rest were handed back */
    int closing;            /* the loop is being left: no more commands, no reconnects */
    int64_t drain_deadline; /* mono ms */

    wf__job *held_head, *held_tail; /* jobs of claimed runs, oldest first */
    int nheld;
    int busy;            /* jobs not yet RETURNED (occupying executor slots) */
    int reserved;        /* slots promised to entries whose claim.lua is in flight */
    int read_inflight;   /* an XREADGROUP is outstanding on block */
    int read_lane;       /* claim.c: the priority lane (wf__lane) the next read takes; the last
                            one, low, blocks over every lane */
    int read_count;      /* claim.c: COUNT of the outstanding read */
    int read_reserved;   /* cluster: the COUNTs of the workflows' outstanding reads, added */
    int arm_next;        /* cluster: the workflow the next arming starts from (round robin) */
    int claims_inflight; /* claim.lua calls outstanding */
    /* claim.c: runs a claim.lua whose reply was lost may have made ours (run id, then its
     * workflow's index in defs), checked and handed back once cmd is ready again */
    struct wf__lost_claim *lost_claims;
    int ops_inflight; /* end operations outstanding */
    int ops_refused;  /* an end operation came back refused (finish.c): resend on the tick */
    wf__job **cbatch; /* completions to send at the end of this loop turn (batch_end.c) */
    int ncbatch, cbatch_cap;
    struct event *cbatch_ev;
    int64_t read_retry_at; /* mono ms: after NOGROUP etc., wait before reading again */

    int have_clock;
    int64_t clock_offset; /* Redis ms - wf__mono_ms() */

    wf__req *reqs_head, *reqs_tail; /* ctx calls waiting for the cmd connection */

    struct wf__ops *ops; /* presence, metrics, health, webhooks (wf_ops.h); set by wf_worker_new */

    /* recycle.c: asking the supervisor for a fresh process (0: feature off) */
    int64_t stuck_grace_ms; /* a cancelled handler not back after this: recycle */
    int64_t max_rss_kb;     /* resident memory above this: recycle */
    int64_t next_rss_check; /* mono ms */
    int recycle;            /* why the worker is draining to be replaced (wf__recycle_reason) */

    /* invoke.c: delivering the ends of child runs to their parents (P:{W}:parents) */
    wf__greader *kids; /* P:{W}:parents of every workflow; made when cmd is first ready */
    int kids_inflight; /* deliver.lua calls outstanding */
    int kids_crash;    /* fault injection, -DWF_FAULT_INJECTION=ON only (invoke.c) */
};

/* Defaults. */
#define WF__DEFAULT_CONCURRENCY    8
#define WF__DEFAULT_LEASE_MS       15000
#define WF__DEFAULT_MAX_RECLAIMS   5
#define WF__DEFAULT_DRAIN_MS       30000
#define WF__DEFAULT_MAX_ATTEMPTS   3
#define WF__DEFAULT_BACKOFF_MS     1000
#define WF__DEFAULT_MAX_BACKOFF_MS 60000
#define WF__TICK_MS                100
#define WF__FREE_GRACE_MS          1000

/* Fills zero fields of `o` with the defaults. */
void wf__workflow_options_defaults(wf_workflow_options *o);

/* Redis time estimated from the clock offset read at connect (ms since the epoch). */
int64_t wf__worker_redis_now(const wf_worker *w);

/* Free executor slots (concurrency - busy - reserved), never below 0. */
int wf__worker_free_slots(const wf_worker *w);

#endif
