/* step_run.c - plain durable steps: wf_step_run() and wf_step_run_ex() (include/wf/step.h).
 *
 * A step body runs at most once per attempt and its result is recorded (step_replay.c); a replay
 * answers a finished step from its record without running the body again. Before a body starts,
 * the lease fence refuses it when this process may have lost the run. A failed body is retried
 * with backoff by suspending the run until the next attempt is due, up to max_attempts; the step
 * timeout is what wf_ctx_cancelled() reports while the body runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/step.h"
#include "wf_step_engine.h"
#include "wf_worker_internal.h"

int wf__steps_deadline_passed(const wf_ctx *ctx)
{
    const struct wf__steps *s = ctx->steps;
    if (!s) return 0;
    int64_t d = s->deadline_mono;
    return d > 0 && wf__mono_ms() >= d;
}

static int64_t delay_for(const wf_step_options *o, int attempt, int64_t retry_after)
{
    if (retry_after >= 0) return retry_after;
    double d = (double)o->base_delay_ms;
    if (o->backoff == WF_BACKOFF_LINEAR)
        d *= attempt;
    else
        for (int i = 1; i < attempt && d < (double)o->max_delay_ms; i++) d *= o->factor;
    if (d > (double)o->max_delay_ms) d = (double)o->max_delay_ms;
    if (o->jitter_pct > 0) {
        double j = d * o->jitter_pct / 100.0;
        d += j * (2.0 * ((double)rand() / RAND_MAX) - 1.0);
        if (d < 0) d = 0;
    }
    return (int64_t)d;
}

/* Self-fencing: past the lease we last know was renewed (less a tenth of it for the time a
 * heartbeat takes), another worker may own the run and have run this step already: this process
 * was frozen or stalled. Do not start the side effect; the run goes on elsewhere. Returns WF_OK
 * when the body may start, or fails the run as cancelled. */
static int lease_fence(wf_ctx *ctx, const char *name)
{
    int64_t fence = atomic_load(&ctx->job->lease_until_mono) - ctx->job->lease_ms / 10;
    ctx->step_admitted_ms = wf__now_ms();
    if (atomic_load(&ctx->job->cancelled)) /* lost meanwhile (stopped, timed out, taken over) */
        return wf_ctx_fail(ctx, WF_ERR_CANCELLED,
                           "step '%s' not started: the run was stopped, timed out or taken over",
                           name);
    if (ctx->job->lease_ms > 0 && wf__mono_ms() >= fence) {
        atomic_store(&ctx->job->fenced, 1);
        atomic_store(&ctx->job->cancelled, 1);
        return wf_ctx_fail(ctx, WF_ERR_CANCELLED,
                           "step '%s' not started: this worker's lease on the run may have "
                           "expired (the process stalled); the run continues elsewhere",
                           name);
    }
    return WF_OK;
}

/* The body failed with `rc` after `attempts` attempts (in nrec). WF_ERR_FATAL or no attempt left:
 * records the failure for good and fails the run. Otherwise suspends the run until the next
 * attempt is due (wf_ctx_retry_after() or the backoff of `o`). */
static int step_failed(wf_ctx *ctx, const char *name, const wf_step_options *o, wf__steprec *nrec,
                       int attempts, int rc)
{
    const char *why = ctx->job->error ? ctx->job->error : wf_strerror(rc);
    snprintf(nrec->status, sizeof nrec->status, "failed");
    nrec->error = why;
    if (rc == WF_ERR_FATAL || attempts >= o->max_attempts) {
        wf__log_step(WF__LOG_WARN, ctx->job->id, ctx->job->workflow, ctx->job->attempt, name,
                     "step failed for good after %d attempt%s: %s", attempts,
                     attempts == 1 ? "" : "s", why);
        int r2 = wf__step_record(ctx, name, nrec);
        if (r2 != WF_OK) return r2;
        return wf_ctx_fail(ctx, WF_ERR_FATAL, "step '%s' failed after %d attempt%s: %s", name,
                           attempts, attempts == 1 ? "" : "s", nrec->error);
    }
    int64_t delay = delay_for(o, attempts, ctx->job->retry_after);
    int64_t wake = wf__step_now(ctx) + delay;
    wf__log_step(WF__LOG_INFO, ctx->job->id, ctx->job->workflow, ctx->job->attempt, name,
                 "step failed (attempt %d of %d): %s; retrying in %lld ms", attempts,
                 o->max_attempts, why, (long long)delay);
    char reason[300];
    snprintf(reason, sizeof reason, "retry step %s (attempt %d of %d) after: %.200s", name,
             attempts + 1, o->max_attempts, nrec->error);
    char saved[256];
    snprintf(saved, sizeof saved, "%s", why);
    wf__steprec retry = *nrec; /* `saved` must not outlive this call through the caller's record */
    retry.until = wake;
    retry.error = saved;
    return wf__step_suspend(ctx, name, &retry, wake, reason);
}

int wf_step_run_ex(wf_ctx *ctx, const char *name, wf_step_fn fn, void *arg,
                   const wf_step_options *options, const msgpack_object **result)
{
    if (result) *result = NULL;
    if (!ctx || !fn) return WF_ERR_INVALID;
    wf__steprec rec;
    int had;
    int rc = wf__step_begin(ctx, name, "run", &rec, &had);
    if (rc != WF_OK) return rc;
    struct wf__steps *s = ctx->steps; /* made by wf__step_begin */
    wf_step_options o = options ? *options : (wf_step_options){0};
    if (o.max_attempts <= 0) o.max_attempts = 3;
    if (o.base_delay_ms <= 0) o.base_delay_ms = 1000;
    if (o.factor <= 1.0) o.factor = 2.0;
    if (o.max_delay_ms <= 0) o.max_delay_ms = 300000;

    if (had && strcmp(rec.status, "done") == 0)
        return wf__step_result(ctx, rec.result, rec.result_len, result);
    int attempts = had ? rec.attempts : 0;
    int64_t t0 = had && rec.t0 ? rec.t0 : wf__step_now(ctx);
    if ((rc = lease_fence(ctx, name)) != WF_OK) return rc;

    /* Execute the step body. */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    ctx->job->retry_after = -1;
    int64_t start = wf__mono_ms();
    s->deadline_mono = o.timeout_ms > 0 ? start + o.timeout_ms : 0;
    /* Executions of this body lost with their worker (killed mid-step, reclaimed) count too: the
     * first step body after them is the one that was running, or may have been. */
    attempts += s->lost;
    s->attempt = attempts + 1;
    rc = fn(ctx, arg, &pk);
    s->attempt = 0;
    s->deadline_mono = 0;
    int64_t took = wf__mono_ms() - start;
    wf__metrics_step_ms(ctx->job->workflow, took); /* wf_step_duration_seconds (metrics.c) */
    attempts++;
    if (rc == WF_OK && o.timeout_ms > 0 && took > o.timeout_ms)
        rc = wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "step '%s' took %lld ms, over its timeout of %lld ms",
                         name, (long long)took, (long long)o.timeout_ms);
    if (rc == WF_OK && ctx->job->cancelled) rc = WF_ERR_CANCELLED;
    wf__steprec nrec = {0};
    snprintf(nrec.kind, sizeof nrec.kind, "run");
    nrec.attempts = attempts;
    nrec.t0 = t0;
    nrec.t1 = wf__step_now(ctx);
    if (rc == WF_OK) {
        if (out.size == 0) msgpack_pack_nil(&pk);
        snprintf(nrec.status, sizeof nrec.status, "done");
        nrec.result = out.data;
        nrec.result_len = out.size;
        rc = wf__step_record(ctx, name, &nrec);
        if (rc == WF_OK) rc = wf__step_result(ctx, out.data, out.size, result);
        msgpack_sbuffer_destroy(&out);
        return rc;
    }
    msgpack_sbuffer_destroy(&out);
    if (rc == WF_ERR_CANCELLED || rc == WF_SUSPEND || rc == WF_ERR_STALE) return rc;
    return step_failed(ctx, name, &o, &nrec, attempts, rc);
}

int wf_step_run(wf_ctx *ctx, const char *name, wf_step_fn fn, void *arg,
                const msgpack_object **result)
{
    return wf_step_run_ex(ctx, name, fn, arg, NULL, result);
}

int wf_step_attempt(const wf_ctx *ctx)
{
    return ctx && ctx->steps ? ctx->steps->attempt : 0;
}

int64_t wf__ctx_step_admitted_ms(const wf_ctx *ctx)
{
    return ctx ? ctx->step_admitted_ms : 0;
}
