/* redis.c - wf-bench's side channel to Redis: setup (FLUSHALL, workflow registration), the
 * statistics it reads (INFO cpu / memory, per-state counts) and waiting for runs to complete.
 *
 * This connection is never used for the work being measured, only before and after it, plus a
 * ZCARD every 20 ms while waiting (about 50 commands/s: noise next to the thousands measured).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_bench.h"
#include "wf_internal.h"

redisContext *bench_redis(const bench_opts *o)
{
    wf__url url;
    wf_error err = {0};
    if (wf__url_parse(o->redis_url, &url, &err) != WF_OK) bench_die("bad URL: %s", err.message);
    url.timeout_ms = 60000; /* FLUSHALL of a million runs takes a while */
    redisContext *c = wf__redis_connect(&url, &err);
    wf__url_free(&url);
    if (!c) bench_die("cannot connect to %s: %s", o->redis_url, err.message);
    return c;
}

redisReply *bench_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) bench_die("Redis connection failed: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR) bench_die("Redis refused '%s': %s", fmt, r->str);
    return r;
}

void bench_register(redisContext *c, const char *workflow)
{
    freeReplyObject(bench_cmd(c, "HSET wf:workflows %s %s", workflow,
                              "{\"timeout_ms\":0,\"max_attempts\":3,\"registered_at\":0}"));
}

void bench_reset(redisContext *c, const char *workflow)
{
    freeReplyObject(bench_cmd(c, "FLUSHALL SYNC"));
    if (workflow) bench_register(c, workflow);
}

/* The numeric value of `field` in an INFO reply, or -1. */
static double info_field(const char *info, const char *field)
{
    size_t fl = strlen(field);
    for (const char *p = info; (p = strstr(p, field)) != NULL; p += fl)
        if ((p == info || p[-1] == '\n') && p[fl] == ':') return strtod(p + fl + 1, NULL);
    return -1;
}

double bench_redis_cpu_s(redisContext *c)
{
    redisReply *r = bench_cmd(c, "INFO cpu");
    double v = info_field(r->str, "used_cpu_sys") + info_field(r->str, "used_cpu_user");
    freeReplyObject(r);
    return v;
}

double bench_redis_mem_b(redisContext *c)
{
    redisReply *r = bench_cmd(c, "INFO memory");
    double v = info_field(r->str, "used_memory");
    freeReplyObject(r);
    return v;
}

long bench_count_state(redisContext *c, const char *workflow, const char *state)
{
    /* Schema 2 indexes neither: a queued run is its entry on a lane, a running run its lease. */
    if (strcmp(state, "queued") == 0) {
        long v = 0;
        static const char *const lanes[] = {"queue", "queue:high", "queue:low"};
        for (int i = 0; i < 3; i++) {
            redisReply *r = bench_cmd(c, "XLEN wf:{%s}:%s", workflow, lanes[i]);
            v += r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
            freeReplyObject(r);
        }
        return v;
    }
    redisReply *r = strcmp(state, "running") == 0
                        ? bench_cmd(c, "ZCARD wf:{%s}:leases", workflow)
                        : bench_cmd(c, "ZCARD wf:{%s}:state:%s", workflow, state);
    long v = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
    freeReplyObject(r);
    return v;
}

/* Completed runs over all the workflows (and, with `failed`, failed + terminated ones), one
 * pipelined round trip. */
static void count_done(redisContext *c, const char *workflow, int nwf, long *done, long *failed)
{
    int n = nwf > 0 ? nwf : 1, per = failed ? 3 : 1;
    char name[WF__NAME_MAX + 1];
    for (int i = 0; i < n; i++) {
        if (nwf > 0)
            snprintf(name, sizeof name, "%s%03d", workflow, i);
        else
            snprintf(name, sizeof name, "%s", workflow);
        redisAppendCommand(c, "ZCARD wf:{%s}:state:completed", name);
        if (!failed) continue;
        redisAppendCommand(c, "ZCARD wf:{%s}:state:failed", name);
        redisAppendCommand(c, "ZCARD wf:{%s}:state:terminated", name);
    }
    *done = 0;
    if (failed) *failed = 0;
    for (int i = 0; i < per * n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            bench_die("Redis connection failed: %s", c->errstr);
        long v = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
        if (i % per == 0)
            *done += v;
        else
            *failed += v;
        freeReplyObject(r);
    }
}

int64_t bench_wait_completed(redisContext *c, const char *workflow, int nwf, long target,
                             void (*tick)(void *arg), void *arg, int64_t *at20_us)
{
    /* Poll every 20 ms, less often with many workflows so the polling stays near 500 commands/s;
     * failures are checked about once a second and at the end. */
    int64_t every = nwf > 10 ? 200000 : nwf > 1 ? 50000 : 20000;
    long last = -1, done = 0, failed = 0;
    int64_t last_change = bench_mono_us(), last_fail_check = last_change;
    if (at20_us) *at20_us = 0;
    for (;;) {
        int64_t now = bench_mono_us();
        int check = now - last_fail_check > 1000000;
        count_done(c, workflow, nwf, &done, check ? &failed : NULL);
        now = bench_mono_us();
        if (check) last_fail_check = now;
        if (at20_us && !*at20_us && done * 5 >= target) *at20_us = now;
        if (done >= target) {
            count_done(c, workflow, nwf, &done, &failed);
            if (failed == 0) return now;
        }
        if (failed > 0)
            bench_die("%ld run(s) of %s failed or were terminated; see the worker's log", failed,
                      workflow);
        if (done != last) {
            last = done;
            last_change = now;
        } else if (now - last_change > 30 * 1000000LL) {
            bench_die("no run of %s completed for 30 s (%ld of %ld done): is the worker stuck?",
                      workflow, done, target);
        }
        if (tick) tick(arg);
        bench_sleep_us(every);
    }
}

wf_client *bench_client(const bench_opts *o)
{
    wf_error err = {0};
    wf_client *cl = wf_client_connect(o->redis_url, &err);
    if (!cl) bench_die("wf_client_connect: %s", err.message);
    return cl;
}

redisContext *bench_warm(const bench_opts *o, wf_client **cl)
{
    redisContext *c = bench_redis(o);
    bench_reset(c, o->workflow);
    *cl = bench_client(o);
    bench_fill(*cl, o->workflow, 1); /* warm-up: workflow check, connection */
    bench_reset(c, o->workflow);
    return c;
}

int bench_done(wf_client *cl, redisContext *c)
{
    wf_client_free(cl);
    redisFree(c);
    return 0;
}

void bench_fill(wf_client *cl, const char *workflow, long n)
{
    wf_error err = {0};
    if (wf_run_workflow_batch(cl, workflow, (size_t)n, NULL, NULL, NULL, NULL, &err) != WF_OK)
        bench_die("wf_run_workflow_batch: %s", err.message);
}
