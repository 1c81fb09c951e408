/* wf_bench.h - what the files of wf-bench share: options, Redis statistics, worker processes,
 * timing and result output.
 *
 * wf-bench runs ONE repetition of ONE scenario against a Redis it is given and prints its figures
 * as `key=value` lines on stdout (numbers only, units in the key names: _rps, _us, _ms, _b, _kb,
 * _s). bench/run starts the Redis servers, repeats scenarios, and aggregates. Every scenario
 * empties the Redis first (FLUSHALL), so repetitions do not see each other's data.
 */
#ifndef WF_BENCH_H
#define WF_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "wf/wf.h"

/* ---- Options ----------------------------------------------------------------------------------
 */

/* Command-line settings of one invocation; zero/NULL fields take the defaults in main.c. */
typedef struct bench_opts {
    const char *scenario;  /* enqueue, batch, threads, drain, latency, idle, scale, many */
    const char *redis_url; /* redis://127.0.0.1:PORT (loopback only) */
    const char *worker;    /* path of the wf-worker program */
    const char *workflows; /* --workflows folder given to wf-worker */
    const char *workflow;  /* workflow name the runs start (default "noop") */
    long n;                /* runs */
    int threads;           /* client threads (threads scenario) */
    int processes;         /* wf-worker --processes */
    int concurrency;       /* wf-worker --concurrency */
    int rate;              /* runs per second (latency) */
    double seconds;        /* duration (latency, idle) */
    int count;             /* workflows active (many) */
    long extra;            /* scale: runs enqueued one at a time on top of the backlog */
    int drain;             /* scale: also drain the backlog with a worker (1) or not (0) */
} bench_opts;

/* ---- Output (main.c) --------------------------------------------------------------------------
 */

/* Prints one figure, "key=value", on stdout. */
void bench_out(const char *key, double value);
/* Prints a failure on stderr and exits 1 (the run is broken, not merely slow). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- Time ---------------------------------------------------------------------------------------
 */

int64_t bench_mono_us(void); /* CLOCK_MONOTONIC */
int64_t bench_real_us(void); /* CLOCK_REALTIME, comparable across processes of this host */
void bench_sleep_us(int64_t us);
double bench_self_cpu_s(void); /* this process's user+system CPU seconds, all threads */

/* Sorts `v` (n values) and returns the p-th percentile (0..100), nearest rank. 0 when n is 0. */
double bench_pct(double *v, size_t n, double p);

/* ---- Redis (redis.c)
 * ------------------------------------------------------------------------------ */

/* A plain hiredis connection for statistics and setup (never for the work measured). */
redisContext *bench_redis(const bench_opts *o);
/* Runs a command that must succeed; dies otherwise. Returns the reply (caller frees). */
redisReply *bench_cmd(redisContext *c, const char *fmt, ...);
/* FLUSHALL (synchronous) and registers `workflow` in P:workflows as a worker would. */
void bench_reset(redisContext *c, const char *workflow);
/* Registers one more workflow in P:workflows. */
void bench_register(redisContext *c, const char *workflow);
/* INFO figures: used_cpu_sys + used_cpu_user (seconds), used_memory (bytes). */
double bench_redis_cpu_s(redisContext *c);
double bench_redis_mem_b(redisContext *c);
/* ZCARD of workflow's state:S index. */
long bench_count_state(redisContext *c, const char *workflow, const char *state);
/* Waits until every one of `nwf` workflows "name%03d" (or `workflow` when nwf is 0) together has
 * `target` completed runs; calls `tick(arg)` about every 20 ms while waiting and records in
 * `at20_us` (may be NULL) the monotonic time at which 20% were done. Dies if no run completes for
 * 30 s or a run fails. Returns the monotonic time at which the last run completed. */
int64_t bench_wait_completed(redisContext *c, const char *workflow, int nwf, long target,
                             void (*tick)(void *arg), void *arg, int64_t *at20_us);
/* Connects a wf client to the bench Redis; dies on failure. */
wf_client *bench_client(const bench_opts *o);
/* A connection (bench_redis) and a client (*cl) after one warm-up run (the client's first call
 * checks the workflow and connects: not part of what is measured), the keys reset again. */
redisContext *bench_warm(const bench_opts *o, wf_client **cl);
/* Frees what bench_warm gave; returns 0, a mode's exit status when it measured all it meant to. */
int bench_done(wf_client *cl, redisContext *c);

/* ---- Worker processes (procs.c) ----------------------------------------------------------------
 */

/* A wf-worker started by the bench: the supervisor and, once found, its worker children. */
typedef struct bench_worker {
    pid_t pid;      /* the supervisor (its own process group) */
    pid_t kids[64]; /* its children, the worker processes */
    int nkids;
    long rss_max_kb; /* largest VmRSS seen in one child by bench_worker_sample() */
} bench_worker;

/* Starts `o->worker --redis ... --workflows dir --processes P --concurrency C` with `env`
 * ("NAME=value" or NULL) added to its environment and waits until its P children exist; with
 * `wait_ready`, also until P connections are blocked in XREADGROUP (the workers wait for work).
 * Dies on failure. */
void bench_worker_start(bench_worker *w, const bench_opts *o, const char *dir, const char *env,
                        redisContext *c, int wait_ready);
/* Samples the children's VmRSS (keeps the maximum). */
void bench_worker_sample(bench_worker *w);
/* Largest VmRSS of one child now, in KiB. */
long bench_worker_rss_kb(const bench_worker *w);
/* CPU seconds (user+system) used so far by the supervisor and its children. */
double bench_worker_cpu_s(const bench_worker *w);
/* SIGTERM, waits up to 20 s for a clean drain, then kills the process group. */
void bench_worker_stop(bench_worker *w);
/* Stops the worker started last, if any (atexit and signal paths). */
void bench_worker_stop_all(void);

/* ---- Scenarios (enqueue.c, e2e.c, latency.c)
 * ------------------------------------------------------ */

int bench_enqueue(const bench_opts *o);
int bench_batch(const bench_opts *o);
int bench_threads(const bench_opts *o);
int bench_drain(const bench_opts *o);
int bench_idle(const bench_opts *o);
int bench_scale(const bench_opts *o);
int bench_many(const bench_opts *o);
int bench_latency(const bench_opts *o);

/* Queues `n` runs of `workflow` with no input through wf_run_workflow_batch; dies on failure. */
void bench_fill(wf_client *cl, const char *workflow, long n);

#endif
