/* metrics_render.c - the Prometheus text exposition (version 0.0.4) of the metrics table
 * (metrics.c, metrics_table.h): wf_build_info, the process_* metrics of the serving process read
 * from /proc as the Prometheus client libraries do, the counters and histograms per workflow
 * (slots of one name added up), and the gauges of every live worker process section. A lone
 * worker renders its own table; the supervisor renders the one its processes share, for the host.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "metrics_table.h"
#include "wf_worker_internal.h"

const int64_t wf__metrics_bounds_ms[WF__METRICS_NBUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000};

/* The `outcome` label values, indexed by wf__outcome. */
static const char *const outcome_names[WF__O_COUNT] = {
    [WF__O_COMPLETED] = "completed", [WF__O_FAILED] = "failed",
    [WF__O_RETRIED] = "retried",     [WF__O_TERMINATED] = "terminated",
    [WF__O_SUSPENDED] = "suspended", [WF__O_CANCELLED] = "cancelled",
    [WF__O_RELEASED] = "released",
};

static const struct {
    wf__counter c;
    const char *name, *help, *extra_label;
} counters[] = {
    {WF__C_STARTED, "wf_attempts_started_total",
     "Attempts claimed and started by this process (a run with retries has several).", NULL},
    {WF__C_STARTED, "wf_runs_started_total",
     "Deprecated: use wf_attempts_started_total (same value); removed in the next release.", NULL},
    {WF__C_COMPLETED, "wf_runs_completed_total", "Runs this process completed.", NULL},
    {WF__C_FAILED, "wf_runs_failed_total", "Runs this process ended failed.", NULL},
    {WF__C_RETRIED, "wf_runs_retried_total", "Failed attempts scheduled for a retry.", NULL},
    {WF__C_CANCELLED, "wf_runs_cancelled_total",
     "Results dropped because the run was stopped, timed out or taken over meanwhile.", NULL},
    {WF__C_TERMINATED, "wf_runs_terminated_total", "Runs ended terminated (attempt timeout).",
     NULL},
    {WF__C_RECLAIMED, "wf_leases_reclaimed_total",
     "Runs of dead workers whose expired lease this process reclaimed.", NULL},
    {WF__C_ORPHANED, "wf_queue_entries_orphaned_total",
     "Queue entries naming a run whose hash no longer exists (expired or deleted by hand), "
     "acknowledged and dropped.",
     NULL},
};

static const struct {
    wf__counter c;
    const char *result;
} hook_results[] = {
    {WF__C_HOOK_DELIVERED, "delivered"},
    {WF__C_HOOK_RETRIED, "retried"},
    {WF__C_HOOK_DEAD, "dead"},
};

static void header(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The distinct workflow names of the table, in claim order: `first[k]` is the first slot of
 * the k-th name. Returns how many. */
static int names(const wf__mtable *t, int *first)
{
    int n = 0, top = atomic_load(&t->nslots);
    for (int i = 0; i < top && i < WF__METRICS_MAX_WORKFLOWS; i++) {
        if (atomic_load(&t->slot[i].state) != WF__SLOT_READY) continue;
        int dup = 0;
        for (int k = 0; k < n && !dup; k++)
            dup = strcmp(t->slot[first[k]].name, t->slot[i].name) == 0;
        if (!dup) first[n++] = i;
    }
    return n;
}

/* Counter `c` of the workflow whose first slot is `f`, over every slot of its name. */
static long long count_of(const wf__mtable *t, int f, wf__counter c)
{
    long long sum = 0;
    int top = atomic_load(&t->nslots);
    for (int i = f; i < top && i < WF__METRICS_MAX_WORKFLOWS; i++)
        if (atomic_load(&t->slot[i].state) == WF__SLOT_READY &&
            strcmp(t->slot[i].name, t->slot[f].name) == 0)
            sum += atomic_load(&t->slot[i].counter[c]);
    return sum;
}

/* A histogram added up over every slot of one name; `pick` chooses which of a slot's. */
typedef struct histo_sum {
    long long bucket[WF__METRICS_NBUCKETS], sum_ms, count;
} histo_sum;

static void sum_histo(const wf__mtable *t, int f, const wf__mhisto *(*pick)(const wf__mslot *, int),
                      int arg, histo_sum *h)
{
    memset(h, 0, sizeof *h);
    int top = atomic_load(&t->nslots);
    for (int i = f; i < top && i < WF__METRICS_MAX_WORKFLOWS; i++) {
        if (atomic_load(&t->slot[i].state) != WF__SLOT_READY ||
            strcmp(t->slot[i].name, t->slot[f].name) != 0)
            continue;
        const wf__mhisto *x = pick(&t->slot[i], arg);
        for (int b = 0; b < WF__METRICS_NBUCKETS; b++) h->bucket[b] += atomic_load(&x->bucket[b]);
        h->sum_ms += atomic_load(&x->sum_ms);
        h->count += atomic_load(&x->count);
    }
}

static const wf__mhisto *pick_run(const wf__mslot *s, int arg)
{
    (void)arg;
    return &s->run;
}

static const wf__mhisto *pick_step(const wf__mslot *s, int arg)
{
    (void)arg;
    return &s->step;
}

static const wf__mhisto *pick_attempt(const wf__mslot *s, int outcome)
{
    return &s->attempt[outcome];
}

/* One histogram series; `labels` (e.g. workflow="w",outcome="completed") is printed as is. */
static void render_histo(struct evbuffer *out, const char *name, const char *labels,
                         const histo_sum *h)
{
    long long cum = 0;
    for (int b = 0; b < WF__METRICS_NBUCKETS; b++) {
        cum += h->bucket[b];
        if (b < WF__METRICS_NBUCKETS - 1)
            evbuffer_add_printf(out, "%s_bucket{%s,le=\"%g\"} %lld\n", name, labels,
                                (double)wf__metrics_bounds_ms[b] / 1000.0, cum);
        else
            evbuffer_add_printf(out, "%s_bucket{%s,le=\"+Inf\"} %lld\n", name, labels, cum);
    }
    evbuffer_add_printf(out, "%s_sum{%s} %.3f\n", name, labels, (double)h->sum_ms / 1000.0);
    evbuffer_add_printf(out, "%s_count{%s} %lld\n", name, labels, h->count);
}

/* The histogram `name` of every workflow, from the slot member `pick` chooses. */
static void render_histos(struct evbuffer *out, const wf__mtable *t, const int *first, int n,
                          const char *name, const wf__mhisto *(*pick)(const wf__mslot *, int))
{
    for (int k = 0; k < n; k++) {
        char labels[WF__NAME_MAX + 32];
        snprintf(labels, sizeof labels, "workflow=\"%s\"", t->slot[first[k]].name);
        histo_sum h;
        sum_histo(t, first[k], pick, 0, &h);
        render_histo(out, name, labels, &h);
    }
}

/* ---- Process metrics ------------------------------------------------------------------------ */

/* Seconds since the epoch when the machine booted ("btime" of /proc/stat); -1 if unknown. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[256];
    long long btime = -1;
    while (btime < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) btime = strtoll(line + 6, NULL, 10);
    fclose(f);
    return btime;
}

/* Open descriptors: the entries of /proc/self/fd (the one reading it included, as in the Go
 * client); -1 if unreadable. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* The process_* family of the Prometheus client libraries (names, types and units as theirs);
 * a metric whose source cannot be read is left out rather than reported as 0. */
/* What /proc/PID/stat says of a process (PID 0: this one). */
typedef struct pstat {
    double cpu_s;        /* user + system */
    long long rss_bytes; /* resident */
    unsigned long vsize; /* virtual, bytes */
    double start_s;      /* since the epoch; -1 unknown */
} pstat;

/* Fills `ps`; 0, or -1 when the file cannot be read or parsed. The fields after "(comm)" start
 * with the state (field 3); utime and stime are fields 14 and 15 in clock ticks, starttime 22 in
 * ticks after boot, vsize 23 in bytes, rss 24 in pages. comm may hold spaces and parentheses:
 * parse from the last ')'. */
static int read_pstat(long pid, pstat *ps)
{
    char path[64], buf[1024] = "";
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    else
        snprintf(path, sizeof path, "/proc/self/stat");
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long start = 0;
    long rss = 0;
    int got = p ? sscanf(p + 1,
                         " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
                         "%*d %llu %lu %ld",
                         &utime, &stime, &start, &vsize, &rss)
                : 0;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (got != 5 || ticks <= 0) return -1;
    ps->cpu_s = (double)(utime + stime) / (double)ticks;
    ps->rss_bytes = (long long)rss * (page > 0 ? page : 4096);
    ps->vsize = vsize;
    long long btime = boot_time();
    ps->start_s = btime >= 0 ? (double)btime + (double)start / (double)ticks : -1;
    return 0;
}

/* The process_* family of the Prometheus client libraries (names, types and units as theirs),
 * of the process serving the scrape; a metric whose source cannot be read is left out rather
 * than reported as 0. */
static void render_process(struct evbuffer *out)
{
    pstat ps;
    if (read_pstat(0, &ps) == 0) {
        header(out, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        evbuffer_add_printf(out, "process_cpu_seconds_total %.2f\n", ps.cpu_s);
        header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        evbuffer_add_printf(out, "process_resident_memory_bytes %lld\n", ps.rss_bytes);
        header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        evbuffer_add_printf(out, "process_virtual_memory_bytes %lu\n", ps.vsize);
        if (ps.start_s >= 0) {
            header(out, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
            evbuffer_add_printf(out, "process_start_time_seconds %.2f\n", ps.start_s);
        }
    }
    long fds = open_fds();
    if (fds >= 0) {
        header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
        evbuffer_add_printf(out, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        header(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        if (rl.rlim_cur == RLIM_INFINITY)
            evbuffer_add_printf(out, "process_max_fds +Inf\n");
        else
            evbuffer_add_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

/* ---- The exposition -------------------------------------------------------------------------- */

static void render_counters(struct evbuffer *out, const wf__mtable *t, const int *first, int n)
{
    for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
        header(out, counters[k].name, "counter", counters[k].help);
        for (int i = 0; i < n; i++)
            evbuffer_add_printf(out, "%s{workflow=\"%s\"} %lld\n", counters[k].name,
                                t->slot[first[i]].name, count_of(t, first[i], counters[k].c));
    }
    header(out, "wf_webhook_deliveries_total", "counter",
           "Webhook notification attempts by result (delivered: 2xx; retried: failed, tried "
           "again later; dead: given up).");
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof hook_results / sizeof hook_results[0]; k++)
            evbuffer_add_printf(out,
                                "wf_webhook_deliveries_total{workflow=\"%s\",result=\"%s\"} "
                                "%lld\n",
                                t->slot[first[i]].name, hook_results[k].result,
                                count_of(t, first[i], hook_results[k].c));
}

static void render_durations(struct evbuffer *out, const wf__mtable *t, const int *first, int n)
{
    /* Only the outcomes seen so far get a series, as the Prometheus client libraries do with
     * label values: seven outcomes times every workflow would be mostly zeros. */
    header(out, "wf_attempt_duration_seconds", "histogram",
           "Duration of attempts from claim to their end, by outcome (completed, failed, retried, "
           "terminated, suspended, cancelled, released).");
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < WF__O_COUNT; o++) {
            histo_sum h;
            sum_histo(t, first[i], pick_attempt, o, &h);
            if (h.count == 0) continue;
            char labels[WF__NAME_MAX + 64];
            snprintf(labels, sizeof labels, "workflow=\"%s\",outcome=\"%s\"",
                     t->slot[first[i]].name, outcome_names[o]);
            render_histo(out, "wf_attempt_duration_seconds", labels, &h);
        }
    }
    header(out, "wf_run_duration_seconds", "histogram",
           "Deprecated: use wf_attempt_duration_seconds, which adds an outcome label; removed in "
           "the next release. Attempts from claim to the confirmed end (completed, failed, "
           "retried, terminated).");
    render_histos(out, t, first, n, "wf_run_duration_seconds", pick_run);
    header(out, "wf_step_duration_seconds", "histogram",
           "Duration of durable step bodies (wf_step_run) executed by this process.");
    render_histos(out, t, first, n, "wf_step_duration_seconds", pick_step);
}

/* The live section holding slot `k`'s queue gauges (its process holds the workflow's gauge
 * lease, ops.c), or NULL. */
static const wf__mproc *gauge_holder(const wf__mtable *t, int k)
{
    for (int p = 0; p < t->nprocs; p++)
        if (atomic_load(&t->proc[p].pid) && atomic_load(&t->proc[p].wf[k].depth) >= 0)
            return &t->proc[p];
    return NULL;
}

/* A workflow's queue gauges come from the one process that holds its gauge lease: they describe
 * Redis, not a process, so the deployment exports each series once. */
static void render_queue(struct evbuffer *out, const wf__mtable *t, const int *first, int n)
{
    static const char *const names[2] = {"wf_queue_depth", "wf_queue_oldest_age_seconds"};
    static const char *const helps[2] = {
        "Ready runs not yet claimed (XLEN of the queue, all priorities), refreshed every second; "
        "exported by one worker process of the deployment (the gauge lease holder).",
        "How long the oldest queued run has waited (Redis time), refreshed every second; "
        "exported by one worker process of the deployment."};
    for (int g = 0; g < 2; g++) {
        header(out, names[g], "gauge", helps[g]);
        for (int i = 0; i < n; i++) {
            const wf__mproc *m = gauge_holder(t, first[i]);
            if (!m) continue;
            double v = g == 0 ? (double)atomic_load(&m->wf[first[i]].depth)
                              : (double)atomic_load(&m->wf[first[i]].oldest_ms) / 1000.0;
            evbuffer_add_printf(
                out, g == 0 ? "%s{workflow=\"%s\"} %.0f\n" : "%s{workflow=\"%s\"} %.3f\n", names[g],
                t->slot[first[i]].name, v);
        }
    }
}

/* CPU (`rss` 0) or resident memory (1) of each live worker process, read from /proc. */
static void per_process(struct evbuffer *out, const wf__mtable *t, int rss)
{
    const char *name =
        rss ? "wf_worker_process_resident_memory_bytes" : "wf_worker_process_cpu_seconds_total";
    header(out, name, rss ? "gauge" : "counter",
           rss ? "Resident memory of each worker process (process: its slot, 0..N-1)."
               : "User and system CPU time of each worker process (process: its slot, 0..N-1).");
    for (int p = 0; p < t->nprocs; p++) {
        pstat ps;
        long pid = atomic_load(&t->proc[p].pid);
        if (!pid || read_pstat(pid, &ps) != 0) continue;
        if (rss)
            evbuffer_add_printf(out, "%s{process=\"%d\"} %lld\n", name, p, ps.rss_bytes);
        else
            evbuffer_add_printf(out, "%s{process=\"%d\"} %.2f\n", name, p, ps.cpu_s);
    }
}

/* The gauges of the live process sections, added up (in flight, slots), the worst of them
 * (round trip), or all of them (ready). */
static void render_procs(struct evbuffer *out, const wf__mtable *t, const int *first, int n,
                         int supervisor)
{
    header(out, "wf_runs_in_flight", "gauge", "Handlers executing now.");
    for (int i = 0; i < n; i++) {
        long long sum = 0;
        for (int p = 0; p < t->nprocs; p++)
            if (atomic_load(&t->proc[p].pid))
                sum += atomic_load(&t->proc[p].wf[first[i]].in_flight);
        evbuffer_add_printf(out, "wf_runs_in_flight{workflow=\"%s\"} %lld\n",
                            t->slot[first[i]].name, sum);
    }
    int live = 0, ready = 0;
    long long slots = 0, rtt = -1;
    for (int p = 0; p < t->nprocs; p++) {
        const wf__mproc *m = &t->proc[p];
        if (!atomic_load(&m->pid)) continue;
        live++;
        ready += atomic_load(&m->ready) != 0;
        slots += atomic_load(&m->concurrency);
        long long r = atomic_load(&m->rtt_us);
        if (r > rtt) rtt = r;
    }
    header(out, "wf_redis_rtt_seconds", "gauge",
           "Round trip of the last TIME command sent to Redis (the slowest worker process).");
    if (rtt >= 0) evbuffer_add_printf(out, "wf_redis_rtt_seconds %.6f\n", (double)rtt / 1e6);
    header(out, "wf_worker_concurrency", "gauge", "Executor slots of the worker processes.");
    evbuffer_add_printf(out, "wf_worker_concurrency %lld\n", slots);
    header(out, "wf_worker_ready", "gauge",
           "1 when every worker process is ready (Redis connections up, scripts answer, not "
           "draining): GET /readyz answers 200.");
    evbuffer_add_printf(out, "wf_worker_ready %d\n", live > 0 && ready == live);
    if (!supervisor) return;
    header(out, "wf_worker_processes", "gauge",
           "Worker processes running under this supervisor, by whether they are ready.");
    evbuffer_add_printf(out, "wf_worker_processes{ready=\"true\"} %d\n", ready);
    evbuffer_add_printf(out, "wf_worker_processes{ready=\"false\"} %d\n", live - ready);
    per_process(out, t, 0);
    per_process(out, t, 1);
}

/* Workflow names are [A-Za-z0-9._-] (wf__name_valid), so they need no escaping in labels. */
void wf__metrics_render(struct evbuffer *out, int supervisor)
{
    header(out, "wf_build_info", "gauge",
           "Always 1; the labels say which wf built this worker (version) and which Redis key "
           "schema it speaks (schema, checked against P:schema at connect).");
    evbuffer_add_printf(out, "wf_build_info{version=\"%s\",schema=\"%d\"} 1\n", WF_VERSION,
                        WF__SCHEMA_VERSION);
    render_process(out);
    const wf__mtable *t = wf__metrics_table();
    if (!t) return;
    int first[WF__METRICS_MAX_WORKFLOWS];
    int n = names(t, first);
    render_counters(out, t, first, n);
    render_durations(out, t, first, n);
    render_queue(out, t, first, n);
    render_procs(out, t, first, n, supervisor);
}

int wf__metrics_not_ready(char *why, size_t len)
{
    const wf__mtable *t = wf__metrics_table();
    int live = 0, ready = 0;
    for (int p = 0; t && p < t->nprocs; p++) {
        if (!atomic_load(&t->proc[p].pid)) continue;
        live++;
        ready += atomic_load(&t->proc[p].ready) != 0;
    }
    if (live > 0 && ready == live) return 0;
    snprintf(why, len, "%d of %d worker process%s ready", ready, t ? t->nprocs : 0,
             t && t->nprocs == 1 ? "" : "es");
    return 1;
}
