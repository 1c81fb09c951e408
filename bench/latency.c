/* latency.c - latency at a fixed arrival rate into idle workers: runs are started one at a time
 * on a fixed schedule (open loop: a late call does not push the later ones back) for --seconds,
 * then every run's times are read back from its hash.
 *
 * Two clocks, two resolutions:
 * - host clock, microseconds: the bench notes CLOCK_REALTIME just before it calls
 *   wf_run_workflow; the noop handler returns CLOCK_REALTIME when it starts (its output). Bench and
 *   worker share this host's clock, so start - enqueue has no skew. This is "enqueue-to-start":
 *   the user's call to the handler running, enqueue round trip included.
 * - Redis time, milliseconds: started_at - created_at and finished_at - created_at from the run
 *   hash, as the scripts stamp them (TIME truncated to ms, so each is +/- 1 ms).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_bench.h"

/* The int64 a noop run packed (its start time in us), or -1. */
static int64_t output_us(const redisReply *v)
{
    if (!v || v->type != REDIS_REPLY_STRING || v->len == 0) return -1;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int64_t r = -1;
    if (msgpack_unpack_next(&u, v->str, v->len, NULL) == MSGPACK_UNPACK_SUCCESS) {
        if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER) r = (int64_t)u.data.via.u64;
    }
    msgpack_unpacked_destroy(&u);
    return r;
}

static int64_t field_ms(const redisReply *v)
{
    return v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : -1;
}

/* Prints p50, p90, p99 and max of v[0..n) as KEY_p50_UNIT ... */
static void report_pcts(const char *key, const char *unit, double *v, size_t n)
{
    static const struct {
        const char *name;
        double p;
    } ps[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"max", 100}};
    char k[96];
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        snprintf(k, sizeof k, "%s_%s_%s", key, ps[i].name, unit);
        bench_out(k, bench_pct(v, n, ps[i].p));
    }
}

static void sample_tick(void *arg)
{
    bench_worker_sample(arg);
}

int bench_latency(const bench_opts *o)
{
    long n = (long)(o->rate * o->seconds);
    redisContext *c = bench_redis(o);
    bench_reset(c, o->workflow);
    bench_worker w;
    bench_worker_start(&w, o, o->workflows, NULL, c, 1);
    wf_client *cl = bench_client(o);
    wf_error err = {0};
    static const char input_true[] = "\xc3"; /* msgpack true: "return your start time" */
    wf_run *warm = wf_run_workflow(cl, o->workflow, input_true, 1, &err);
    if (!warm) bench_die("wf_run_workflow: %s", err.message);
    wf_run_free(warm);
    bench_wait_completed(c, o->workflow, 0, 1, NULL, NULL, NULL);
    bench_sleep_us(500000); /* the worker is back in its blocking read */

    /* Redis's own round trip at this rate, on this machine as it is now: PING on the side
     * connection on the same schedule, for at most 2 s. */
    long np = n < 2 * (long)o->rate ? n : 2 * (long)o->rate;
    double *ping = calloc((size_t)np, sizeof *ping);
    if (!ping) bench_die("out of memory");
    int64_t pstart = bench_mono_us();
    for (long i = 0; i < np; i++) {
        bench_sleep_us(pstart + (int64_t)((double)i * 1e6 / o->rate) - bench_mono_us());
        int64_t t0 = bench_mono_us();
        freeReplyObject(bench_cmd(c, "PING"));
        ping[i] = (double)(bench_mono_us() - t0);
    }
    char key[64];
    snprintf(key, sizeof key, "lat%d_ping_p50_us", o->rate);
    bench_out(key, bench_pct(ping, (size_t)np, 50));
    snprintf(key, sizeof key, "lat%d_ping_p99_us", o->rate);
    bench_out(key, bench_pct(ping, (size_t)np, 99));
    free(ping);

    wf_run **runs = calloc((size_t)n, sizeof *runs);
    int64_t *t_enq = calloc((size_t)n, sizeof *t_enq);
    double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    double *d = calloc((size_t)n, sizeof *d), *call = calloc((size_t)n, sizeof *call);
    if (!runs || !t_enq || !a || !b || !d || !call) bench_die("out of memory");
    double interval = 1e6 / o->rate;
    int64_t start = bench_mono_us();
    for (long i = 0; i < n; i++) {
        int64_t due = start + (int64_t)((double)i * interval);
        bench_sleep_us(due - bench_mono_us());
        t_enq[i] = bench_real_us();
        runs[i] = wf_run_workflow(cl, o->workflow, input_true, 1, &err);
        call[i] = (double)(bench_real_us() - t_enq[i]);
        if (!runs[i]) bench_die("wf_run_workflow: %s", err.message);
    }
    double elapsed = (double)(bench_mono_us() - start) / 1e6;
    bench_wait_completed(c, o->workflow, 0, n + 1, sample_tick, &w, NULL);
    bench_worker_sample(&w);

    for (long i = 0; i < n; i++)
        redisAppendCommand(c, "HMGET %s created_at started_at finished_at output",
                           wf_run_native(runs[i]));
    size_t na = 0, nb = 0;
    for (long i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type != REDIS_REPLY_ARRAY ||
            r->elements != 4)
            bench_die("reading run times failed");
        int64_t created = field_ms(r->element[0]), started = field_ms(r->element[1]);
        int64_t finished = field_ms(r->element[2]), out = output_us(r->element[3]);
        if (out > 0) a[na++] = (double)(out - t_enq[i]);
        if (created > 0 && started > 0 && finished > 0) {
            b[nb] = (double)(started - created);
            d[nb++] = (double)(finished - created);
        }
        freeReplyObject(r);
        wf_run_free(runs[i]);
    }
    if (na < (size_t)n || nb < (size_t)n) bench_die("%zu / %ld runs had no times", na, n);
    snprintf(key, sizeof key, "lat%d_rate_achieved", o->rate);
    bench_out(key, (double)n / elapsed);
    snprintf(key, sizeof key, "lat%d_start", o->rate);
    report_pcts(key, "us", a, na);
    snprintf(key, sizeof key, "lat%d_enqueue_call_p50_us", o->rate);
    bench_out(key, bench_pct(call, (size_t)n, 50));
    snprintf(key, sizeof key, "lat%d_start_redis", o->rate);
    report_pcts(key, "ms", b, nb);
    snprintf(key, sizeof key, "lat%d_done_redis", o->rate);
    report_pcts(key, "ms", d, nb);
    snprintf(key, sizeof key, "lat%d_worker_rss_kb", o->rate);
    bench_out(key, (double)w.rss_max_kb);
    bench_worker_stop(&w);
    free(runs);
    free(t_enq);
    free(a);
    free(b);
    free(d);
    free(call);
    return bench_done(cl, c);
}
