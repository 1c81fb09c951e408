/* ctx.c - the execution context a handler sees (wf_ctx_* of include/wf/workflow.h), and
 * wf__ctx_call(): the primitive through which code running on an executor thread reaches Redis.
 *
 * Only the loop thread may touch the async connections, so a call is a request object: the
 * executor queues it in the pool and waits on its condition variable; the loop sends it on the
 * cmd connection (or holds it while the connection is down) and completes it from the reply
 * callback with a deep copy of the reply. Every request is completed exactly once: by its reply,
 * by WF_ERR_IO when Redis stayed out of reach past its deadline, or at shutdown (WF_ERR_CLOSED).
 *
 * The deadline is the later of the URL's timeout_ms and the run's lease: while the lease holds,
 * a Redis restart costs the handler a wait, not an error (an error would fail the attempt and run
 * its step again). A request whose reply was lost with its connection is sent again when it is
 * idempotent, which every request of the step engine is (step.lua and suspend.lua check the lease
 * token; the rest are reads or enqueue under a fixed id); an event sent from a handler is not
 * (it could be delivered twice), so its lost reply stays WF_ERR_IO. Step records (step.lua) are
 * not sent one by one: those the loop takes in one turn go out together (batch_step.c), and each
 * is answered, held or re-sent here like any other request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply_action.h"
#include "wf_worker_internal.h"

/* ---- wf_ctx_* ------------------------------------------------------------------------------ */

const char *wf_ctx_provider(const wf_ctx *ctx)
{
    (void)ctx;
    return "redis";
}

const char *wf_ctx_event_id(const wf_ctx *ctx)
{
    return ctx->job->id;
}

const char *wf_ctx_workflow(const wf_ctx *ctx)
{
    return ctx->job->workflow;
}

int wf_ctx_attempt(const wf_ctx *ctx)
{
    return ctx->job->attempt;
}

int wf_ctx_cancelled(const wf_ctx *ctx)
{
    return atomic_load(&ctx->job->cancelled) || wf__steps_deadline_passed(ctx);
}

int wf_ctx_fail(wf_ctx *ctx, int code, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0) text = NULL;
    va_end(ap);
    free(ctx->job->error);
    ctx->job->error = text;
    return code;
}

const char *wf_ctx_error(const wf_ctx *ctx)
{
    return ctx && ctx->job->error ? ctx->job->error : "";
}

void wf_ctx_retry_after(wf_ctx *ctx, int64_t delay_ms)
{
    ctx->job->retry_after = delay_ms < 0 ? 0 : delay_ms;
}

void wf__ctx_mark_suspended(wf_ctx *ctx)
{
    ctx->job->suspended = 1;
}

const char *wf__ctx_token(const wf_ctx *ctx)
{
    return ctx->job->token;
}

const char *wf__ctx_prefix(const wf_ctx *ctx)
{
    return ctx->job->prefix;
}

const wf__wfkeys *wf__ctx_keys(wf_ctx *ctx)
{
    wf__job *job = ctx->job;
    if (!job->keys) {
        wf__wfkeys *k = calloc(1, sizeof *k);
        if (!k) return NULL;
        if (wf__wfkeys_init(k, job->prefix, job->workflow) != WF_OK) {
            free(k);
            return NULL;
        }
        job->keys = k;
    }
    return job->keys;
}

/* ---- Requests (executor side) ------------------------------------------------------------- */

static void req_free(wf__req *req)
{
    if (!req) return;
    /* argc counts what req_add stored, so it is 0 when req_new's calloc of argv failed; the test
     * says so to clang-analyzer, which took calloc's zeroed argc as unknown. */
    if (req->argv)
        for (int i = 0; i < req->argc; i++) free(req->argv[i]);
    free(req->argv);
    free(req->argvlen);
    sem_destroy(&req->sem);
    free(req);
}

static wf__req *req_new(int argc)
{
    wf__req *req = calloc(1, sizeof *req);
    if (!req) return NULL;
    if (sem_init(&req->sem, 0, 0) != 0) {
        free(req);
        return NULL;
    }
    req->argv = calloc((size_t)argc + 1, sizeof *req->argv);
    req->argvlen = calloc((size_t)argc + 1, sizeof *req->argvlen);
    if (!req->argv || !req->argvlen) {
        req_free(req);
        return NULL;
    }
    return req;
}

static int req_add(wf__req *req, const char *s, size_t len)
{
    char *c = malloc(len + 1);
    if (!c) return -1;
    if (len) memcpy(c, s, len);
    c[len] = '\0';
    req->argv[req->argc] = c;
    req->argvlen[req->argc] = len;
    req->argc++;
    return 0;
}

static int run_req(wf_ctx *ctx, wf__req *req, redisReply **reply, wf_error *err)
{
    req->queued_mono = wf__mono_ms();
    /* The lease's end; wf__reqs_pump makes it at least queued_mono + the URL's timeout_ms. */
    req->deadline_mono = atomic_load(&ctx->job->lease_until_mono);
    req->resend_ok = req->raw || req->script != WF__SCRIPT_EVENT_SEND;
    int rc = wf__pool_call(ctx->pool, req);
    if (rc == WF_OK) {
        *reply = req->reply;
        req->reply = NULL;
    } else if (err) {
        *err = req->err;
    }
    wf__reply_free(req->reply);
    req_free(req);
    return rc;
}

int wf__ctx_call(wf_ctx *ctx, wf__script s, int nkeys, const char *const *keys, int nargs,
                 const char *const *args, const size_t *arglen, redisReply **reply, wf_error *err)
{
    if (reply) *reply = NULL;
    if (!ctx || !reply || nkeys < 0 || nargs < 0 || (nkeys && !keys) || (nargs && !args))
        return wf_error_set(err, WF_ERR_INVALID, "wf__ctx_call: bad arguments");
    wf__req *req = req_new(nkeys + nargs);
    if (!req) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    req->script = s;
    req->nkeys = nkeys;
    for (int i = 0; i < nkeys; i++)
        if (req_add(req, keys[i], strlen(keys[i])) != 0) goto oom;
    for (int i = 0; i < nargs; i++) {
        const char *a = args[i] ? args[i] : "";
        if (req_add(req, a, arglen ? arglen[i] : strlen(a)) != 0) goto oom;
    }
    return run_req(ctx, req, reply, err);
oom:
    req_free(req);
    return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
}

int wf__ctx_command(wf_ctx *ctx, int argc, const char *const *argv, const size_t *argvlen,
                    redisReply **reply, wf_error *err)
{
    if (reply) *reply = NULL;
    if (!ctx || !reply || argc < 1 || !argv)
        return wf_error_set(err, WF_ERR_INVALID, "wf__ctx_command: bad arguments");
    wf__req *req = req_new(argc);
    if (!req) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    req->raw = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i] ? argv[i] : "";
        if (req_add(req, a, argvlen ? argvlen[i] : strlen(a)) != 0) {
            req_free(req);
            return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        }
    }
    return run_req(ctx, req, reply, err);
}

/* The worker's transport for wf__event_send: the loop's cmd connection. */
static int ctx_transport_call(void *c, wf__script s, int nkeys, const char *const *keys, int nargs,
                              const char *const *args, const size_t *arglen, redisReply **reply,
                              wf_error *err)
{
    return wf__ctx_call(c, s, nkeys, keys, nargs, args, arglen, reply, err);
}

int wf_ctx_send_event(wf_ctx *ctx, const char *name, const void *payload, size_t len, wf_error *err)
{
    if (!ctx) return wf_error_set(err, WF_ERR_INVALID, "ctx is NULL");
    wf__transport t = {ctx_transport_call, wf__reply_free, ctx};
    return wf__event_send(&t, ctx->job->prefix, ctx->job->max_payload, name, NULL, payload, len,
                          err);
}

/* ---- Requests (loop side) ------------------------------------------------------------------ */

void wf__req_answer(wf_worker *w, wf__req *req, const redisReply *r)
{
    wf_error e = {0};
    if (!r && req->resend_ok && !w->stop.closing && wf__mono_ms() < req->deadline_mono) {
        /* Lost with its connection: queued again, sent once the connection is back. */
        req->next = w->reqs_head;
        w->reqs_head = req;
        if (!w->reqs_tail) w->reqs_tail = req;
        return;
    }
    if (r && r->type == REDIS_REPLY_ERROR && wf__reply_action(r) != WF__ACT_DONE) {
        /* The router re-sent it for as long as a lease lasts: Redis still refuses. */
        wf_error_set(&e, WF_ERR_IO, "Redis kept refusing the call (%.*s)",
                     (int)(r->len > 200 ? 200 : r->len), r->str);
        wf__req_complete(w->pool, req, NULL, &e);
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        wf__script_error(r->str, r->len, &e);
        wf__req_complete(w->pool, req, NULL, &e);
    } else {
        wf__req_complete(w->pool, req, r, NULL);
    }
}

static void req_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__conn *conn = ac->data;
    wf__req_answer(conn->w, privdata, reply);
}

static int req_send(wf_worker *w, wf__req *req)
{
    /* Step records wait for the end of the loop turn, to go out with the others (batch_step.c). */
    if (!req->raw && req->script == WF__SCRIPT_STEP && wf__sbatch_add(w, req) == WF_OK)
        return WF_OK;
    if (req->raw)
        return wf__conn_argv(&w->cmd, req_reply, req, req->argc, (const char **)req->argv,
                             req->argvlen) == REDIS_OK
                   ? WF_OK
                   : WF_ERR_IO;
    return wf__conn_script(&w->cmd, req_reply, req, req->script, req->nkeys,
                           (const char *const *)req->argv, req->argc - req->nkeys,
                           (const char *const *)req->argv + req->nkeys, req->argvlen + req->nkeys);
}

void wf__reqs_pump(wf_worker *w)
{
    wf__req *fresh = wf__pool_take_reqs(w->pool);
    while (fresh) {
        wf__req *next = fresh->next;
        fresh->next = NULL;
        if (fresh->deadline_mono < fresh->queued_mono + w->url.timeout_ms)
            fresh->deadline_mono = fresh->queued_mono + w->url.timeout_ms;
        if (w->reqs_tail)
            w->reqs_tail->next = fresh;
        else
            w->reqs_head = fresh;
        w->reqs_tail = fresh;
        fresh = next;
    }
    int64_t now = wf__mono_ms();
    wf__req **pp = &w->reqs_head, *last = NULL;
    while (*pp) {
        wf__req *req = *pp;
        int done = 0;
        wf_error e = {0};
        if (w->stop.closing) {
            wf_error_set(&e, WF_ERR_CLOSED, "the worker is shutting down");
            done = 1;
        } else if (w->cmd.ready) {
            int rc = req_send(w, req);
            if (rc != WF_OK) wf_error_set(&e, rc, "cannot send to Redis: %s", wf_strerror(rc));
            done = 1; /* sent (the callback completes it) or failed (completed here) */
        } else if (now > req->deadline_mono) {
            wf_error_set(&e, WF_ERR_IO,
                         "Redis unreachable for %lld ms, past the run's lease and the URL's "
                         "timeout_ms (%d ms); the worker keeps reconnecting",
                         (long long)(now - req->queued_mono), w->url.timeout_ms);
            done = 1;
        }
        if (done) {
            *pp = req->next;
            req->next = NULL;
            if (e.code) wf__req_complete(w->pool, req, NULL, &e);
        } else {
            last = req;
            pp = &req->next;
        }
    }
    w->reqs_tail = last;
}

void wf__reqs_fail_all(wf_worker *w, int code, const char *why)
{
    wf__sbatch_hold(w); /* step records not sent yet fail with the rest */
    wf__req *req = w->reqs_head;
    w->reqs_head = w->reqs_tail = NULL;
    while (req) {
        wf__req *next = req->next;
        wf_error e = {0};
        wf_error_set(&e, code, "%s", why);
        wf__req_complete(w->pool, req, NULL, &e);
        req = next;
    }
}
