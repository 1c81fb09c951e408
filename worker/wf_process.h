/* wf_process.h - a worker as a process of `wf-worker --processes N`: draining on purpose to be
 * replaced by a fresh process (recycle.c) and the supervisor that forks, restarts and stops the
 * worker processes (supervisor.c).
 */
#ifndef WF_PROCESS_H
#define WF_PROCESS_H

#include <stdint.h>

#include "wf/wf.h"
#include "wf_job.h"

/* ---- Recycling (recycle.c) ------------------------------------------------------------------ */

/* Exit status of a worker process that drained on purpose to be replaced by a fresh one (a
 * handler stuck past its timeout holds a thread that can never be taken back; memory grew past
 * the limit). The supervisor restarts such a process at once. */
#define WF__EXIT_RECYCLE 75

typedef enum wf__recycle_reason {
    WF__RECYCLE_NONE = 0,
    WF__RECYCLE_STUCK, /* a handler told to stop (timeout, stop, lost lease) never returned */
    WF__RECYCLE_RSS,   /* resident memory over the limit */
} wf__recycle_reason;

/* Turns recycling on (call before wf_worker_run): when a handler that was cancelled has not
 * returned `stuck_grace_ms` later (0: never checked), or the process's resident memory exceeds
 * `max_rss_mb` (0: no limit), the worker drains as on wf_worker_stop() and wf_worker_run()
 * returns; wf__worker_recycled() then says why. Without it a stuck handler is only logged. */
void wf__worker_set_recycle(wf_worker *w, int64_t stuck_grace_ms, int64_t max_rss_mb);
/* Why the worker left its loop to be replaced, or WF__RECYCLE_NONE. */
int wf__worker_recycled(const wf_worker *w);
/* From the tick: checks stuck handlers and memory; starts the drain when one is over its limit. */
void wf__recycle_check(wf_worker *w, int64_t now);
/* The drain must not wait for this job: recycling abandons its stuck handler. */
int wf__recycle_abandoned(const wf_worker *w, const wf__job *job);

/* ---- Supervisor (supervisor.c) ------------------------------------------------------------- */

/* The supervisor's HTTP server (wf-worker --http with --processes N): where, and the token. */
typedef struct wf__sup_http {
    const char *host; /* NULL: no server */
    int port;
    const char *token; /* NULL: none */
    char addr[300];    /* filled before the first fork: "http://HOST:PORT/" (for P:workers) */
} wf__sup_http;

/* Forks `n` children, each calling child(arg) and exiting with its return value; restarts a child
 * that dies (backoff 100 ms doubling to 5 s while it keeps dying young, logging its exit status or
 * signal); forwards SIGTERM/SIGINT to all children and waits for them. With `http` (may be NULL)
 * it serves the host's health and metrics from the shared metrics table (wf__metrics_share must
 * have run). Returns the process exit status: 0 when every child exited 0 after the stop signal,
 * 1 otherwise (also when it could not listen or start). */
int wf__supervise(int n, int (*child)(void *arg), void *arg, wf__sup_http *http);

#endif
