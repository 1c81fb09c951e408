/* enqueue.c - the producer-side scenarios: one client one call at a time, one client with
 * wf_run_workflow_batch, and several clients in threads. No worker runs, so every run stays
 * queued and the Redis memory they add is the memory of queued runs.
 *
 * Figures (one repetition): runs/s, the client's call latency, Redis CPU per enqueue (INFO cpu
 * delta / runs), Redis used_memory per queued run, and the bench client's own CPU per run.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_bench.h"

/* Before/after snapshot of what an enqueue scenario reports. */
typedef struct snap {
    int64_t t_us;
    double redis_cpu_s, redis_mem_b, self_cpu_s;
} snap;

static snap take(redisContext *c)
{
    snap s;
    s.redis_cpu_s = bench_redis_cpu_s(c);
    s.redis_mem_b = bench_redis_mem_b(c);
    s.self_cpu_s = bench_self_cpu_s();
    s.t_us = bench_mono_us();
    return s;
}

/* Prints the figures common to the enqueue scenarios, keys prefixed with `p`. */
static void report(const char *p, long n, const snap *a, const snap *b, redisContext *c,
                   const char *workflow)
{
    char k[64];
    double secs = (double)(b->t_us - a->t_us) / 1e6;
    snprintf(k, sizeof k, "%s_rps", p);
    bench_out(k, (double)n / secs);
    snprintf(k, sizeof k, "%s_redis_cpu_us", p);
    bench_out(k, (b->redis_cpu_s - a->redis_cpu_s) * 1e6 / (double)n);
    snprintf(k, sizeof k, "%s_client_cpu_us", p);
    bench_out(k, (b->self_cpu_s - a->self_cpu_s) * 1e6 / (double)n);
    snprintf(k, sizeof k, "%s_mem_per_queued_b", p);
    bench_out(k, (b->redis_mem_b - a->redis_mem_b) / (double)n);
    long queued = bench_count_state(c, workflow, "queued");
    if (queued != n) bench_die("%ld runs queued, expected %ld", queued, n);
}

int bench_enqueue(const bench_opts *o)
{
    long n = o->n ? o->n : 20000;
    redisContext *c = bench_redis(o);
    bench_reset(c, o->workflow);
    wf_client *cl = bench_client(o);
    wf_error err = {0};
    /* Warm-up: the unknown-workflow check is cached per client after the first call. */
    wf_run *warm = wf_run_workflow(cl, o->workflow, NULL, 0, &err);
    if (!warm) bench_die("wf_run_workflow: %s", err.message);
    wf_run_free(warm);
    bench_reset(c, o->workflow);
    double *lat = malloc(sizeof *lat * (size_t)n);
    if (!lat) bench_die("out of memory");
    snap a = take(c);
    for (long i = 0; i < n; i++) {
        int64_t t0 = bench_mono_us();
        wf_run *run = wf_run_workflow(cl, o->workflow, NULL, 0, &err);
        lat[i] = (double)(bench_mono_us() - t0);
        if (!run) bench_die("wf_run_workflow: %s", err.message);
        wf_run_free(run);
    }
    snap b = take(c);
    report("enqueue", n, &a, &b, c, o->workflow);
    bench_out("enqueue_call_p50_us", bench_pct(lat, (size_t)n, 50));
    bench_out("enqueue_call_p99_us", bench_pct(lat, (size_t)n, 99));
    free(lat);
    return bench_done(cl, c);
}

int bench_batch(const bench_opts *o)
{
    long n = o->n ? o->n : 100000;
    wf_client *cl;
    redisContext *c = bench_warm(o, &cl);
    snap a = take(c);
    bench_fill(cl, o->workflow, n);
    snap b = take(c);
    report("batch", n, &a, &b, c, o->workflow);
    return bench_done(cl, c);
}

/* One client thread of the threads scenario. */
typedef struct thread_arg {
    const bench_opts *o;
    wf_client *cl;
    long n;
    pthread_barrier_t *go;
    int failed;
    wf_error err;
} thread_arg;

static void *client_thread(void *p)
{
    thread_arg *t = p;
    pthread_barrier_wait(t->go);
    for (long i = 0; i < t->n; i++) {
        wf_run *run = wf_run_workflow(t->cl, t->o->workflow, NULL, 0, &t->err);
        if (!run) {
            t->failed = 1;
            break;
        }
        wf_run_free(run);
    }
    return NULL;
}

int bench_threads(const bench_opts *o)
{
    long n = o->n ? o->n : 40000;
    int nt = o->threads;
    redisContext *c = bench_redis(o);
    bench_reset(c, o->workflow);
    thread_arg *ta = calloc((size_t)nt, sizeof *ta);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    pthread_barrier_t go;
    if (!ta || !th || pthread_barrier_init(&go, NULL, (unsigned)nt + 1) != 0)
        bench_die("out of memory");
    long per = n / nt;
    for (int i = 0; i < nt; i++) {
        ta[i] = (thread_arg){.o = o, .cl = bench_client(o), .n = per, .go = &go};
        bench_fill(ta[i].cl, o->workflow, 1); /* warm-up */
    }
    bench_reset(c, o->workflow);
    for (int i = 0; i < nt; i++)
        if (pthread_create(&th[i], NULL, client_thread, &ta[i]) != 0)
            bench_die("pthread_create failed");
    snap a = take(c);
    pthread_barrier_wait(&go);
    a.t_us = bench_mono_us();
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    snap b = take(c);
    for (int i = 0; i < nt; i++)
        if (ta[i].failed) bench_die("client thread %d: %s", i, ta[i].err.message);
    report("threads", per * nt, &a, &b, c, o->workflow);
    for (int i = 0; i < nt; i++) wf_client_free(ta[i].cl);
    pthread_barrier_destroy(&go);
    free(ta);
    free(th);
    redisFree(c);
    return 0;
}
