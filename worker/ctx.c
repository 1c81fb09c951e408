/* ctx.c - the execution context a handler sees (wf_ctx_* of include/wf/workflow.h), and
 * wf__ctx_call(): the primitive through which code running on an executor thread reaches Redis.
 *
 * Only the loop thread may touch the async connections, so a call is a request object: the
 * executor queues it in the pool and waits on its condition variable; the loop sends it on the
 * cmd connection (or holds it while the connection is down, up to the URL's timeout_ms) and
 * completes it from the reply callback with a deep copy of the reply. Every request is completed
 * exactly once: by its reply, by a dropped connection (WF_ERR_IO), or at shutdown (WF_ERR_CLOSED).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    for (int i = 0; i < req->argc; i++) free(req->argv[i]);
    free(req->argv);
    free(req->argvlen);
    pthread_cond_destroy(&req->cv);
    free(req);
}

static wf__req *req_new(int argc)
{
    wf__req *req = calloc(1, sizeof *req);
    if (!req) return NULL;
    pthread_cond_init(&req->cv, NULL);
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

/* Delivers an event to one waiter "RUNID STEP" (deliver.lua in the run's own slot), as
 * wf_send_event() does. Members that are not well formed are skipped. */
static int deliver(wf_ctx *ctx, const char *member, const char *event, const void *payload,
                   size_t len, wf_error *err)
{
    char id[WF__ID_MAX], workflow[WF__NAME_MAX + 1];
    const char *sp = strchr(member, ' ');
    if (!sp || (size_t)(sp - member) >= sizeof id) return WF_OK;
    memcpy(id, member, (size_t)(sp - member));
    id[sp - member] = '\0';
    const char *step = sp + 1;
    if (wf__runid_parse(id, workflow, NULL) != WF_OK || !wf__step_name_valid(step)) return WF_OK;
    wf__steprec rec = {0};
    snprintf(rec.kind, sizeof rec.kind, "event");
    snprintf(rec.status, sizeof rec.status, "done");
    snprintf(rec.event, sizeof rec.event, "%s", event);
    rec.result = payload ? payload : "\xc0"; /* nil when the event has no payload */
    rec.result_len = payload ? len : 1;
    rec.t1 = wf__now_ms();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf__wfkeys wk = {0};
    char *run = wf__key_run(ctx->job->prefix, workflow, id);
    char *steps = wf__key_steps(ctx->job->prefix, workflow, id);
    int rc;
    if (!run || !steps || wf__steprec_encode(&rec, &sb) != WF_OK ||
        wf__wfkeys_init(&wk, ctx->job->prefix, workflow) != WF_OK) {
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    } else {
        const char *keys[WF__NFIXED + 2];
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
        keys[WF__NFIXED] = run;
        keys[WF__NFIXED + 1] = steps;
        const char *args[3] = {id, step, sb.data};
        size_t lens[3] = {strlen(id), strlen(step), sb.size};
        redisReply *r = NULL;
        rc = wf__ctx_call(ctx, WF__SCRIPT_DELIVER, WF__NFIXED + 2, keys, 3, args, lens, &r, err);
        wf__reply_free(r);
    }
    wf__wfkeys_free(&wk);
    free(run);
    free(steps);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int wf_ctx_send_event(wf_ctx *ctx, const char *name, const void *payload, size_t len, wf_error *err)
{
    if (!ctx) return wf_error_set(err, WF_ERR_INVALID, "ctx is NULL");
    if (!name || !wf__name_valid(name))
        return wf_error_set(err, WF_ERR_BAD_NAME,
                            "invalid event name: use 1-128 characters of [A-Za-z0-9._-]");
    if (!payload) len = 0;
    if (len > ctx->job->max_payload)
        return wf_error_set(err, WF_ERR_TOO_LARGE, "event payload is %zu bytes, over %zu", len,
                            ctx->job->max_payload);
    if (len > 0) {
        wf_payload_limits lim = {ctx->job->max_payload, 64};
        int rc = wf_msgpack_check(payload, len, &lim, err);
        if (rc != WF_OK) return rc;
    }
    char *log = wf__key_event(ctx->job->prefix, name, "log");
    char *waiters = wf__key_event(ctx->job->prefix, name, "waiters");
    if (!log || !waiters) {
        free(log);
        free(waiters);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    const char *keys[2] = {log, waiters};
    const char *args[3] = {"", payload ? payload : "", "10000"};
    size_t lens[3] = {0, len, 5};
    redisReply *r = NULL;
    int rc = wf__ctx_call(ctx, WF__SCRIPT_EVENT_SEND, 2, keys, 3, args, lens, &r, err);
    free(log);
    free(waiters);
    if (rc != WF_OK) return rc;
    /* r = {entry id, waiter members...}: deliver to each; go on past failures, report the first. */
    for (size_t i = 1; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        wf_error e = {0};
        int d = deliver(ctx, r->element[i]->str, name, payload, len, &e);
        if (d != WF_OK && rc == WF_OK) {
            rc = d;
            if (err) *err = e;
        }
    }
    wf__reply_free(r);
    return rc;
}

/* ---- Requests (loop side) ------------------------------------------------------------------ */

static void req_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__conn *conn = ac->data;
    wf__req *req = privdata;
    redisReply *r = reply;
    wf_error e = {0};
    if (r && r->type == REDIS_REPLY_ERROR) {
        wf__script_error(r->str, r->len, &e);
        wf__req_complete(conn->w->pool, req, NULL, &e);
    } else {
        wf__req_complete(conn->w->pool, req, r, NULL);
    }
}

static int req_send(wf_worker *w, wf__req *req)
{
    redisAsyncContext *ac = w->cmd.ac;
    if (req->raw)
        return redisAsyncCommandArgv(ac, req_reply, req, req->argc, (const char **)req->argv,
                                     req->argvlen) == REDIS_OK
                   ? WF_OK
                   : WF_ERR_IO;
    return wf__script_call_async(ac, req_reply, req, req->script, req->nkeys,
                                 (const char *const *)req->argv, req->argc - req->nkeys,
                                 (const char *const *)req->argv + req->nkeys,
                                 req->argvlen + req->nkeys);
}

void wf__reqs_pump(wf_worker *w)
{
    wf__req *fresh = wf__pool_take_reqs(w->pool);
    while (fresh) {
        wf__req *next = fresh->next;
        fresh->next = NULL;
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
        if (w->closing) {
            wf_error_set(&e, WF_ERR_CLOSED, "the worker is shutting down");
            done = 1;
        } else if (w->cmd.ready) {
            int rc = req_send(w, req);
            if (rc != WF_OK) wf_error_set(&e, rc, "cannot send to Redis: %s", wf_strerror(rc));
            done = 1; /* sent (the callback completes it) or failed (completed here) */
        } else if (now - req->queued_mono > w->url.timeout_ms) {
            wf_error_set(&e, WF_ERR_IO,
                         "Redis unreachable for more than %d ms (the worker keeps reconnecting)",
                         w->url.timeout_ms);
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
