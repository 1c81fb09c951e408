/* wf_job.h - the job: one attempt of one run, from its claim until Redis answered the script that
 * ends it; the execution context a handler sees lives inside it. Also the loop side of a job's
 * life (finish.c) and the completions batched per loop turn (batch_end.c).
 *
 * Design
 * ------
 * A claimed run becomes a wf__job. The loop owns it (the `held` list) from the claim until Redis
 * has answered the script that ends its attempt; an executor thread borrows it while the handler
 * runs. Two independent little state machines describe a job:
 *
 *   exec   QUEUED -> RUNNING -> RETURNED           (executor side; changed under the pool lock)
 *   lease  HELD -> ENDING -> GONE                  (loop side only)
 *
 * ENDING means "an end operation was decided" (complete/fail from the handler's result, fail as
 * terminated after a timeout, or release on drain); it is sent when the cmd connection is up and
 * re-sent after a reconnect if the connection dropped before Redis answered (a lease that expired
 * meanwhile makes the script answer STALE, which is fine). A job is freed once it is RETURNED and
 * GONE with no command in flight.
 */
#ifndef WF_JOB_H
#define WF_JOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <msgpack.h>

#include "wf/wf.h"
#include "wf_internal.h"

/* ---- Jobs ------------------------------------------------------------------------------------ */

typedef struct wf__pool wf__pool;
typedef struct wf__job wf__job;
typedef struct wf__wdef wf__wdef;

typedef enum wf__exec_state {
    WF__EXEC_QUEUED = 0, /* waiting for an executor thread */
    WF__EXEC_RUNNING,    /* the handler runs on an executor thread */
    WF__EXEC_RETURNED,   /* the handler returned (or never will run); result in the job */
} wf__exec_state;

typedef enum wf__lease_state {
    WF__LEASE_HELD = 0, /* we hold the run's lease; heartbeats renew it */
    WF__LEASE_ENDING,   /* an end operation (`op`) was decided; sent or waiting for the conn */
    WF__LEASE_GONE,     /* the run is no longer ours: ended, stopped, timed out, reclaimed */
} wf__lease_state;

typedef enum wf__end_op {
    WF__OP_NONE = 0,
    WF__OP_RESULT,  /* complete.lua or fail.lua from the handler's result */
    WF__OP_TIMEOUT, /* fail.lua, fatal, final state terminated */
    WF__OP_RELEASE, /* release.lua: hand the run back to the queue (drain) */
} wf__end_op;

const char *wf__exec_state_name(wf__exec_state s);
const char *wf__lease_state_name(wf__lease_state s);

/* The execution context handed to a handler. Lives inside its job. */
struct wf_ctx {
    wf__job *job;
    wf__pool *pool;           /* for wf__ctx_call: reaches the loop even from a detached thread */
    struct wf__steps *steps;  /* step engine state (wf_step_engine.h), made on first use */
    int64_t step_admitted_ms; /* wall clock when the current step body passed the lease fence */
};

/* One attempt of one run, from claim to the answer of the script that ends it. */
struct wf__job {
    /* -- identity (set at claim, read-only after) -- */
    char id[WF__ID_MAX];             /* run id */
    char workflow[WF__NAME_MAX + 1]; /* workflow name (copied: outlives the worker if detached) */
    char token[32];                  /* lease token from claim.lua */
    int attempt;                     /* 1 for the first execution */
    int64_t claimed_redis_ms;        /* Redis time at the claim (claim.lua's started_at) */
    int64_t claimed_mono;            /* wf__mono_ms() when the claim reply arrived */
    char *input;                     /* msgpack bytes, NULL/0 for none */
    size_t input_len;
    wf_handler_fn handler;   /* copied from the definition */
    wf_workflow_options opt; /* copied, defaults applied */
    char *prefix;            /* key prefix (copied) */
    size_t max_payload;      /* the URL's max_payload, for wf_ctx_send_event */
    int64_t retention_ms;    /* the URL's retention, for stopping a child run (invoke.c) */
    wf__wfkeys *keys;        /* fixed keys, made on first wf__ctx_keys(); executor side */
    wf_ctx ctx;

    /* -- executor side: exec_state changes under the pool lock -- */
    wf__exec_state exec_state;
    wf__job *qnext;               /* link in the pool's run queue or done list */
    _Atomic int64_t started_mono; /* when the handler started (0: not yet) */
    atomic_int cancelled;         /* wf_ctx_cancelled(): stopped, timed out, released */
    /* Until when (wf__mono_ms) our lease is surely still ours: the claim, then each heartbeat
     * Redis acknowledged, plus lease_ms. A step body is not started past it (step_run.c): a process
     * that was frozen (SIGSTOP, a long stall) must not run a side effect that another worker may
     * have run and recorded meanwhile. Written by the loop, read by the executor. */
    _Atomic int64_t lease_until_mono;
    int64_t lease_ms;    /* the worker's lease time, for the margin of that check */
    atomic_int fenced;   /* a step refused to start past lease_until_mono: hand the run back */
    int orphaned;        /* worker freed while this ran: the thread frees the job */
    int64_t cancel_mono; /* loop side: when the handler was told to stop (timeout, lost
                            lease); 0: never. Stuck past the grace: recycle.c */

    /* -- the handler's result (written by the executor before RETURNED) -- */
    int rc;              /* WF_OK, WF_SUSPEND or a negative wf_err */
    msgpack_sbuffer out; /* what the handler packed */
    char *error;         /* wf_ctx_fail() text (malloc'd) or NULL */
    int64_t retry_after; /* wf_ctx_retry_after(), -1: none */
    int suspended;       /* a step handed the run back: suspend.lua answered OK */

    /* -- loop side only -- */
    wf__wdef *def; /* the worker's definition (valid while the loop runs) */
    wf__lease_state lease;
    wf__end_op op;        /* meaningful while ENDING */
    int op_inflight;      /* the end op was sent; Redis has not answered */
    int batched;          /* a completion waiting in the worker's batch (batch_end.c) */
    int dispatched;       /* handed to the pool */
    int returned;         /* the loop took it back from the done list */
    int observed;         /* its duration went into wf_attempt_duration_seconds (metrics.c) */
    wf__job *prev, *next; /* the worker's held list */
};

/* Frees a job's memory (not its links). Safe from any thread. */
void wf__job_free(wf__job *job);

/* ---- The loop side of a job's life (finish.c, batch_end.c) --------------------------------- */

/* finish.c: the loop side of a job's life. */
void wf__job_hold(wf_worker *w, wf__job *job);                  /* add to held, dispatch to pool */
void wf__job_returned(wf_worker *w, wf__job *job);              /* the handler came back */
void wf__job_end(wf_worker *w, wf__job *job, wf__end_op op);    /* decide and send an end op */
void wf__job_lost(wf_worker *w, wf__job *job, const char *why); /* lease gone: cancel, drop */
void wf__job_flush_ops(wf_worker *w); /* resend end ops after a reconnect */
/* Handles Redis's answer `r` (NULL: connection lost) to job's end op (finish.c). */
void wf__job_op_done(wf_worker *w, wf__job *job, redisReply *r);

/* batch_end.c: completions of one loop turn sent as one complete.lua call per workflow. init
 * creates the event (WF_OK or WF_ERR_NOMEM), add queues an ENDING job whose result completes it,
 * send sends what is queued (called by the event), free releases it all. */
int wf__cbatch_init(wf_worker *w);
int wf__cbatch_add(wf_worker *w, wf__job *job);
void wf__cbatch_send(wf_worker *w);
void wf__cbatch_free(wf_worker *w);
void wf__job_maybe_free(wf_worker *w, wf__job *job);

#endif
