/* test_worker_embed.c - the embedding API on a thread of this process against a real
 * redis-server: handlers and their context, wf_ctx_call running scripts, a stuck handler not
 * hanging wf_worker_free, stop before run, loading a folder of modules in process, and
 * self-fencing (a step does not start past the lease). Every wait polls a condition with a
 * deadline (worker_env.h). */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wf_worker_internal.h"
#include "worker_env.h"

TestSuite(worker, .init = worker_setup, .fini = worker_teardown, .timeout = 120);

/* ---- embedding --------------------------------------------------------------------------------
 */

static int embedded(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    if (strcmp(wf_ctx_provider(ctx), "redis") != 0 || strcmp(wf_ctx_workflow(ctx), "embedded") ||
        wf_ctx_attempt(ctx) != 1 || wf_ctx_cancelled(ctx))
        return wf_ctx_fail(ctx, WF_ERR_FATAL, "unexpected context");
    msgpack_pack_array(out, 2);
    msgpack_pack_object(out, *input);
    size_t n = strlen(wf_ctx_event_id(ctx));
    msgpack_pack_str(out, n);
    msgpack_pack_str_body(out, wf_ctx_event_id(ctx), n);
    return WF_OK;
}

static int embedded_registered(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "HEXISTS wf:workflows embedded") == 1;
}

static void *run_thread(void *arg)
{
    wf_error err = {0};
    intptr_t r = wf_worker_run(arg, &err);
    if (r != WF_OK) fprintf(stderr, "wf_worker_run: %s\n", err.message);
    return (void *)r;
}

/* wf_worker_new with `opt`; fails the test when it cannot. */
static wf_worker *new_worker(const wf_worker_options *opt)
{
    wf_error err = {0};
    wf_worker *w = wf_worker_new(opt, &err);
    cr_assert_not_null(w, "wf_worker_new: %s", err.message);
    return w;
}

/* An embedded worker (`concurrency` slots, `drain_ms` of drain, 0: the default) that runs
 * `handler` as workflow `name`, its loop on thread *t. */
static wf_worker *embed(const char *name, wf_handler_fn handler, int concurrency, int drain_ms,
                        pthread_t *t)
{
    wf_error err = {0};
    wf_worker_options opt = {
        .redis_url = srv.url, .concurrency = concurrency, .drain_ms = drain_ms};
    wf_worker *w = new_worker(&opt);
    cr_assert_eq(wf_worker_define(w, name, handler, NULL, &err), WF_OK, "%s", err.message);
    cr_assert_eq(pthread_create(t, NULL, run_thread, w), 0);
    return w;
}

/* A run of `name`, started before the embedded worker may have registered it. */
static wf_run *start_unregistered(const char *name)
{
    wf_error err = {0};
    wf_run *run =
        wf_run_workflow_ex(cl, name, NULL, 0, &(wf_run_options){.allow_unregistered = 1}, &err);
    cr_assert_not_null(run, "%s", err.message);
    return run;
}

/* Stops the embedded worker `w`, whose loop must return WF_OK on thread t, and frees it. */
static void unembed(wf_worker *w, pthread_t t)
{
    wf_worker_stop(w);
    void *ret;
    pthread_join(t, &ret);
    cr_assert_eq((intptr_t)ret, WF_OK);
    wf_worker_free(w);
}

/* A run of `name` to completion (10 s at most) on an embedded worker of one slot running
 * `handler`, which is then stopped (unembed); the run's status in *st. */
static wf_run *run_embedded(const char *name, wf_handler_fn handler, wf_status *st)
{
    pthread_t t;
    wf_worker *w = embed(name, handler, 1, 0, &t);
    wf_run *run = start_unregistered(name);
    wait_state(run, WF_STATE_COMPLETED, 10000, st);
    unembed(w, t);
    return run;
}

Test(worker, embedding_api)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url, .concurrency = 2, .drain_ms = 2000};
    wf_worker *w = new_worker(&opt);
    cr_assert_not_null(wf_worker_consumer(w));
    cr_assert_eq(wf_worker_define(w, "embedded", embedded, NULL, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_worker_define(w, "embedded", embedded, NULL, &err), WF_ERR_EXISTS);
    cr_assert_eq(wf_worker_define(w, "bad name", embedded, NULL, &err), WF_ERR_BAD_NAME);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, w), 0);
    /* Registration happens as the loop starts. */
    cr_assert(wf_test_wait(embedded_registered, NULL, 10000));
    wf_run *run = start_run("embedded", "\x07", 1);
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, 10000, &st);
    cr_assert_eq(st.output[0], (char)0x92);
    cr_assert_eq(st.output[1], 0x07);
    wf_status_clear(&st);
    unembed(w, t);
    wf_run_free(run);
}

/* Uses the durable-step primitive: a script (heartbeat.lua on its own run, which it holds) and
 * a script error mapped to its code (complete.lua with a wrong token is STALE). */
static int ctxcall(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)input;
    const wf__wfkeys *fixed = wf__ctx_keys(ctx);
    if (!fixed) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "no keys");
    char *run = wf__key_run(wf__ctx_prefix(ctx), wf_ctx_workflow(ctx), wf_ctx_event_id(ctx));
    char *steps = wf__key_steps(wf__ctx_prefix(ctx), wf_ctx_workflow(ctx), wf_ctx_event_id(ctx));
    const char *keys[WF__NFIXED + 2];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = fixed->k[i];
    keys[WF__NFIXED] = run;
    keys[WF__NFIXED + 1] = steps;
    const char *hb[] = {"60000", wf_ctx_event_id(ctx), wf__ctx_token(ctx)};
    redisReply *r = NULL;
    wf_error err = {0};
    int hrc = wf__ctx_call(ctx, WF__SCRIPT_HEARTBEAT, WF__NFIXED + 1, keys, 3, hb, NULL, &r, &err);
    int lost = r && r->type == REDIS_REPLY_ARRAY ? (int)r->elements : -1;
    wf__reply_free(r);
    const char *bad[] = {wf_ctx_event_id(ctx), "999999", "\xc0", "0"};
    int stale =
        wf__ctx_call(ctx, WF__SCRIPT_COMPLETE, WF__NFIXED + 2, keys, 4, bad, NULL, &r, &err);
    free(run);
    free(steps);
    if (hrc != WF_OK) return wf_ctx_fail(ctx, WF_ERR_FATAL, "heartbeat call: %d", hrc);
    msgpack_pack_array(out, 2);
    msgpack_pack_int(out, lost);
    msgpack_pack_int(out, stale);
    return WF_OK;
}

Test(worker, ctx_call_runs_scripts_from_a_handler)
{
    wf_status st;
    wf_run *run = run_embedded("ctxcall", ctxcall, &st);
    /* [0 lost runs, WF_ERR_STALE] */
    cr_assert_eq(st.output_len, 3);
    cr_assert_eq((unsigned char)st.output[0], 0x92);
    cr_assert_eq(st.output[1], 0);
    cr_assert_eq((signed char)st.output[2], WF_ERR_STALE);
    wf_status_clear(&st);
    wf_run_free(run);
}

static atomic_int stuck_release; /* set by the test to let the stuck handler go */
static atomic_int stuck_running;

static int stuck(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)ctx;
    (void)input;
    (void)out;
    atomic_store(&stuck_running, 1);
    while (!atomic_load(&stuck_release)) usleep(1000); /* ignores wf_ctx_cancelled on purpose */
    return WF_OK;
}

Test(worker, a_stuck_handler_does_not_hang_free)
{
    pthread_t t;
    wf_worker *w = embed("stuck", stuck, 1, 100, &t);
    wf_run *run = start_unregistered("stuck");
    await_state(run, WF_STATE_RUNNING, 10000);
    wf_worker_stop(w);
    void *ret;
    pthread_join(t, &ret); /* returns after the drain deadline, the run handed back */
    cr_assert_eq((intptr_t)ret, WF_OK);
    int64_t t0 = wf__mono_ms();
    wf_worker_free(w); /* detaches the stuck thread after a short grace */
    cr_assert_lt(wf__mono_ms() - t0, 5000);
    await_state(run, WF_STATE_QUEUED, 1000);
    atomic_store(&stuck_release, 1); /* the detached thread returns and frees its job */
    wf_run_free(run);
}

Test(worker, stop_before_run_returns_at_once)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url};
    wf_worker *w = new_worker(&opt);
    cr_assert_eq(wf_worker_run(w, &err), WF_ERR_INVALID, "no workflows: %s", err.message);
    wf_worker_free(w);
    w = new_worker(&opt);
    cr_assert_eq(wf_worker_define(w, "embedded", embedded, NULL, &err), WF_OK);
    wf_worker_stop(w);
    cr_assert_eq(wf_worker_run(w, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_worker_run(w, &err), WF_ERR_STATE, "a worker runs once");
    wf_worker_free(w);
}

Test(worker, load_dir_in_process)
{
    wf_error err = {0};
    wf_worker_options opt = {.redis_url = srv.url};
    wf_worker *w = new_worker(&opt);
    char *wfdir = wf_test_path("tests/workflows");
    int n = wf_worker_load_dir(w, wfdir, &err);
    cr_assert_geq(n, 6, "loaded %d: %s", n, err.message);
    cr_assert_eq(wf_worker_load_dir(w, wfdir, &err), n, "loading twice is harmless");
    cr_assert_lt(wf_worker_load_dir(w, "/nonexistent/dir", &err), 0);
    cr_assert(strstr(err.message, "/nonexistent/dir"), "%s", err.message);
    free(wfdir);
    wf_worker_free(w);
    wf_worker_free(NULL);
}

/* ---- self-fencing ---------------------------------------------------------------------------- */

/* A process that stalls past its lease (SIGSTOP, a long pause) must not start a step body when
 * it wakes: another worker may own the run and have run the step. The chaos suite's `pause`
 * scenario produces the stall for real; here the handler moves its own lease deadline into the
 * past on its first execution, which is what a stall looks like from inside the process. */
static atomic_int fence_execs, fence_effects, fence_first_rc, fence_effects_before;

static int fence_effect(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    (void)ctx;
    (void)arg;
    atomic_fetch_add(&fence_effects, 1);
    msgpack_pack_int(out, 1);
    return WF_OK;
}

static int fenced(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)input;
    int exec = atomic_fetch_add(&fence_execs, 1);
    if (exec == 0) atomic_store(&ctx->job->lease_until_mono, 0); /* "stalled": lease gone by */
    int src = wf_step_run(ctx, "effect", fence_effect, NULL, NULL);
    if (exec == 0) {
        atomic_store(&fence_first_rc, src);
        atomic_store(&fence_effects_before, atomic_load(&fence_effects));
    }
    if (src != WF_OK) return src;
    msgpack_pack_int(out, exec);
    return WF_OK;
}

Test(worker, a_step_does_not_start_past_the_lease_and_the_run_is_handed_back)
{
    wf_status st;
    wf_run *run = run_embedded("fenced", fenced, &st);
    cr_assert_eq(atomic_load(&fence_first_rc), WF_ERR_CANCELLED, "the stalled step refused");
    cr_assert_eq(atomic_load(&fence_effects_before), 0, "its body did not run");
    cr_assert_eq(atomic_load(&fence_execs), 2, "handed back and run again");
    cr_assert_eq(atomic_load(&fence_effects), 1, "the effect ran once, on the second execution");
    cr_assert_eq(st.attempt, 1, "a hand-back is not a failed attempt");
    wf_status_clear(&st);
    wf_run_free(run);
}

/* ---- step records batched per loop turn ------------------------------------------------------ */

/* Step records that reach the loop in the same turn share one step.lua call (batch_step.c), and
 * each handler goes on with its own answer: many runs stepping at once must cost fewer calls than
 * records, and every run must complete with all its steps recorded once. */
enum { SB_RUNS = 32, SB_STEPS = 10 };
static atomic_int sb_bodies;

static int sb_body(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    (void)ctx;
    atomic_fetch_add(&sb_bodies, 1);
    msgpack_pack_int(out, (int)(intptr_t)arg);
    return WF_OK;
}

static int stepbatch(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)input;
    long long sum = 0;
    for (int i = 0; i < SB_STEPS; i++) {
        const msgpack_object *r = NULL;
        int src = wf_step_run(ctx, wf_step_name(ctx, "s", i), sb_body, (void *)(intptr_t)i, &r);
        if (src != WF_OK) return src;
        if (!r || r->type != MSGPACK_OBJECT_POSITIVE_INTEGER || r->via.u64 != (uint64_t)i)
            return wf_ctx_fail(ctx, WF_ERR_FATAL, "step %d answered another step's result", i);
        sum += i;
    }
    msgpack_pack_int64(out, sum);
    return WF_OK;
}

/* How many HGETALLs Redis has run (INFO commandstats). */
static long long hgetall_calls(void)
{
    char *info = wf_test_cmd_str(rc, "INFO commandstats");
    const char *p = info ? strstr(info, "cmdstat_hgetall:calls=") : NULL;
    long long n = p ? atoll(p + strlen("cmdstat_hgetall:calls=")) : 0;
    free(info);
    return n;
}

static int all_completed(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "ZCARD wf:{stepbatch}:state:completed") == SB_RUNS;
}

Test(worker, step_records_of_concurrent_runs_share_script_calls)
{
    pthread_t t;
    wf_worker *w = embed("stepbatch", stepbatch, 16, 0, &t);
    long long hgetall0 = hgetall_calls();
    wf_run *runs[SB_RUNS];
    for (int i = 0; i < SB_RUNS; i++) runs[i] = start_unregistered("stepbatch");
    /* Awaited by the completed index, not by status reads (status.lua runs an HGETALL). */
    cr_assert(wf_test_wait(all_completed, NULL, 30000), "the runs completed");
    /* Fresh runs (claimed for the first time) have no step records to read back: none of the
     * runs sent an HGETALL of its steps hash. */
    long long hgetalls = hgetall_calls() - hgetall0;
    cr_assert_lt(hgetalls, SB_RUNS / 4, "%lld HGETALLs for %d fresh runs", hgetalls, SB_RUNS);
    for (int i = 0; i < SB_RUNS; i++) {
        wf_status st;
        wait_state(runs[i], WF_STATE_COMPLETED, 30000, &st);
        cr_assert_eq(st.output_len, 1);
        cr_assert_eq(st.output[0], SB_STEPS * (SB_STEPS - 1) / 2);
        wf_status_clear(&st);
        char *key = wf__key_steps("wf", "stepbatch", wf_run_id(runs[i]));
        cr_assert_eq(wf_test_cmd_int(rc, "HLEN %s", key), SB_STEPS);
        free(key);
        wf_run_free(runs[i]);
    }
    wf_worker_stop(w);
    void *ret;
    pthread_join(t, &ret);
    cr_assert_eq((intptr_t)ret, WF_OK);
    /* Read once the loop is left: the loop thread alone writes them. */
    int64_t calls = w->srec.calls, records = w->srec.records;
    wf_worker_free(w);
    cr_assert_eq(atomic_load(&sb_bodies), SB_RUNS * SB_STEPS, "each step body ran once");
    cr_assert_eq(records, SB_RUNS * SB_STEPS, "each step recorded once");
    cr_assert_lt(calls, records, "%lld step.lua calls for %lld records: nothing shared a call",
                 (long long)calls, (long long)records);
    cr_log_info("%lld step.lua calls for %lld step records", (long long)calls, (long long)records);
}
