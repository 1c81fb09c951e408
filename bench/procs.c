/* procs.c - the wf-worker processes a scenario starts: spawning, finding the supervisor's worker
 * children, reading their memory (VmRSS) and CPU time from /proc, and stopping them.
 *
 * `wf-worker --processes N` is a supervisor that forks N workers; the work and the memory are in
 * the children, so RSS is measured per child (the largest is reported) and CPU time is the sum of
 * the supervisor and its children. The worker runs in its own process group with
 * PR_SET_PDEATHSIG, so nothing outlives the bench: a normal stop is SIGTERM (clean drain), a stuck
 * one is killed by group after 20 s.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wf_bench.h"

static bench_worker *g_last; /* the worker to stop on exit */

/* Reads /proc/PID/FILE into buf; returns bytes read or -1. */
static ssize_t read_proc(pid_t pid, const char *file, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    if (got >= 0) buf[got] = '\0';
    return got;
}

/* Fields 4 (ppid), 14 (utime) and 15 (stime) of /proc/PID/stat. */
static int proc_stat(pid_t pid, pid_t *ppid, double *cpu_s)
{
    char buf[1024];
    if (read_proc(pid, "stat", buf, sizeof buf) <= 0) return -1;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    char state;
    int pp;
    unsigned long ut, st;
    if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &pp, &ut, &st) !=
        4)
        return -1;
    if (ppid) *ppid = pp;
    if (cpu_s) *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

static long proc_rss_kb(pid_t pid)
{
    char buf[4096];
    if (read_proc(pid, "status", buf, sizeof buf) <= 0) return 0;
    const char *p = strstr(buf, "\nVmRSS:");
    return p ? strtol(p + 7, NULL, 10) : 0;
}

/* Finds the supervisor's children by scanning /proc (no /proc/PID/task/TID/children here). */
static void find_kids(bench_worker *w)
{
    DIR *d = opendir("/proc");
    if (!d) return;
    w->nkids = 0;
    struct dirent *e;
    while ((e = readdir(d)) && w->nkids < (int)(sizeof w->kids / sizeof w->kids[0])) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;
        if (proc_stat(pid, &ppid, NULL) == 0 && ppid == w->pid) w->kids[w->nkids++] = pid;
    }
    closedir(d);
}

/* Number of clients blocked in a command (the workers' XREADGROUP ... BLOCK): a consumer does not
 * show in XINFO CONSUMERS until it has read something, a blocked connection does. */
static long blocked_clients(redisContext *c)
{
    redisReply *r = bench_cmd(c, "CLIENT LIST TYPE normal");
    long n = 0;
    for (const char *p = r->str; (p = strstr(p, " flags=")) != NULL; p += 7)
        if (strchr(p + 7, ' ') && memchr(p + 7, 'b', (size_t)(strchr(p + 7, ' ') - (p + 7)))) n++;
    freeReplyObject(r);
    return n;
}

void bench_worker_start(bench_worker *w, const bench_opts *o, const char *dir, const char *env,
                        redisContext *c, int wait_ready)
{
    memset(w, 0, sizeof *w);
    char procs[16], conc[16];
    snprintf(procs, sizeof procs, "%d", o->processes);
    snprintf(conc, sizeof conc, "%d", o->concurrency);
    if (access(o->worker, X_OK) != 0) bench_die("no wf-worker program at %s", o->worker);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) bench_die("fork failed");
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        if (env) putenv((char *)env);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, STDOUT_FILENO);
        execl(o->worker, o->worker, "--redis", o->redis_url, "--workflows", dir, "--processes",
              procs, "--concurrency", conc, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    w->pid = pid;
    g_last = w;
    int64_t deadline = bench_mono_us() + 15 * 1000000LL;
    while (w->nkids < o->processes || (wait_ready && blocked_clients(c) < o->processes)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            w->pid = 0;
            bench_die("wf-worker exited at start (status %d); run it by hand to see why",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        if (bench_mono_us() > deadline)
            bench_die("wf-worker did not start %d worker process(es) within 15 s", o->processes);
        find_kids(w);
        bench_sleep_us(10000);
    }
}

void bench_worker_sample(bench_worker *w)
{
    long kb = bench_worker_rss_kb(w);
    if (kb > w->rss_max_kb) w->rss_max_kb = kb;
}

long bench_worker_rss_kb(const bench_worker *w)
{
    long max = 0;
    for (int i = 0; i < w->nkids; i++) {
        long kb = proc_rss_kb(w->kids[i]);
        if (kb > max) max = kb;
    }
    return max;
}

double bench_worker_cpu_s(const bench_worker *w)
{
    double sum = 0, s;
    if (proc_stat(w->pid, NULL, &s) == 0) sum += s;
    for (int i = 0; i < w->nkids; i++)
        if (proc_stat(w->kids[i], NULL, &s) == 0) sum += s;
    return sum;
}

void bench_worker_stop(bench_worker *w)
{
    if (!w || w->pid <= 0) return;
    pid_t pid = w->pid;
    w->pid = 0;
    if (g_last == w) g_last = NULL;
    kill(pid, SIGTERM);
    int64_t deadline = bench_mono_us() + 20 * 1000000LL;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (bench_mono_us() > deadline) {
            fprintf(stderr, "wf-bench: wf-worker did not drain within 20 s; killing it\n");
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            return;
        }
        bench_sleep_us(10000);
    }
    kill(-pid, SIGKILL); /* any child left behind (there should be none) */
}

void bench_worker_stop_all(void)
{
    if (g_last) bench_worker_stop(g_last);
}
