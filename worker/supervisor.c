/* supervisor.c - the parent process of `wf-worker --processes N`: forks N worker processes,
 * restarts one that dies (with backoff while it keeps dying young), forwards SIGTERM/SIGINT to
 * all of them and waits until every one has drained and exited. With --http it also serves the
 * host's /healthz, /readyz and /metrics on one port, from the metrics table its processes share
 * (metrics.c): one scrape target per host.
 *
 * A child that exits with WF__EXIT_RECYCLE drained on purpose to be replaced (recycle.c) and is
 * restarted at once, without backoff.
 *
 * Signals are blocked in the supervisor and taken synchronously with sigtimedwait() on a 100 ms
 * timer of its event loop (which also runs the HTTP server), so there is no handler and no race
 * between a signal and a fork; children get the original mask back, and PR_SET_PDEATHSIG makes a
 * child drain if the supervisor itself is killed.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "wf_worker_internal.h"

#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 5000
#define YOUNG_MS       10000 /* a child that dies younger than this backs off further */
#define STEP_MS        100

typedef struct slot {
    pid_t pid;          /* 0: not running */
    int64_t started;    /* mono ms */
    int64_t restart_at; /* mono ms, when pid == 0 */
    int backoff_ms;
} slot;

typedef struct sup {
    int n;
    slot *s;
    int (*child)(void *);
    void *arg;
    sigset_t mask, orig;
    int stopping, all_ok, alive;
    int listen_fd; /* the HTTP server's socket, closed in children; -1: none */
    struct event_base *base;
} sup;

static pid_t spawn(sup *u, int i)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1); /* the supervisor died before prctl */
    if (u->listen_fd >= 0) close(u->listen_fd);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &u->orig, NULL);
    wf__metrics_set_process(i);
    exit(u->child(u->arg));
}

static void describe(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "stopped (status 0x%x)", status);
}

static void on_signal(sup *u, int sig)
{
    if (!u->stopping) {
        u->stopping = 1;
        wf__log(WF__LOG_INFO, "supervisor: %s received, draining %d worker process%s",
                sig == SIGTERM ? "SIGTERM" : "SIGINT", u->alive, u->alive == 1 ? "" : "es");
        for (int i = 0; i < u->n; i++)
            if (u->s[i].pid > 0) kill(u->s[i].pid, SIGTERM);
    } else {
        wf__log(WF__LOG_WARN, "supervisor: second %s: killing worker processes now",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
        u->all_ok = 0;
        for (int i = 0; i < u->n; i++)
            if (u->s[i].pid > 0) kill(u->s[i].pid, SIGKILL);
    }
}

/* Child `i` (pid) exited with `status`: log it and schedule its restart unless stopping. */
static void on_exit_of(sup *u, int i, pid_t pid, int status)
{
    slot *c = &u->s[i];
    u->alive--;
    c->pid = 0;
    wf__metrics_clear_proc(i);
    char how[96];
    describe(status, how, sizeof how);
    if (u->stopping) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) u->all_ok = 0;
        wf__log(WF__LOG_INFO, "supervisor: worker process %ld %s", (long)pid, how);
        return;
    }
    int64_t now = wf__mono_ms();
    if (WIFEXITED(status) && WEXITSTATUS(status) == WF__EXIT_RECYCLE) {
        /* It drained on purpose (stuck handler, memory): replace it at once. */
        c->backoff_ms = RESTART_MIN_MS;
        c->restart_at = now;
        wf__log(WF__LOG_WARN,
                "supervisor: worker process %ld drained to be recycled (a stuck handler or its "
                "memory limit); starting a fresh one",
                (long)pid);
        return;
    }
    if (now - c->started >= YOUNG_MS) c->backoff_ms = RESTART_MIN_MS;
    c->restart_at = now + c->backoff_ms;
    wf__log(WF__LOG_WARN, "supervisor: worker process %ld %s; restarting in %d ms", (long)pid, how,
            c->backoff_ms);
    c->backoff_ms *= 2;
    if (c->backoff_ms > RESTART_MAX_MS) c->backoff_ms = RESTART_MAX_MS;
}

static void start_child(sup *u, int i)
{
    int64_t now = wf__mono_ms();
    pid_t p = spawn(u, i);
    if (p < 0) {
        wf__log(WF__LOG_ERROR, "supervisor: fork failed: %s", strerror(errno));
        u->s[i].pid = 0;
        u->s[i].restart_at = now + u->s[i].backoff_ms;
        return;
    }
    u->s[i].pid = p;
    u->s[i].started = now;
    u->alive++;
}

/* Every STEP_MS: take pending signals, reap children, restart the ones due. */
static void step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sup *u = arg;
    struct timespec zero = {0, 0};
    siginfo_t info;
    int sig;
    while ((sig = sigtimedwait(&u->mask, &info, &zero)) > 0)
        if (sig == SIGTERM || sig == SIGINT) on_signal(u, sig);
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int i = 0;
        while (i < u->n && u->s[i].pid != pid) i++;
        if (i < u->n) on_exit_of(u, i, pid, status);
    }
    if (u->stopping) {
        if (u->alive == 0) event_base_loopbreak(u->base);
        return;
    }
    int64_t now = wf__mono_ms();
    for (int i = 0; i < u->n; i++)
        if (u->s[i].pid == 0 && now >= u->s[i].restart_at) start_child(u, i);
}

/* The host's readiness: every live worker process ready (metrics.c keeps their sections). */
static int host_not_ready(void *arg, char *why, size_t len)
{
    (void)arg;
    return wf__metrics_not_ready(why, len);
}

static void host_metrics(void *arg, struct evbuffer *out)
{
    (void)arg;
    wf__metrics_render(out, 1);
}

int wf__supervise(int n, int (*child)(void *arg), void *arg, wf__sup_http *http)
{
    sup u = {.n = n, .child = child, .arg = arg, .all_ok = 1, .listen_fd = -1};
    sigemptyset(&u.mask);
    sigaddset(&u.mask, SIGTERM);
    sigaddset(&u.mask, SIGINT);
    sigaddset(&u.mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &u.mask, &u.orig);
    int rc = 1;
    wf__http *server = NULL;
    struct event *tick = NULL;
    u.s = calloc((size_t)n, sizeof *u.s);
    u.base = event_base_new();
    if (!u.s || !u.base || !(tick = event_new(u.base, -1, EV_PERSIST, step, &u))) {
        wf__log(WF__LOG_ERROR, "supervisor: out of memory");
        goto out;
    }
    if (http && http->host) {
        wf_error err = {0};
        wf__http_fns fns = {host_not_ready, host_metrics};
        server = wf__http_new(u.base, http->host, http->port, http->token, &fns, &u, http->addr,
                              sizeof http->addr, &err);
        if (!server) {
            wf__log(WF__LOG_ERROR, "supervisor: %s", err.message);
            goto out;
        }
        u.listen_fd = wf__http_fd(server);
    }
    for (int i = 0; i < n; i++) {
        u.s[i].backoff_ms = RESTART_MIN_MS;
        start_child(&u, i);
    }
    wf__log(WF__LOG_INFO, "supervisor started %d worker process%s", n, n == 1 ? "" : "es");
    struct timeval tv = {0, STEP_MS * 1000};
    event_add(tick, &tv);
    event_base_dispatch(u.base);
    wf__log(WF__LOG_INFO, "supervisor: all worker processes exited%s",
            u.all_ok ? "" : " (some not cleanly)");
    rc = u.all_ok ? 0 : 1;
out:
    wf__http_free(server);
    if (tick) event_free(tick);
    if (u.base) event_base_free(u.base);
    free(u.s);
    sigprocmask(SIG_SETMASK, &u.orig, NULL);
    return rc;
}
