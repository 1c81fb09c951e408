/* sd.c - wf-worker under systemd (wf-worker@.service, Type=notify, NotifyAccess=all): tells the
 * service manager when a worker process is ready and that its loop still turns.
 *
 *   READY=1     once, when the worker is ready in the sense of /readyz (both Redis connections up,
 *               a script answered) and everything sent on cmd before has been answered, the
 *               registration of the workflows included (a barrier after it)
 *   WATCHDOG=1  from the loop's 100 ms tick, every half of $WATCHDOG_USEC: a loop that hangs stops
 *               the pings and systemd restarts the service (WatchdogSec=)
 *
 * Under the supervisor the worker processes send these: systemd accepts them from any process of
 * the service with NotifyAccess=all. $WATCHDOG_PID names the supervisor there, so
 * sd_watchdog_enabled() would say no in a worker process; $WATCHDOG_USEC is read directly.
 * Nothing here runs unless the program called wf__sd_enable() (wf-worker does), and all of it is
 * compiled out without libsystemd (CMake's WF_SYSTEMD).
 */
#include <stdlib.h>
#include <unistd.h>

#include "wf_worker_internal.h"

#ifdef WF_SYSTEMD
#include <systemd/sd-daemon.h>

int wf__sd_available(void)
{
    return 1;
}

void wf__sd_enable(wf_worker *w)
{
    wf__ops *ops = w ? w->ops : NULL;
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!ops || !sock || !*sock) return;
    ops->sd_on = 1;
    const char *usec = getenv("WATCHDOG_USEC");
    long long us = usec ? strtoll(usec, NULL, 10) : 0;
    ops->sd_watchdog_ms = us > 0 ? (us / 2000 > 0 ? us / 2000 : 1) : 0;
    ops->sd_next_watchdog = 0;
}

/* The barrier after the registration answered: this process is ready. */
static void registered(wf_worker *w)
{
    wf__ops *ops = w->ops;
    ops->sd_barrier = 0;
    if (ops->sd_ready_sent || wf__ops_not_ready(w)) return; /* the tick tries again */
    ops->sd_ready_sent = 1;
    sd_notifyf(0, "READY=1\nSTATUS=worker process %ld ready, %d workflow%s registered",
               (long)getpid(), w->ndefs, w->ndefs == 1 ? "" : "s");
}

void wf__sd_tick(wf_worker *w, int64_t now)
{
    wf__ops *ops = w->ops;
    if (!ops || !ops->sd_on) return;
    if (ops->sd_watchdog_ms > 0 && now >= ops->sd_next_watchdog) {
        ops->sd_next_watchdog = now + ops->sd_watchdog_ms;
        sd_notify(0, "WATCHDOG=1");
    }
    if (ops->sd_ready_sent || ops->sd_barrier || wf__ops_not_ready(w)) return;
    ops->sd_barrier = 1;
    if (wf__conn_barrier(&w->cmd, registered) != REDIS_OK) ops->sd_barrier = 0;
}

void wf__sd_on_ready(wf_worker *w)
{
    if (w->ops) w->ops->sd_barrier = 0; /* a lost connection never calls its barrier back */
}

#else /* no libsystemd: wf-worker never talks to systemd */

int wf__sd_available(void)
{
    return 0;
}

void wf__sd_enable(wf_worker *w)
{
    (void)w;
}

void wf__sd_tick(wf_worker *w, int64_t now)
{
    (void)w;
    (void)now;
}

void wf__sd_on_ready(wf_worker *w)
{
    (void)w;
}

#endif
