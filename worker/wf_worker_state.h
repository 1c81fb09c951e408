/* wf_worker_state.h - the worker itself: struct wf_worker, the workflows it runs (wf__wdef) and
 * the defaults of its options.
 *
 * Design
 * ------
 * A wf_worker is one libevent loop (the loop thread: whoever calls wf_worker_run) plus a pool of
 * `concurrency` executor threads (wf_executor.h). Only the loop thread touches the two async
 * Redis connections, block and cmd (wf_conn.h). A claimed run becomes a job the loop holds until
 * its attempt ends (wf_job.h). wf_worker_stop writes to a self-pipe, which is async-signal-safe.
 * The state each subsystem owns is a sub-struct of its own (stop, jobs, claim, ends, recycle,
 * kids), named after it, so a field's owner shows at every use (w->claim.read_inflight).
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
#include "wf_turn_batch.h"

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
    /* timers.c: when to read the delayed and lease sets next (mono ms), from the earliest due
     * time the last read saw; 0: at the next tick (wf__timers_nudge) */
    int64_t next_wake, next_reclaim;
    int64_t next_prune; /* mono ms: timers.c drops expired runs from the final state indexes */
    int sched_busy;     /* scheduler.c: a scan of this workflow's due schedules is in flight */
    int64_t next_sched; /* scheduler.c: mono ms of the next scan (the earliest firing seen) */
    int64_t next_flow;  /* flow.c: mono ms of the next look at the held runs; 0: next tick */
    int flow_busy;      /* flow.c: an admit.lua round for this workflow's held runs is in flight */
    int read_busy;      /* cluster: this workflow's XREADGROUP is in flight on its block lane */
    int read_lane;      /* cluster: the priority lane this workflow's next read takes (claim.c) */
    int read_count;     /* cluster: COUNT of this workflow's outstanding read */
    int paused;         /* claim.lua answered PAUSED (wf_workflow_pause): no reads of its lanes
                           until flow.c sees the pause lifted */
    int pause_busy;     /* flow.c: the check of the pause is in flight */
    int64_t next_pause_check; /* mono ms */
};

/* Stopping (loop.c): wf_worker_stop writes to a self-pipe (async-signal-safe); the loop then
 * drains, claiming nothing more and waiting up to drain_ms for the runs it holds, hands back what
 * is left (released), and leaves (closing). Every subsystem reads `draining` and `closing` before
 * it sends: once closing, nothing is sent and nothing reconnects. */
typedef struct wf__stop_state {
    int started;                     /* wf_worker_run was entered */
    int draining;                    /* claiming nothing more */
    int released;                    /* drain deadline passed: the rest were handed back */
    int closing;                     /* the loop is being left: no more commands, no reconnects */
    int64_t drain_deadline;          /* mono ms */
    struct event *ev;                /* reads `pipe` on the loop */
    int pipe[2];                     /* written by wf_worker_stop */
    volatile sig_atomic_t requested; /* wf_worker_stop was called (maybe from a signal) */
} wf__stop_state;

/* The jobs of claimed runs (wf_job.h), held by the loop until their attempt ends (finish.c),
 * and the executor slots they take. */
typedef struct wf__jobs_state {
    wf__job *head, *tail; /* oldest first */
    int n;
    int busy; /* jobs not yet RETURNED (occupying executor slots) */
} wf__jobs_state;

/* Reading the queues and claiming what was read (claim.c, claim_lost.c). One XREADGROUP at a
 * time on block (in a cluster one per workflow, on its lane), only for free slots: the slots a
 * read or a claim.lua in flight may fill are reserved until it answers. */
typedef struct wf__claim_state {
    int reserved;          /* slots promised to entries whose claim.lua is in flight */
    int read_inflight;     /* an XREADGROUP is outstanding on block */
    int read_lane;         /* the priority lane (wf__lane) the next read takes; the last one, low,
                              blocks over every lane */
    int read_count;        /* COUNT of the outstanding read */
    int read_reserved;     /* cluster: the COUNTs of the workflows' outstanding reads, added */
    int arm_next;          /* cluster: the workflow the next arming starts from (round robin) */
    int inflight;          /* claim.lua calls outstanding */
    int64_t read_retry_at; /* mono ms: after NOGROUP etc., wait before reading again */
    /* runs a claim.lua whose reply was lost may have made ours (run id, then its workflow's
     * index in defs), checked and handed back once cmd is ready again (claim_lost.c) */
    struct wf__lost_claim *lost;
} wf__claim_state;

/* Ending attempts (finish.c, batch_end.c): complete/fail/release per job, completions batched
 * per loop turn into one complete.lua call per workflow. An end operation is never given up: a
 * refused one goes out again from the tick. */
typedef struct wf__ends_state {
    int inflight;         /* end operations outstanding */
    int refused;          /* one came back refused: resend on the tick */
    wf__turn_batch batch; /* completions (wf__job *) to send at the end of this loop turn */
} wf__ends_state;

/* Step records of handlers (batch_step.c): the step.lua requests the loop takes during one turn,
 * sent at its end in one call per workflow. */
typedef struct wf__srec_state {
    wf__turn_batch batch; /* requests (wf__req *) waiting for the end of the turn */
    int64_t calls;        /* step.lua calls sent, and the records they carried: what batching */
    int64_t records;      /* saves (loop thread only; read by tests once the loop is left) */
} wf__srec_state;

/* Asking the supervisor for a fresh process (recycle.c; 0: feature off). */
typedef struct wf__recycle_state {
    int64_t stuck_grace_ms; /* a cancelled handler not back after this: recycle */
    int64_t max_rss_kb;     /* resident memory above this: recycle */
    int64_t next_rss_check; /* mono ms */
    int reason;             /* why the worker is draining to be replaced (wf__recycle_reason) */
} wf__recycle_state;

/* Delivering the ends of child runs to their parents (invoke.c): one group reader over the
 * P:{W}:parents streams of every workflow. */
typedef struct wf__kids_state {
    wf__greader *reader; /* made when cmd is first ready */
    int inflight;        /* deliver.lua calls outstanding */
    int crash;           /* fault injection, -DWF_FAULT_INJECTION=ON only */
} wf__kids_state;

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
    struct event *tick_ev, *done_ev;
    wf__pool *pool;

    wf__stop_state stop;
    wf__jobs_state jobs;
    wf__claim_state claim;
    wf__ends_state ends;
    wf__srec_state srec;
    wf__recycle_state recycle;
    wf__kids_state kids;

    int have_clock;
    int64_t clock_offset; /* Redis ms - wf__mono_ms() */

    wf__req *reqs_head, *reqs_tail; /* ctx calls waiting for the cmd connection */

    struct wf__ops *ops; /* presence, metrics, health, webhooks (wf_ops.h); set by wf_worker_new */
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
