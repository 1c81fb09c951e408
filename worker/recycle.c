/* recycle.c - replacing a worker process that can no longer be trusted to give back what it holds.
 *
 * A handler told to stop (its attempt timed out, its run was stopped, its lease was lost) should
 * notice wf_ctx_cancelled() and return. One that never does keeps an executor thread (and its
 * slot) forever: C has no way to take a thread back. Likewise a handler that leaks memory makes
 * its process grow without bound. The cure for both is a fresh process. With recycling on (the
 * wf-worker supervisor turns it on), the tick checks
 *
 *   - every held job whose handler was cancelled at least `stuck_grace_ms` ago and has not
 *     returned, and
 *   - once a second, the process's resident memory against `max_rss_kb`,
 *
 * and when one is over, the worker drains exactly as on SIGTERM (claims nothing more, lets the
 * other handlers finish, hands the rest back to the queue) without waiting for the abandoned
 * handler, then wf_worker_run() returns and the process exits with WF__EXIT_RECYCLE, which the
 * supervisor answers by starting a replacement at once. The run whose handler hung already ended
 * (terminated by its timeout, cancelled by stop) or belongs to another worker (lost lease); runs
 * that could not be handed back are reclaimed when their leases expire.
 */
#include <stdio.h>
#include <unistd.h>

#include "wf_worker_internal.h"

#define RSS_CHECK_MS 1000

void wf__worker_set_recycle(wf_worker *w, int64_t stuck_grace_ms, int64_t max_rss_mb)
{
    w->recycle.stuck_grace_ms = stuck_grace_ms > 0 ? stuck_grace_ms : 0;
    w->recycle.max_rss_kb = max_rss_mb > 0 ? max_rss_mb * 1024 : 0;
}

int wf__worker_recycled(const wf_worker *w)
{
    return w ? w->recycle.reason : WF__RECYCLE_NONE;
}

int wf__recycle_abandoned(const wf_worker *w, const wf__job *job)
{
    return w->recycle.reason != WF__RECYCLE_NONE && job->cancel_mono != 0;
}

/* Resident set size of this process in KiB, or -1. */
static int64_t rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long size = 0, resident = -1;
    int n = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    if (n != 2 || resident < 0) return -1;
    return (int64_t)resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void start_recycle(wf_worker *w, wf__recycle_reason why)
{
    if (w->recycle.reason != WF__RECYCLE_NONE || w->stop.draining) return;
    w->recycle.reason = why;
    wf_worker_stop(w);
}

void wf__recycle_check(wf_worker *w, int64_t now)
{
    if (w->recycle.reason != WF__RECYCLE_NONE || w->stop.draining) return;
    for (wf__job *j = w->jobs.head; j; j = j->next) {
        if (!j->dispatched || j->returned || j->cancel_mono == 0) continue;
        int64_t late = now - j->cancel_mono;
        if (w->recycle.stuck_grace_ms > 0 && late >= w->recycle.stuck_grace_ms) {
            wf__log_run(WF__LOG_ERROR, j->id, j->workflow, j->attempt,
                        "handler still running %lld ms after it was cancelled (it ignores "
                        "wf_ctx_cancelled); its thread cannot be taken back: recycling this "
                        "worker process",
                        (long long)late);
            start_recycle(w, WF__RECYCLE_STUCK);
            return;
        }
    }
    if (w->recycle.max_rss_kb > 0 && now >= w->recycle.next_rss_check) {
        w->recycle.next_rss_check = now + RSS_CHECK_MS;
        int64_t kb = rss_kb();
        if (kb > w->recycle.max_rss_kb) {
            wf__log(WF__LOG_ERROR,
                    "resident memory %lld MiB is over the limit of %lld MiB (a handler leaks?): "
                    "recycling this worker process",
                    (long long)(kb / 1024), (long long)(w->recycle.max_rss_kb / 1024));
            start_recycle(w, WF__RECYCLE_RSS);
        }
    }
}
