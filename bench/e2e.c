/* e2e.c - the end-to-end scenarios: queued runs drained by real wf-worker processes (drain,
 * scale, many) and an idle worker (idle).
 *
 * A drain queues all its runs first (wf_run_workflow_batch), then starts the worker and times
 * it until the last run is completed, so enqueue and consumption are measured apart: Redis CPU
 * during the drain window is the cost of claim + finish (plus the worker's XREADGROUP and idle
 * polling, which are part of that cost), memory after the drain is what finished runs keep.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_bench.h"

static void sample_tick(void *arg)
{
    bench_worker_sample(arg);
}

/* What a drain measured. */
typedef struct drain_result {
    double rps;          /* runs / (last completed - worker started) */
    double steady_rps;   /* the last 80% of the runs / the time they took */
    double redis_cpu_s;  /* Redis CPU during the drain */
    double worker_cpu_s; /* supervisor + children CPU, start to last completed */
    long rss_max_kb;     /* largest VmRSS of one worker child during the drain */
} drain_result;

/* Starts a worker on `dir` (with `env`), waits for `target` completed runs of `workflow` (or of
 * nwf workflows "workflow%03d"), stops the worker unless `keep` is given (then the caller stops
 * it). */
static drain_result drain(const bench_opts *o, redisContext *c, const char *dir, const char *env,
                          const char *workflow, int nwf, long target, bench_worker *keep)
{
    drain_result d = {0};
    bench_worker local, *w = keep ? keep : &local;
    double cpu0 = bench_redis_cpu_s(c);
    int64_t t0 = bench_mono_us();
    bench_worker_start(w, o, dir, env, c, 0);
    int64_t t20 = 0;
    int64_t t1 = bench_wait_completed(c, workflow, nwf, target, sample_tick, w, &t20);
    d.redis_cpu_s = bench_redis_cpu_s(c) - cpu0;
    d.worker_cpu_s = bench_worker_cpu_s(w);
    bench_worker_sample(w);
    d.rss_max_kb = w->rss_max_kb;
    d.rps = (double)target / ((double)(t1 - t0) / 1e6);
    d.steady_rps = t1 > t20 && t20 ? 0.8 * (double)target / ((double)(t1 - t20) / 1e6) : d.rps;
    if (!keep) bench_worker_stop(w);
    return d;
}

/* Prints a drain's figures with key prefix `p`; `enq_cpu_s` is Redis CPU spent enqueueing. */
static void report_drain(const char *p, const drain_result *d, long n, double enq_cpu_s)
{
    char k[64];
    snprintf(k, sizeof k, "%s_rps", p);
    bench_out(k, d->rps);
    snprintf(k, sizeof k, "%s_steady_rps", p);
    bench_out(k, d->steady_rps);
    snprintf(k, sizeof k, "%s_redis_cpu_us", p);
    bench_out(k, d->redis_cpu_s * 1e6 / (double)n);
    snprintf(k, sizeof k, "%s_worker_cpu_s_per_1k", p);
    bench_out(k, d->worker_cpu_s * 1000 / (double)n);
    snprintf(k, sizeof k, "%s_redis_cpu_s_per_1k", p);
    bench_out(k, (d->redis_cpu_s + enq_cpu_s) * 1000 / (double)n);
    snprintf(k, sizeof k, "%s_worker_rss_kb", p);
    bench_out(k, (double)d->rss_max_kb);
}

int bench_drain(const bench_opts *o)
{
    long n = o->n ? o->n : 100000;
    wf_client *cl;
    redisContext *c = bench_warm(o, &cl);
    double m0 = bench_redis_mem_b(c), cpu0 = bench_redis_cpu_s(c);
    int64_t t0 = bench_mono_us();
    bench_fill(cl, o->workflow, n);
    int64_t t1 = bench_mono_us();
    double m1 = bench_redis_mem_b(c), enq_cpu = bench_redis_cpu_s(c) - cpu0;
    bench_out("fill_rps", (double)n / ((double)(t1 - t0) / 1e6));
    bench_out("fill_redis_cpu_us", enq_cpu * 1e6 / (double)n);
    bench_out("mem_per_queued_b", (m1 - m0) / (double)n);
    drain_result d = drain(o, c, o->workflows, NULL, o->workflow, 0, n, NULL);
    report_drain("drain", &d, n, enq_cpu);
    bench_out("mem_per_finished_b", (bench_redis_mem_b(c) - m0) / (double)n);
    return bench_done(cl, c);
}

int bench_idle(const bench_opts *o)
{
    redisContext *c = bench_redis(o);
    bench_reset(c, o->workflow);
    /* Redis's own idle cost first (its cron, hz 10: about 0.15% of a core here), over the same
     * window, so that what the worker adds can be told apart from it. */
    double b0 = bench_redis_cpu_s(c);
    bench_sleep_us((int64_t)(o->seconds * 1e6));
    double base = (bench_redis_cpu_s(c) - b0) / o->seconds * 100;
    bench_worker w;
    bench_worker_start(&w, o, o->workflows, NULL, c, 1);
    bench_sleep_us(1000000); /* let start-up allocations settle */
    double rc0 = bench_redis_cpu_s(c), wc0 = bench_worker_cpu_s(&w);
    bench_sleep_us((int64_t)(o->seconds * 1e6));
    double rc1 = bench_redis_cpu_s(c), wc1 = bench_worker_cpu_s(&w);
    double with = (rc1 - rc0) / o->seconds * 100;
    bench_out("idle_worker_rss_kb", (double)bench_worker_rss_kb(&w));
    bench_out("idle_redis_cpu_pct", with);
    bench_out("idle_redis_base_cpu_pct", base);
    bench_out("idle_redis_added_cpu_pct", with > base ? with - base : 0);
    bench_out("idle_worker_cpu_pct", (wc1 - wc0) / o->seconds * 100);
    bench_worker_stop(&w);
    redisFree(c);
    return 0;
}

int bench_scale(const bench_opts *o)
{
    long n = o->n ? o->n : 10000;
    wf_client *cl;
    redisContext *c = bench_warm(o, &cl);
    double m0 = bench_redis_mem_b(c);
    int64_t t0 = bench_mono_us();
    bench_fill(cl, o->workflow, n);
    int64_t t1 = bench_mono_us();
    bench_out("scale_fill_rps", (double)n / ((double)(t1 - t0) / 1e6));
    bench_out("scale_mem_per_queued_b", (bench_redis_mem_b(c) - m0) / (double)n);
    /* One call at a time on top of the backlog: does a deep queue slow enqueueing down? */
    wf_error err = {0};
    t0 = bench_mono_us();
    for (long i = 0; i < o->extra; i++) {
        wf_run *run = wf_run_workflow(cl, o->workflow, NULL, 0, &err);
        if (!run) bench_die("wf_run_workflow: %s", err.message);
        wf_run_free(run);
    }
    t1 = bench_mono_us();
    if (o->extra > 0) bench_out("scale_enqueue_rps", (double)o->extra / ((double)(t1 - t0) / 1e6));
    if (o->drain) {
        long total = n + o->extra;
        drain_result d = drain(o, c, o->workflows, NULL, o->workflow, 0, total, NULL);
        bench_out("scale_drain_rps", d.rps);
        bench_out("scale_drain_redis_cpu_us", d.redis_cpu_s * 1e6 / (double)total);
        bench_out("scale_mem_per_finished_b", (bench_redis_mem_b(c) - m0) / (double)total);
    }
    return bench_done(cl, c);
}

int bench_many(const bench_opts *o)
{
    int k = o->count;
    long n = o->n ? o->n : 20000, per = n / k;
    n = per * k;
    redisContext *c = bench_redis(o);
    bench_reset(c, NULL);
    char name[32];
    for (int i = 0; i < k; i++) {
        snprintf(name, sizeof name, "many%03d", i);
        bench_register(c, name);
    }
    wf_client *cl = bench_client(o);
    double m0 = bench_redis_mem_b(c), cpu0 = bench_redis_cpu_s(c);
    for (int i = 0; i < k; i++) {
        snprintf(name, sizeof name, "many%03d", i);
        bench_fill(cl, name, per);
    }
    double enq_cpu = bench_redis_cpu_s(c) - cpu0;
    bench_out("many_mem_per_queued_b", (bench_redis_mem_b(c) - m0) / (double)n);
    char env[48];
    snprintf(env, sizeof env, "WF_BENCH_WORKFLOWS=%d", k);
    bench_worker w;
    drain_result d = drain(o, c, o->workflows, env, "many", k, n, &w);
    report_drain("many", &d, n, enq_cpu);
    /* The same worker, now idle: what does waiting on k workflows cost? */
    double rc0 = bench_redis_cpu_s(c), wc0 = bench_worker_cpu_s(&w);
    bench_sleep_us(2000000);
    double rc1 = bench_redis_cpu_s(c), wc1 = bench_worker_cpu_s(&w);
    bench_out("many_idle_redis_cpu_pct", (rc1 - rc0) / 2.0 * 100);
    bench_out("many_idle_worker_cpu_pct", (wc1 - wc0) / 2.0 * 100);
    bench_worker_stop(&w);
    return bench_done(cl, c);
}
