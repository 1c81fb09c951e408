/* supervisor.c - the parent process of `wf-worker --processes N`: forks N worker processes,
 * restarts one that dies (with backoff while it keeps dying young), forwards SIGTERM/SIGINT to
 * all of them and waits until every one has drained and exited.
 *
 * A child that exits with WF__EXIT_RECYCLE drained on purpose to be replaced (recycle.c) and is
 * restarted at once, without backoff.
 *
 * Signals are blocked in the supervisor and taken synchronously with sigtimedwait(), so there is
 * no handler and no race between a signal and a fork; children get the original mask back, and
 * PR_SET_PDEATHSIG makes a child drain if the supervisor itself is killed.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wf_log.h"
#include "wf_process.h"

#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 5000
#define YOUNG_MS       10000 /* a child that dies younger than this backs off further */

typedef struct slot {
    pid_t pid;          /* 0: not running */
    int64_t started;    /* mono ms */
    int64_t restart_at; /* mono ms, when pid == 0 */
    int backoff_ms;
} slot;

static pid_t spawn(int (*child)(void *), void *arg, const sigset_t *orig_mask)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1); /* the supervisor died before prctl */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, orig_mask, NULL);
    exit(child(arg));
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

int wf__supervise(int n, int (*child)(void *arg), void *arg)
{
    sigset_t mask, orig;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &orig);

    slot *s = calloc((size_t)n, sizeof *s);
    if (!s) {
        wf__log(WF__LOG_ERROR, "supervisor: out of memory");
        return 1;
    }
    int stopping = 0, all_ok = 1, alive = 0;
    for (int i = 0; i < n; i++) {
        s[i].backoff_ms = RESTART_MIN_MS;
        s[i].pid = spawn(child, arg, &orig);
        s[i].started = wf__mono_ms();
        if (s[i].pid < 0) {
            wf__log(WF__LOG_ERROR, "supervisor: fork failed: %s", strerror(errno));
            s[i].pid = 0;
            s[i].restart_at = wf__mono_ms() + s[i].backoff_ms;
        } else {
            alive++;
        }
    }
    wf__log(WF__LOG_INFO, "supervisor started %d worker process%s", n, n == 1 ? "" : "es");
    for (;;) {
        struct timespec ts = {0, 100 * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(&mask, &info, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                stopping = 1;
                wf__log(WF__LOG_INFO, "supervisor: %s received, draining %d worker process%s",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT", alive, alive == 1 ? "" : "es");
                for (int i = 0; i < n; i++)
                    if (s[i].pid > 0) kill(s[i].pid, SIGTERM);
            } else {
                wf__log(WF__LOG_WARN, "supervisor: second %s: killing worker processes now",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT");
                all_ok = 0;
                for (int i = 0; i < n; i++)
                    if (s[i].pid > 0) kill(s[i].pid, SIGKILL);
            }
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int i = 0;
            while (i < n && s[i].pid != pid) i++;
            if (i == n) continue;
            alive--;
            s[i].pid = 0;
            char how[96];
            describe(status, how, sizeof how);
            if (stopping) {
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) all_ok = 0;
                wf__log(WF__LOG_INFO, "supervisor: worker process %ld %s", (long)pid, how);
                continue;
            }
            int64_t now = wf__mono_ms();
            if (WIFEXITED(status) && WEXITSTATUS(status) == WF__EXIT_RECYCLE) {
                /* It drained on purpose (stuck handler, memory): replace it at once. */
                s[i].backoff_ms = RESTART_MIN_MS;
                s[i].restart_at = now;
                wf__log(WF__LOG_WARN,
                        "supervisor: worker process %ld drained to be recycled (a stuck handler "
                        "or its memory limit); starting a fresh one",
                        (long)pid);
                continue;
            }
            if (now - s[i].started >= YOUNG_MS) s[i].backoff_ms = RESTART_MIN_MS;
            s[i].restart_at = now + s[i].backoff_ms;
            wf__log(WF__LOG_WARN, "supervisor: worker process %ld %s; restarting in %d ms",
                    (long)pid, how, s[i].backoff_ms);
            s[i].backoff_ms *= 2;
            if (s[i].backoff_ms > RESTART_MAX_MS) s[i].backoff_ms = RESTART_MAX_MS;
        }
        if (stopping) {
            if (alive == 0) break;
            continue;
        }
        int64_t now = wf__mono_ms();
        for (int i = 0; i < n; i++) {
            if (s[i].pid != 0 || now < s[i].restart_at) continue;
            pid_t p = spawn(child, arg, &orig);
            if (p < 0) {
                wf__log(WF__LOG_ERROR, "supervisor: fork failed: %s", strerror(errno));
                s[i].restart_at = now + s[i].backoff_ms;
                continue;
            }
            s[i].pid = p;
            s[i].started = now;
            alive++;
        }
    }
    free(s);
    sigprocmask(SIG_SETMASK, &orig, NULL);
    wf__log(WF__LOG_INFO, "supervisor: all worker processes exited%s",
            all_ok ? "" : " (some not cleanly)");
    return all_ok ? 0 : 1;
}
