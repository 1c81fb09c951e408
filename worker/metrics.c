/* metrics.c - the worker's Prometheus metrics table: counters and duration histograms per
 * workflow, and one section of gauges per worker process. Executor threads observe step
 * durations, the loop the rest; metrics_render.c turns the table into the text exposition.
 *
 * Design
 * ------
 * The table is a block of atomics. In a lone process (wf-worker --processes 0, or a program that
 * embeds the pool) it is private memory. Under the supervisor (wf-worker --processes N) the
 * supervisor maps it MAP_SHARED before it forks (wf__metrics_share), so every worker process
 * adds into the same counters and the supervisor serves one /metrics for the host: counters are
 * the host's totals, they survive a process that dies or is recycled, and Prometheus scrapes
 * one target per host rather than one port per process. Atomics on a shared anonymous mapping
 * are lock-free across processes on Linux, the same as across threads.
 *
 * Slots are claimed once per workflow name and never released. A claim takes a slot with a
 * compare-and-swap (free -> claiming), writes the name, then publishes it (ready); readers skip
 * slots that are not ready. Two processes that claim the same new name at once get two slots;
 * the renderer adds up slots of one name, so nothing is counted twice or lost. The supervisor
 * claims every registered workflow before it forks, so in practice that never happens.
 *
 * Each process writes its own gauge section (runs in flight, readiness, a workflow's queue
 * gauges when it holds that workflow's gauge lease: ops.c) about every 100 ms; the supervisor
 * clears the section of a process that exited, so a killed process's gauges do not linger.
 * Durations are measured in milliseconds and exposed in seconds, in fixed buckets from 5 ms to 5
 * min.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "metrics_table.h"
#include "wf_worker_internal.h"

static wf__mtable *table;           /* private until wf__metrics_share maps a shared one */
static wf__mtable *retired_private; /* kept reachable when a shared table replaced it */
static int my_proc;                 /* this process's gauge section */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t claim_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int full_logged;

static size_t table_size(int nprocs)
{
    return sizeof(wf__mtable) + (size_t)nprocs * sizeof(wf__mproc);
}

/* A section with no process behind it: no gauges, depths unknown. */
static void section_reset(wf__mproc *p)
{
    atomic_store(&p->pid, 0);
    atomic_store(&p->ready, 0);
    atomic_store(&p->concurrency, 0);
    atomic_store(&p->rtt_us, -1);
    for (int i = 0; i < WF__METRICS_MAX_WORKFLOWS; i++) {
        atomic_store(&p->wf[i].in_flight, 0);
        atomic_store(&p->wf[i].depth, -1);
    }
}

static void table_init(wf__mtable *t, int nprocs)
{
    t->nprocs = nprocs;
    for (int p = 0; p < nprocs; p++) section_reset(&t->proc[p]);
}

static void make_private(void)
{
    if (table) return; /* wf__metrics_share came first */
    wf__mtable *t = calloc(1, table_size(1));
    if (t) table_init(t, 1);
    table = t;
}

wf__mtable *wf__metrics_table(void)
{
    pthread_once(&table_once, make_private);
    return table;
}

int wf__metrics_share(int nprocs, wf_error *err)
{
    if (nprocs < 1) nprocs = 1;
    void *m =
        mmap(NULL, table_size(nprocs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return wf_error_set(err, WF_ERR_SYSTEM, "cannot map the shared metrics table: %s",
                            strerror(errno));
    table_init(m, nprocs);
    /* A private table made before (nothing should have touched one yet) stays allocated and
     * reachable: slot pointers into it may have been handed out. */
    retired_private = table;
    table = m;
    pthread_once(&table_once, make_private); /* now a no-op: it never replaces the shared one */
    return WF_OK;
}

void wf__metrics_set_process(int index)
{
    wf__mtable *t = wf__metrics_table();
    if (t && index >= 0 && index < t->nprocs) my_proc = index;
}

static wf__mproc *my_section(void)
{
    wf__mtable *t = wf__metrics_table();
    return t ? &t->proc[my_proc] : NULL;
}

void wf__metrics_clear_proc(int index)
{
    wf__mtable *t = wf__metrics_table();
    if (t && index >= 0 && index < t->nprocs) section_reset(&t->proc[index]);
}

static wf__mslot *lookup(wf__mtable *t, const char *workflow)
{
    int n = atomic_load_explicit(&t->nslots, memory_order_acquire);
    for (int i = 0; i < n && i < WF__METRICS_MAX_WORKFLOWS; i++)
        if (atomic_load_explicit(&t->slot[i].state, memory_order_acquire) == WF__SLOT_READY &&
            strcmp(t->slot[i].name, workflow) == 0)
            return &t->slot[i];
    return NULL;
}

/* Takes the first free slot for `workflow` (see the design comment). Threads of this process
 * are serialised by claim_mu, so one process never claims a name twice. */
static wf__mslot *claim(wf__mtable *t, const char *workflow)
{
    pthread_mutex_lock(&claim_mu);
    wf__mslot *s = lookup(t, workflow);
    for (int i = 0; !s && i < WF__METRICS_MAX_WORKFLOWS; i++) {
        int free_state = WF__SLOT_FREE;
        if (!atomic_compare_exchange_strong(&t->slot[i].state, &free_state, WF__SLOT_CLAIMING))
            continue;
        snprintf(t->slot[i].name, sizeof t->slot[i].name, "%s", workflow);
        atomic_store_explicit(&t->slot[i].state, WF__SLOT_READY, memory_order_release);
        int n = atomic_load(&t->nslots);
        while (n < i + 1 && !atomic_compare_exchange_weak(&t->nslots, &n, i + 1)) {
        }
        s = &t->slot[i];
    }
    pthread_mutex_unlock(&claim_mu);
    return s;
}

wf__mslot *wf__metrics_slot(const char *workflow, int create)
{
    wf__mtable *t = wf__metrics_table();
    if (!t || !workflow) return NULL;
    wf__mslot *s = lookup(t, workflow);
    if (s || !create) return s;
    s = claim(t, workflow);
    if (!s && !atomic_exchange(&full_logged, 1))
        wf__log(WF__LOG_WARN,
                "metrics: more than %d workflows; '%s' and later ones are not measured",
                WF__METRICS_MAX_WORKFLOWS, workflow);
    return s;
}

void wf__metrics_slot_claim(const char *workflow)
{
    (void)wf__metrics_slot(workflow, 1);
}

void wf__metrics_inc(const char *workflow, wf__counter c, long long n)
{
    wf__mslot *s = wf__metrics_slot(workflow, 1);
    if (s && (unsigned)c < WF__C_COUNT)
        atomic_fetch_add_explicit(&s->counter[c], n, memory_order_relaxed);
}

static void observe(wf__mhisto *h, int64_t ms)
{
    if (ms < 0) ms = 0;
    int b = 0;
    while (b < WF__METRICS_NBUCKETS - 1 && ms > wf__metrics_bounds_ms[b]) b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ms, ms, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void wf__metrics_run_ms(const char *workflow, int64_t ms)
{
    wf__mslot *s = wf__metrics_slot(workflow, 1);
    if (s) observe(&s->run, ms);
}

void wf__metrics_step_ms(const char *workflow, int64_t ms)
{
    wf__mslot *s = wf__metrics_slot(workflow, 1);
    if (s) observe(&s->step, ms);
}

void wf__metrics_attempt_end(wf__job *job, wf__outcome outcome)
{
    if (job->observed || (unsigned)outcome >= WF__O_COUNT) return;
    job->observed = 1;
    wf__mslot *s = wf__metrics_slot(job->workflow, 1);
    if (s) observe(&s->attempt[outcome], wf__mono_ms() - job->claimed_mono);
}

/* Runs whose handler is executing now, per workflow. */
static int in_flight(const wf_worker *w, const wf__wdef *def)
{
    int n = 0;
    for (const wf__job *j = w->jobs.head; j; j = j->next)
        if (j->def == def && j->dispatched && !j->returned) n++;
    return n;
}

void wf__metrics_publish(wf_worker *w)
{
    wf__mtable *t = wf__metrics_table();
    wf__mproc *p = my_section();
    wf__ops *ops = w->ops;
    if (!t || !p || !ops || !ops->gauges) return;
    atomic_store(&p->pid, (int)getpid());
    atomic_store(&p->ready, wf__ops_not_ready(w) == NULL);
    atomic_store(&p->concurrency, w->opt.concurrency);
    atomic_store(&p->rtt_us, ops->rtt_s < 0 ? -1 : (long long)(ops->rtt_s * 1e6));
    for (int i = 0; i < w->ndefs; i++) {
        wf__mslot *s = wf__metrics_slot(w->defs[i]->name, 1);
        if (!s) continue;
        int k = (int)(s - t->slot);
        atomic_store(&p->wf[k].in_flight, in_flight(w, w->defs[i]));
        atomic_store(&p->wf[k].depth, ops->gauges[i].leader ? ops->gauges[i].depth : -1);
        atomic_store(&p->wf[k].oldest_ms, (long long)(ops->gauges[i].oldest_age_s * 1000.0));
    }
}
