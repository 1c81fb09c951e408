/* metrics_table.h - the layout of the metrics table (metrics.c) that metrics_render.c reads and
 * the supervisor shares between its worker processes. Only these three files include it.
 */
#ifndef WF_METRICS_TABLE_H
#define WF_METRICS_TABLE_H

#include <stdatomic.h>
#include <stdint.h>

#include "wf_worker_internal.h"

#define WF__METRICS_MAX_WORKFLOWS 512
#define WF__METRICS_NBUCKETS      15 /* wf__metrics_bounds_ms, then +Inf */

/* Bucket upper bounds in ms (metrics_render.c); the last bucket, +Inf, has none. */
extern const int64_t wf__metrics_bounds_ms[WF__METRICS_NBUCKETS - 1];

typedef struct wf__mhisto {
    atomic_llong bucket[WF__METRICS_NBUCKETS]; /* not cumulative; summed when rendered */
    atomic_llong sum_ms;
    atomic_llong count;
} wf__mhisto;

enum { WF__SLOT_FREE = 0, WF__SLOT_CLAIMING, WF__SLOT_READY };

/* One workflow's counters and histograms, added to by every process sharing the table. */
typedef struct wf__mslot {
    atomic_int state;            /* WF__SLOT_*: the name is readable once READY */
    char name[WF__NAME_MAX + 1]; /* written once, before READY */
    atomic_llong counter[WF__C_COUNT];
    wf__mhisto run;                  /* deprecated wf_run_duration_seconds (no outcome label) */
    wf__mhisto attempt[WF__O_COUNT]; /* wf_attempt_duration_seconds by outcome */
    wf__mhisto step;
} wf__mslot;

/* One worker process's gauges, written by that process's loop thread (wf__metrics_publish). */
typedef struct wf__mproc {
    atomic_int pid;         /* 0: no process (never started, exited, or cleared) */
    atomic_int ready;       /* its /readyz would answer 200 */
    atomic_int concurrency; /* executor slots */
    atomic_llong rtt_us;    /* last Redis round trip; -1: none yet */
    struct {
        atomic_int in_flight;        /* handlers executing now */
        atomic_llong depth;          /* queued runs (leader only); -1: unknown or not the leader */
        atomic_llong oldest_ms;      /* age of the oldest queued run */
    } wf[WF__METRICS_MAX_WORKFLOWS]; /* indexed like wf__mtable.slot */
} wf__mproc;

typedef struct wf__mtable {
    wf__mslot slot[WF__METRICS_MAX_WORKFLOWS];
    atomic_int nslots; /* slots [0, nslots) may be in use */
    int nprocs;        /* sections in proc[] */
    wf__mproc proc[];
} wf__mtable;

/* The table this process uses (private, or shared by wf__metrics_share); NULL when out of
 * memory. */
wf__mtable *wf__metrics_table(void);
/* The slot of `workflow`, claimed when `create` and it has none. NULL: none (or the table is
 * full, logged once). */
wf__mslot *wf__metrics_slot(const char *workflow, int create);

#endif
