/* loop.c - the worker's event loop: what happens when a connection comes up or goes down, when
 * handlers return, when the tick fires, and how a stop request drains the worker and leaves the
 * loop. Everything here runs on the loop thread.
 *
 * Drain: stop claiming (the block connection is closed at once), let running handlers finish
 * until drain_ms, then hand the rest back with release.lua and wait (a little) for Redis to
 * confirm every end operation, then leave the loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wf_worker_internal.h"

int64_t wf__worker_redis_now(const wf_worker *w)
{
    return wf__mono_ms() + w->clock_offset;
}

int wf__worker_free_slots(const wf_worker *w)
{
    int n = w->opt.concurrency - w->jobs.busy - w->claim.reserved;
    return n > 0 ? n : 0;
}

static void on_ready(wf_worker *w, wf__conn *conn)
{
    if (conn == &w->cmd) {
        wf__ops_on_ready(w);      /* presence, readiness probe, outbox groups */
        wf__children_on_ready(w); /* invoke.c: groups of P:{W}:parents */
        wf__claim_setup(w);
        wf__claim_recover(w);
        wf__job_flush_ops(w);
        wf__reqs_pump(w);
    }
    wf__claim_arm(w);
}

static void on_down(wf_worker *w, wf__conn *conn)
{
    if (conn == &w->block && !conn->cluster) w->claim.read_inflight = 0; /* lanes count their own */
}

static void leave(wf_worker *w)
{
    if (w->stop.closing) return;
    w->stop.closing = 1;
    wf__reqs_fail_all(w, WF_ERR_CLOSED, "the worker is shutting down");
    wf__claim_recover(w); /* closing: frees what is left (their leases expire) */
    wf__pool_set_loop_running(w->pool, 0);
    wf__conn_close(&w->block);
    wf__conn_close(&w->cmd);
    event_base_loopbreak(w->base);
}

void wf__worker_check_drain(wf_worker *w)
{
    if (!w->stop.draining || w->stop.closing) return;
    int64_t now = wf__mono_ms();
    if (!w->stop.released && now >= w->stop.drain_deadline) {
        w->stop.released = 1;
        int n = 0;
        for (wf__job *j = w->jobs.head, *next; j; j = next) {
            next = j->next;
            if (j->lease != WF__LEASE_HELD) continue;
            atomic_store(&j->cancelled, 1);
            n++;
            wf__job_end(w, j, WF__OP_RELEASE);
        }
        if (n)
            wf__log(WF__LOG_WARN,
                    "drain deadline (%lld ms) passed: handing %d running run%s "
                    "back to the queue",
                    (long long)w->opt.drain_ms, n, n == 1 ? "" : "s");
    }
    int pending = w->claim.inflight > 0 || w->ends.inflight > 0;
    for (wf__job *j = w->jobs.head; j && !pending; j = j->next)
        if (j->lease != WF__LEASE_GONE ||
            (!w->stop.released && j->dispatched && !j->returned && !wf__recycle_abandoned(w, j)))
            pending = 1;
    if (!pending) {
        wf__log(WF__LOG_INFO, "drained: leaving the loop");
        leave(w);
        return;
    }
    /* Past the deadline, give Redis the command timeout (at least 1 s) to confirm what was
     * sent; then give up: unconfirmed leases expire and other workers take the runs over. */
    int64_t grace = w->url.timeout_ms > 1000 ? w->url.timeout_ms : 1000;
    if (now >= w->stop.drain_deadline + grace) {
        wf__log(WF__LOG_WARN, "giving up on unconfirmed operations after the drain deadline; "
                              "their leases will expire and other workers will take the runs over");
        leave(w);
    }
}

static void begin_drain(wf_worker *w)
{
    if (w->stop.draining || w->stop.closing) return;
    w->stop.draining = 1;
    w->stop.drain_deadline = wf__mono_ms() + w->opt.drain_ms;
    int running = w->jobs.busy;
    wf__log(WF__LOG_INFO, "stopping: claiming nothing more, draining %d run%s (up to %lld ms)",
            running, running == 1 ? "" : "s", (long long)w->opt.drain_ms);
    wf__conn_close(&w->block);
    w->claim.read_inflight = 0;
    wf__worker_check_drain(w);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    wf_worker *w = arg;
    if (w->stop.requested) begin_drain(w);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf_worker *w = arg;
    wf__job *j = wf__pool_take_done(w->pool);
    while (j) {
        wf__job *next = j->qnext;
        j->qnext = NULL;
        wf__job_returned(w, j);
        j = next;
    }
    wf__reqs_pump(w);
    wf__worker_check_drain(w);
    wf__claim_arm(w);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf_worker *w = arg;
    if (w->ends.refused) {
        w->ends.refused = 0;
        wf__job_flush_ops(w);
    }
    wf__timers_tick(w);
}

int wf__loop_init(wf_worker *w, wf_error *err)
{
    w->stop.ev = event_new(w->base, w->stop.pipe[0], EV_READ | EV_PERSIST, stop_cb, w);
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
    w->done_ev = event_new(w->base, -1, 0, done_cb, w);
    if (!w->stop.ev || !w->tick_ev || !w->done_ev || wf__cbatch_init(w) != WF_OK ||
        wf__sbatch_init(w) != WF_OK ||
        wf__conn_init(&w->block, w, "block", on_ready, on_down) != WF_OK ||
        wf__conn_init(&w->cmd, w, "cmd", on_ready, on_down) != WF_OK)
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory creating the worker's events");
    event_add(w->stop.ev, NULL);
    return WF_OK;
}

int wf__loop_run(wf_worker *w, wf_error *err)
{
    w->pool = wf__pool_new(w->opt.concurrency, w->done_ev, err);
    if (!w->pool) return err ? err->code : WF_ERR_SYSTEM;
    wf__pool_set_loop_running(w->pool, 1);
    struct timeval tv = {0, WF__TICK_MS * 1000};
    event_add(w->tick_ev, &tv);
    wf__conn_start(&w->cmd);
    wf__conn_start(&w->block);
    /* A stop requested before now is in the pipe: stop_cb sees it on the first iteration. (A
     * loopbreak issued before event_base_dispatch would be forgotten by libevent.) */
    event_base_dispatch(w->base);
    /* Left by leave() (or the base ran dry, which cannot happen while the tick is armed). */
    if (!w->stop.closing) leave(w);
    event_del(w->tick_ev);
    /* Nothing is ours any more; results that arrive from now on are dropped (leases expire). */
    for (wf__job *h = w->jobs.head, *next; h; h = next) {
        next = h->next;
        h->lease = WF__LEASE_GONE;
        wf__job_maybe_free(w, h);
    }
    wf__job *j = wf__pool_take_done(w->pool);
    while (j) {
        wf__job *next = j->qnext;
        j->qnext = NULL;
        j->returned = 1;
        w->jobs.busy--;
        j->lease = WF__LEASE_GONE;
        wf__job_maybe_free(w, j);
        j = next;
    }
    return WF_OK;
}
