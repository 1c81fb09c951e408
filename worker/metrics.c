/* metrics.c - the worker's Prometheus metrics: counters and duration histograms per workflow,
 * kept in a process-wide table of atomics (executor threads observe step durations, the loop the
 * rest), and the text exposition format (version 0.0.4) that GET /metrics answers with; also
 * wf_build_info and the standard process_* metrics, read from /proc/self at each scrape as the
 * Prometheus client libraries do.
 *
 * The table has a fixed number of slots that are claimed once per workflow name and never
 * released, so a slot found by one thread stays valid for every other without a lock; only
 * claiming a new slot takes the mutex. Durations are measured in milliseconds and exposed in
 * seconds, in fixed buckets from 5 ms to 5 min.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "wf_worker_internal.h"

#define MAX_WORKFLOWS 512

/* Bucket upper bounds in ms; a last implicit bucket is +Inf. */
static const int64_t bounds_ms[] = {5,    10,   25,   50,    100,   250,   500,
                                    1000, 2500, 5000, 10000, 30000, 60000, 300000};
#define NBUCKETS ((int)(sizeof bounds_ms / sizeof bounds_ms[0]) + 1)

typedef struct histo {
    atomic_llong bucket[NBUCKETS]; /* not cumulative; summed when rendered */
    atomic_llong sum_ms;
    atomic_llong count;
} histo;

typedef struct slot {
    char name[WF__NAME_MAX + 1]; /* written once before `nslots` publishes the slot */
    atomic_llong counter[WF__C_COUNT];
    histo run;                  /* deprecated wf_run_duration_seconds (no outcome label) */
    histo attempt[WF__O_COUNT]; /* wf_attempt_duration_seconds by outcome */
    histo step;
} slot;

/* The `outcome` label values, indexed by wf__outcome. */
static const char *const outcome_names[WF__O_COUNT] = {
    [WF__O_COMPLETED] = "completed", [WF__O_FAILED] = "failed",
    [WF__O_RETRIED] = "retried",     [WF__O_TERMINATED] = "terminated",
    [WF__O_SUSPENDED] = "suspended", [WF__O_CANCELLED] = "cancelled",
    [WF__O_RELEASED] = "released",
};

static slot slots[MAX_WORKFLOWS];
static atomic_int nslots;
static pthread_mutex_t claim_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int full_logged;

static slot *find(const char *workflow, int create)
{
    if (!workflow) return NULL;
    int n = atomic_load_explicit(&nslots, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(slots[i].name, workflow) == 0) return &slots[i];
    if (!create) return NULL;
    pthread_mutex_lock(&claim_mu);
    slot *s = NULL;
    n = atomic_load_explicit(&nslots, memory_order_relaxed);
    for (int i = 0; i < n && !s; i++)
        if (strcmp(slots[i].name, workflow) == 0) s = &slots[i];
    if (!s && n < MAX_WORKFLOWS) {
        s = &slots[n];
        snprintf(s->name, sizeof s->name, "%s", workflow);
        atomic_store_explicit(&nslots, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&claim_mu);
    if (!s && !atomic_exchange(&full_logged, 1))
        wf__log(WF__LOG_WARN,
                "metrics: more than %d workflows in this process; '%s' and later "
                "ones are not measured",
                MAX_WORKFLOWS, workflow);
    return s;
}

void wf__metrics_inc(const char *workflow, wf__counter c, long long n)
{
    slot *s = find(workflow, 1);
    if (s && (unsigned)c < WF__C_COUNT)
        atomic_fetch_add_explicit(&s->counter[c], n, memory_order_relaxed);
}

static void observe(histo *h, int64_t ms)
{
    if (ms < 0) ms = 0;
    int b = 0;
    while (b < NBUCKETS - 1 && ms > bounds_ms[b]) b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ms, ms, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void wf__metrics_run_ms(const char *workflow, int64_t ms)
{
    slot *s = find(workflow, 1);
    if (s) observe(&s->run, ms);
}

void wf__metrics_step_ms(const char *workflow, int64_t ms)
{
    slot *s = find(workflow, 1);
    if (s) observe(&s->step, ms);
}

void wf__metrics_attempt_end(wf__job *job, wf__outcome outcome)
{
    if (job->observed || (unsigned)outcome >= WF__O_COUNT) return;
    job->observed = 1;
    slot *s = find(job->workflow, 1);
    if (s) observe(&s->attempt[outcome], wf__mono_ms() - job->claimed_mono);
}

/* ---- Rendering ------------------------------------------------------------------------------ */

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

static long long count_of(slot *s, wf__counter c)
{
    return s ? atomic_load(&s->counter[c]) : 0;
}

/* One histogram series; `labels` (e.g. workflow="w",outcome="completed") is printed as is. */
static void render_histo(struct evbuffer *out, const char *name, const char *labels, histo *h)
{
    long long cum = 0;
    for (int b = 0; b < NBUCKETS; b++) {
        if (h) cum += atomic_load(&h->bucket[b]);
        if (b < NBUCKETS - 1)
            evbuffer_add_printf(out, "%s_bucket{%s,le=\"%g\"} %lld\n", name, labels,
                                (double)bounds_ms[b] / 1000.0, cum);
        else
            evbuffer_add_printf(out, "%s_bucket{%s,le=\"+Inf\"} %lld\n", name, labels, cum);
    }
    long long sum = h ? atomic_load(&h->sum_ms) : 0;
    long long n = h ? atomic_load(&h->count) : 0;
    evbuffer_add_printf(out, "%s_sum{%s} %.3f\n", name, labels, (double)sum / 1000.0);
    evbuffer_add_printf(out, "%s_count{%s} %lld\n", name, labels, n);
}

/* The histogram `name` of every workflow of `w`, from the slot member `which` picks. */
static void render_histos(struct evbuffer *out, wf_worker *w, const char *name,
                          histo *(*which)(slot *s))
{
    for (int i = 0; i < w->ndefs; i++) {
        char labels[WF__NAME_MAX + 32];
        snprintf(labels, sizeof labels, "workflow=\"%s\"", w->defs[i]->name);
        slot *s = find(w->defs[i]->name, 0);
        render_histo(out, name, labels, s ? which(s) : NULL);
    }
}

static histo *run_of(slot *s)
{
    return &s->run;
}

static histo *step_of(slot *s)
{
    return &s->step;
}

/* Runs whose handler is executing now, per workflow. */
static int in_flight(const wf_worker *w, const wf__wdef *def)
{
    int n = 0;
    for (const wf__job *j = w->jobs.head; j; j = j->next)
        if (j->def == def && j->dispatched && !j->returned) n++;
    return n;
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
static void render_process(struct evbuffer *out)
{
    /* /proc/self/stat: the fields after "(comm)" start with the state (field 3); utime and stime
     * are fields 14 and 15 in clock ticks, starttime 22 in ticks after boot, vsize 23 in bytes,
     * rss 24 in pages. comm may hold spaces and parentheses: parse from the last ')'. */
    char buf[1024] = "";
    FILE *f = fopen("/proc/self/stat", "r");
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
    if (got == 5 && ticks > 0) {
        header(out, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        evbuffer_add_printf(out, "process_cpu_seconds_total %.2f\n",
                            (double)(utime + stime) / (double)ticks);
        header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        evbuffer_add_printf(out, "process_resident_memory_bytes %lld\n",
                            (long long)rss * (page > 0 ? page : 4096));
        header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        evbuffer_add_printf(out, "process_virtual_memory_bytes %lu\n", vsize);
        long long btime = boot_time();
        if (btime >= 0) {
            header(out, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
            evbuffer_add_printf(out, "process_start_time_seconds %.2f\n",
                                (double)btime + (double)start / (double)ticks);
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

/* Workflow names are [A-Za-z0-9._-] (wf__name_valid), so they need no escaping in labels. */
void wf__metrics_render(wf_worker *w, struct evbuffer *out)
{
    header(out, "wf_build_info", "gauge",
           "Always 1; the labels say which wf built this worker (version) and which Redis key "
           "schema it speaks (schema, checked against P:schema at connect).");
    evbuffer_add_printf(out, "wf_build_info{version=\"%s\",schema=\"%d\"} 1\n", WF_VERSION,
                        WF__SCHEMA_VERSION);
    render_process(out);

    int n = w->ndefs;
    for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
        header(out, counters[k].name, "counter", counters[k].help);
        for (int i = 0; i < n; i++)
            evbuffer_add_printf(out, "%s{workflow=\"%s\"} %lld\n", counters[k].name,
                                w->defs[i]->name,
                                count_of(find(w->defs[i]->name, 0), counters[k].c));
    }
    header(out, "wf_webhook_deliveries_total", "counter",
           "Webhook notification attempts by result (delivered: 2xx; retried: failed, tried "
           "again later; dead: given up).");
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof hook_results / sizeof hook_results[0]; k++)
            evbuffer_add_printf(out,
                                "wf_webhook_deliveries_total{workflow=\"%s\",result=\"%s\"} %lld\n",
                                w->defs[i]->name, hook_results[k].result,
                                count_of(find(w->defs[i]->name, 0), hook_results[k].c));

    /* Only the outcomes seen so far get a series, as the Prometheus client libraries do with
     * label values: seven outcomes times every workflow would be mostly zeros. */
    header(out, "wf_attempt_duration_seconds", "histogram",
           "Duration of attempts from claim to their end, by outcome (completed, failed, retried, "
           "terminated, suspended, cancelled, released).");
    for (int i = 0; i < n; i++) {
        slot *s = find(w->defs[i]->name, 0);
        for (int o = 0; s && o < WF__O_COUNT; o++) {
            if (atomic_load(&s->attempt[o].count) == 0) continue;
            char labels[WF__NAME_MAX + 64];
            snprintf(labels, sizeof labels, "workflow=\"%s\",outcome=\"%s\"", w->defs[i]->name,
                     outcome_names[o]);
            render_histo(out, "wf_attempt_duration_seconds", labels, &s->attempt[o]);
        }
    }
    header(out, "wf_run_duration_seconds", "histogram",
           "Deprecated: use wf_attempt_duration_seconds, which adds an outcome label; removed in "
           "the next release. Attempts from claim to the confirmed end (completed, failed, "
           "retried, terminated).");
    render_histos(out, w, "wf_run_duration_seconds", run_of);
    header(out, "wf_step_duration_seconds", "histogram",
           "Duration of durable step bodies (wf_step_run) executed by this process.");
    render_histos(out, w, "wf_step_duration_seconds", step_of);

    wf__ops *ops = w->ops;
    header(
        out, "wf_queue_depth", "gauge",
        "Ready runs not yet claimed (XLEN of the queue, all priorities), refreshed every second.");
    for (int i = 0; i < n; i++)
        if (ops->gauges[i].depth >= 0)
            evbuffer_add_printf(out, "wf_queue_depth{workflow=\"%s\"} %lld\n", w->defs[i]->name,
                                ops->gauges[i].depth);
    header(out, "wf_queue_oldest_age_seconds", "gauge",
           "How long the oldest queued run has waited (Redis time), refreshed every second.");
    for (int i = 0; i < n; i++)
        if (ops->gauges[i].depth >= 0)
            evbuffer_add_printf(out, "wf_queue_oldest_age_seconds{workflow=\"%s\"} %.3f\n",
                                w->defs[i]->name, ops->gauges[i].oldest_age_s);
    header(out, "wf_runs_in_flight", "gauge", "Handlers executing in this process now.");
    for (int i = 0; i < n; i++)
        evbuffer_add_printf(out, "wf_runs_in_flight{workflow=\"%s\"} %d\n", w->defs[i]->name,
                            in_flight(w, w->defs[i]));
    header(out, "wf_redis_rtt_seconds", "gauge",
           "Round trip of the last TIME command sent to Redis on the command connection.");
    if (ops->rtt_s >= 0) evbuffer_add_printf(out, "wf_redis_rtt_seconds %.6f\n", ops->rtt_s);
    header(out, "wf_worker_concurrency", "gauge", "Executor slots of this process.");
    evbuffer_add_printf(out, "wf_worker_concurrency %d\n", w->opt.concurrency);
    header(out, "wf_worker_ready", "gauge",
           "1 when GET /readyz answers 200 (Redis connections up, scripts answer, not draining).");
    evbuffer_add_printf(out, "wf_worker_ready %d\n", wf__ops_not_ready(w) == NULL);
}
