/* finish.c - the loop side of a job's life: holding it, sending the script that ends its attempt
 * (complete.lua, fail.lua, release.lua), resending after a reconnect, dropping results that are
 * no longer ours, and freeing it. See the design comment in wf_job.h for the exec and
 * lease state machines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply_action.h"
#include "wf_worker_internal.h"

static const char *const exec_names[] = {"queued", "running", "returned"};
static const char *const lease_names[] = {"held", "ending", "gone"};

const char *wf__exec_state_name(wf__exec_state s)
{
    return (unsigned)s < 3 ? exec_names[s] : "unknown";
}

const char *wf__lease_state_name(wf__lease_state s)
{
    return (unsigned)s < 3 ? lease_names[s] : "unknown";
}

void wf__job_free(wf__job *job)
{
    if (!job) return;
    wf__steps_free(job->ctx.steps);
    free(job->input);
    free(job->error);
    free(job->prefix);
    if (job->keys) {
        wf__wfkeys_free(job->keys);
        free(job->keys);
    }
    msgpack_sbuffer_destroy(&job->out);
    free(job);
}

void wf__job_maybe_free(wf_worker *w, wf__job *job)
{
    if (job->lease != WF__LEASE_GONE || job->op_inflight || job->batched) return;
    if (job->dispatched && !job->returned) return;
    if (job->prev)
        job->prev->next = job->next;
    else
        w->jobs.head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        w->jobs.tail = job->prev;
    w->jobs.n--;
    wf__job_free(job);
}

void wf__job_hold(wf_worker *w, wf__job *job)
{
    job->prev = w->jobs.tail;
    job->next = NULL;
    if (w->jobs.tail)
        w->jobs.tail->next = job;
    else
        w->jobs.head = job;
    w->jobs.tail = job;
    w->jobs.n++;
    job->lease = WF__LEASE_HELD;
    if (w->stop.draining) {
        /* Claimed while stopping (a read or claim was already in flight): hand it back. */
        job->exec_state = WF__EXEC_RETURNED;
        wf__job_end(w, job, WF__OP_RELEASE);
        return;
    }
    wf__metrics_inc(job->workflow, WF__C_STARTED, 1);
    job->dispatched = 1;
    w->jobs.busy++;
    wf__pool_submit(w->pool, job);
}

/* ---- Sending the end operation ------------------------------------------------------------ */

/* 1 if `out` holds exactly one well-formed msgpack value. */
static int one_value(const msgpack_sbuffer *out)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int ok = msgpack_unpack_next(&u, out->data, out->size, &off) == MSGPACK_UNPACK_SUCCESS &&
             off == out->size;
    msgpack_unpacked_destroy(&u);
    return ok;
}

/* What a handler's result turns into: complete (returns 1) or fail with `text`/`fatal`. */
static int result_outcome(wf__job *job, char *text, size_t n, int *fatal)
{
    *fatal = 0;
    if (job->rc == WF_OK) {
        if (job->out.size == 0 || one_value(&job->out)) return 1;
        snprintf(text, n,
                 "the handler packed malformed output (%zu bytes that are not exactly "
                 "one msgpack value)",
                 job->out.size);
        *fatal = 1;
        return 0;
    }
    if (job->rc == WF_SUSPEND) {
        /* Only reached when no step suspended the run (see wf__job_returned). */
        snprintf(text, n,
                 "the handler returned WF_SUSPEND, but no step helper suspended the run "
                 "(return WF_SUSPEND only when a wf_step_* call returned it)");
        *fatal = 1;
        return 0;
    }
    if (job->rc > 0) {
        snprintf(text, n,
                 "the handler returned %d, which is not WF_OK, WF_SUSPEND or an error "
                 "code",
                 job->rc);
        return 0;
    }
    snprintf(text, n, "%s", job->error ? job->error : wf_strerror(job->rc));
    *fatal = job->rc == WF_ERR_FATAL;
    return 0;
}

static void op_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void send_op(wf_worker *w, wf__job *job)
{
    if (job->op_inflight || job->batched || job->lease != WF__LEASE_ENDING ||
        !wf__conn_usable(&w->cmd))
        return;
    if (job->op == WF__OP_RESULT) {
        char why[8];
        int fatal;
        /* Completions go out together at the end of this loop turn (batch_end.c). */
        if (result_outcome(job, why, sizeof why, &fatal)) {
            (void)wf__cbatch_add(w, job);
            return;
        }
    }
    wf__wdef *def = job->def;
    char *run = wf__key_run(w->url.prefix, def->name, job->id);
    char *steps = wf__key_steps(w->url.prefix, def->name, job->id);
    if (!run || !steps) {
        free(run);
        free(steps);
        return; /* out of memory: retried on the next flush */
    }
    const char *keys[WF__NFIXED + 4];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = def->keys.k[i];
    keys[WF__NFIXED] = run;
    keys[WF__NFIXED + 1] = steps;
    const char *args[11];
    size_t arglen[11];
    int nargs = 0, nkeys = WF__NFIXED + 2;
    wf__script script;
    char retention[24], max_attempts[16], backoff[24], max_backoff[24], retry[24];
    char *text = malloc(4096);
    if (!text) {
        free(run);
        free(steps);
        return;
    }
    snprintf(retention, sizeof retention, "%lld", (long long)w->url.retention_ms);
    args[nargs++] = job->id;
    args[nargs++] = job->token;
    int fatal = 0;
    if (job->op == WF__OP_RELEASE) {
        script = WF__SCRIPT_RELEASE;
        nkeys = WF__NFIXED + 1;
    } else if (job->op == WF__OP_RESULT && result_outcome(job, text, 4096, &fatal)) {
        script = WF__SCRIPT_COMPLETE;
        args[nargs] = job->out.size ? job->out.data : "\xc0"; /* msgpack nil */
        arglen[nargs++] = job->out.size ? job->out.size : 1;
        args[nargs++] = retention;
    } else {
        script = WF__SCRIPT_FAIL;
        const char *final = "failed";
        if (job->op == WF__OP_TIMEOUT) {
            snprintf(text, 4096, "timed out after %lld ms (workflow timeout)",
                     (long long)job->opt.timeout_ms);
            fatal = 1;
            final = "terminated";
        }
        snprintf(max_attempts, sizeof max_attempts, "%d", job->opt.max_attempts);
        snprintf(backoff, sizeof backoff, "%lld", (long long)job->opt.backoff_ms);
        snprintf(max_backoff, sizeof max_backoff, "%lld", (long long)job->opt.max_backoff_ms);
        snprintf(retry, sizeof retry, "%lld", (long long)job->retry_after);
        args[nargs++] = text;
        args[nargs++] = fatal ? "1" : "0";
        args[nargs++] = max_attempts;
        args[nargs++] = backoff;
        args[nargs++] = max_backoff;
        args[nargs++] = retry;
        args[nargs++] = retention;
        args[nargs++] = final;
    }
    /* Webhooks (wf_ops.h): complete/fail record a run's end in its outbox in the same script. */
    const char *outbox = script == WF__SCRIPT_RELEASE ? NULL : def->aux[WF__AUX_OUTBOX];
    /* Child runs (invoke.c): the end of a run with a parent is recorded in P:{W}:parents by the
     * same script (lua/lib_finish.lua parent_add), after the optional outbox key. */
    const char *parents = outbox ? def->aux[WF__AUX_PARENTS] : NULL;
    if (outbox) {
        keys[nkeys++] = outbox;
        args[nargs++] = wf__ops_notify_mode(w);
    }
    if (parents) keys[nkeys++] = parents;
    for (int i = 0; i < nargs; i++)
        if (!(script == WF__SCRIPT_COMPLETE && i == 2)) arglen[i] = strlen(args[i]);
    if (wf__conn_script(&w->cmd, op_reply, job, script, nkeys, keys, nargs, args, arglen) ==
        WF_OK) {
        job->op_inflight = 1;
        w->ends.inflight++;
    }
    free(text);
    free(run);
    free(steps);
}

static void op_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__job_op_done(((wf__conn *)ac->data)->w, privdata, reply);
}

void wf__job_op_done(wf_worker *w, wf__job *job, redisReply *r)
{
    job->op_inflight = 0;
    wf__timers_nudge(job->def);                 /* a retry may have set a timer */
    wf__flow_nudge(job->def);                   /* room under a limit may have freed */
    wf__greader_nudge(w->kids.reader);          /* a child run's end may wait for its parent */
    if (w->ops) wf__hooks_nudge(w->ops->hooks); /* and a webhook notification */
    w->ends.inflight--;
    static const char *const op_names[] = {"", "result", "timeout", "release"};
    const char *op = op_names[job->op];
    wf__ops_on_end(w, job, r); /* metrics */
    if (!r) {
        if (w->stop.closing) {
            wf__log_run(WF__LOG_WARN, job->id, job->workflow, job->attempt,
                        "shutting down before Redis confirmed the %s; the lease will expire and "
                        "another worker will take the run over",
                        op);
            job->lease = WF__LEASE_GONE;
        } else {
            wf__log_run(WF__LOG_WARN, job->id, job->workflow, job->attempt,
                        "connection lost before Redis confirmed the %s; resending after reconnect",
                        op);
            /* stays ENDING: wf__job_flush_ops resends it */
        }
    } else if (r->type == REDIS_REPLY_ERROR && wf__reply_action(r) != WF__ACT_DONE) {
        /* Refused without running (LOADING, BUSY, READONLY...: reply_action.h) for longer than
         * the router re-sends by itself: not an answer. It stays ENDING and goes out again from
         * the next tick (wf__job_flush_ops), like an operation whose reply was lost. */
        wf__log_run(WF__LOG_WARN, job->id, job->workflow, job->attempt,
                    "Redis still refuses the %s (%.*s); sending it again", op,
                    (int)(r->len > 120 ? 120 : r->len), r->str);
        w->ends.refused = 1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        wf_error e = {0};
        int code = wf__script_error(r->str, r->len, &e);
        wf__log_level lvl = code == WF_ERR_STALE ? WF__LOG_INFO : WF__LOG_ERROR;
        wf__log_run(lvl, job->id, job->workflow, job->attempt,
                    code == WF_ERR_STALE ? "dropping the %s: the run was stopped, timed out or "
                                           "taken over meanwhile (%s)"
                                         : "Redis refused the %s: %s",
                    op, e.message);
        job->lease = WF__LEASE_GONE;
    } else {
        if (job->op == WF__OP_RELEASE) {
            wf__log_run(WF__LOG_INFO, job->id, job->workflow, job->attempt,
                        "run handed back to the queue (worker stopping)");
        } else if (job->op == WF__OP_TIMEOUT) {
            wf__log_run(WF__LOG_WARN, job->id, job->workflow, job->attempt,
                        "run terminated: timed out after %lld ms", (long long)job->opt.timeout_ms);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                   r->element[0]->type == REDIS_REPLY_STRING) {
            char text[512];
            int fatal = 0;
            if (result_outcome(job, text, sizeof text, &fatal)) snprintf(text, sizeof text, "?");
            wf__log_run(WF__LOG_INFO, job->id, job->workflow, job->attempt,
                        "attempt failed: %s; run is now %s", text, r->element[0]->str);
        } else {
            wf__log_run(WF__LOG_DEBUG, job->id, job->workflow, job->attempt, "run completed");
        }
        job->lease = WF__LEASE_GONE;
    }
    wf__job_maybe_free(w, job);
    wf__worker_check_drain(w);
}

void wf__job_end(wf_worker *w, wf__job *job, wf__end_op op)
{
    if (job->lease != WF__LEASE_HELD) return;
    job->lease = WF__LEASE_ENDING;
    job->op = op;
    send_op(w, job);
}

void wf__job_flush_ops(wf_worker *w)
{
    for (wf__job *j = w->jobs.head; j; j = j->next)
        if (j->lease == WF__LEASE_ENDING && !j->op_inflight) send_op(w, j);
}

void wf__job_lost(wf_worker *w, wf__job *job, const char *why)
{
    if (job->lease == WF__LEASE_HELD) {
        atomic_store(&job->cancelled, 1);
        job->cancel_mono = wf__mono_ms();
        job->lease = WF__LEASE_GONE;
        wf__log_run(WF__LOG_INFO, job->id, job->workflow, job->attempt,
                    "lease lost (%s): cancelling the handler; its result will be dropped", why);
        wf__metrics_inc(job->workflow, WF__C_CANCELLED, 1);
    } else if (job->lease == WF__LEASE_ENDING && !job->op_inflight && job->op == WF__OP_RESULT) {
        job->lease = WF__LEASE_GONE;
        wf__log_run(WF__LOG_INFO, job->id, job->workflow, job->attempt,
                    "lease lost (%s) before the result could be sent; dropping it", why);
        wf__metrics_inc(job->workflow, WF__C_CANCELLED, 1);
        wf__metrics_attempt_end(job, WF__O_CANCELLED);
    }
    wf__job_maybe_free(w, job);
}

void wf__job_returned(wf_worker *w, wf__job *job)
{
    job->returned = 1;
    w->jobs.busy--;
    if (job->lease == WF__LEASE_HELD && job->rc == WF_SUSPEND && job->suspended) {
        /* suspend.lua already made the run `waiting` and moved its lease on. */
        job->lease = WF__LEASE_GONE;
        wf__timers_nudge(job->def);
        wf__log_run(WF__LOG_DEBUG, job->id, job->workflow, job->attempt,
                    "run suspended (waiting for a timer or an event)");
        wf__metrics_attempt_end(job, WF__O_SUSPENDED);
    } else if (job->lease == WF__LEASE_HELD && atomic_load(&job->fenced)) {
        /* A step refused to start because this process stalled past its lease (step_run.c): not
         * the run's failure. Hand it back (release.lua refuses if another worker took it). */
        wf__log_run(WF__LOG_WARN, job->id, job->workflow, job->attempt,
                    "this process stalled past the run's lease; handing the run back");
        wf__job_end(w, job, WF__OP_RELEASE);
    } else if (job->lease == WF__LEASE_HELD) {
        wf__job_end(w, job, WF__OP_RESULT);
    } else {
        const char *why = job->lease == WF__LEASE_GONE ? "its lease was lost (stopped, timed out "
                                                         "or taken over)"
                          : job->op == WF__OP_TIMEOUT  ? "it timed out"
                                                       : "it was handed back to the queue";
        wf__log_run(WF__LOG_INFO, job->id, job->workflow, job->attempt,
                    "handler returned %d after %s; result dropped", job->rc, why);
        /* A timeout or a release already observed its outcome when Redis answered. */
        if (job->lease == WF__LEASE_GONE) wf__metrics_attempt_end(job, WF__O_CANCELLED);
    }
    wf__job_maybe_free(w, job);
}
