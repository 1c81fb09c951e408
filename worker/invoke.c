/* invoke.c - child workflows: wf_step_invoke (include/wf/step.h) on the executor side, and the
 * delivery of a child's end to its parent on the loop side.
 *
 * Keys of one script stay within one workflow's hash tag, and a parent and its child are runs of
 * different workflows, so the crossing is done here, in two scripts:
 *
 *   parent  step.lua records the step `waiting` with the child's id, *before* the child exists;
 *           enqueue.lua (child's keys) creates the child with `parent` and `parent_step` (an id
 *           that exists returns the existing run: one child per step, whatever replays);
 *           suspend.lua makes the parent `waiting` ("child ID"), or answers RESUME when the end
 *           was delivered in between.
 *   child   the script that ends it (complete.lua, fail.lua, stop.lua, reclaim.lua) appends
 *           {id, parent, step, state, output, error} to P:{W}:parents in the same atomic call
 *           (lua/lib_finish.lua parent_add).
 *   any worker of W reads P:{W}:parents (consumer group "parents"), runs deliver.lua on the
 *           parent's keys (records the step `done` with the child's end, queues the parent when
 *           it waits on that step), then XACK + XDEL. An entry whose reader died stays pending
 *           and is taken over with XAUTOCLAIM after lease_ms: at least once, and deliver.lua
 *           ignores a step that is no longer waiting.
 *
 * Since the parent's `waiting` record exists before the child can end, every end finds it: the
 * parent running (suspend.lua then sees `done` and answers RESUME), waiting (queued), queued or
 * paused (the replay reads the record). A child found already ended when the invoke starts it
 * (steps cleared by a restart) is read from its run hash instead.
 *
 * Stopping: wf_run_stop (client/run.c) stops the waiting children of the run it cancelled. If the
 * stop lands between the parent's record and the child's creation, suspend.lua answers STALE
 * here: the parent is then found cancelled and the child stopped from this side.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "wf/step.h"
#include "wf_worker_internal.h"

#define GROUP        WF__PARENTS_GROUP
#define READ_MS      100
#define READ_COUNT   16
#define MAX_INFLIGHT 64

/* ---- Child ids ------------------------------------------------------------------------------ */

void wf__invoke_child_id(const char *parent, const char *step, const char *workflow, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1) {
        EVP_DigestUpdate(c, parent, strlen(parent));
        EVP_DigestUpdate(c, "\n", 1);
        EVP_DigestUpdate(c, step, strlen(step));
        EVP_DigestFinal_ex(c, md, &mdlen);
    }
    EVP_MD_CTX_free(c);
    char hex[33] = "";
    for (unsigned i = 0; i < 16 && i < mdlen; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    const char *colon = strchr(parent, ':');
    const char *suffix = colon ? colon + 1 : parent;
    if (strlen(suffix) + 1 + 16 <= WF__SUFFIX_MAX)
        snprintf(out, WF__ID_MAX, "%s:%s.%.16s", workflow, suffix, hex);
    else
        snprintf(out, WF__ID_MAX, "%s:%s", workflow, hex);
}

/* ---- The parent's step (executor thread) ---------------------------------------------------- */

/* The step's outcome from a `done` record. */
static int outcome(wf_ctx *ctx, const wf__steprec *rec, const msgpack_object **output)
{
    if (strcmp(rec->cstate, "completed") == 0)
        return wf__step_result(ctx, rec->result ? rec->result : "\xc0",
                               rec->result ? rec->result_len : 1, output);
    return wf_ctx_fail(ctx, WF_ERR_CHILD, "child run %s %s: %s", rec->child,
                       rec->cstate[0] ? rec->cstate : "ended",
                       rec->error && *rec->error ? rec->error : "(no error text)");
}

/* Keys of a run script on run `id` of `workflow`: fixed, run, steps, outbox, parents. */
typedef struct ckeys {
    wf__wfkeys wk;
    const char *k[WF__NFIXED + 4];
    char *own[4];
} ckeys;

static int ckeys_init(ckeys *ck, const char *prefix, const char *workflow, const char *id)
{
    memset(ck, 0, sizeof *ck);
    if (wf__wfkeys_init(&ck->wk, prefix, workflow) != WF_OK) return WF_ERR_NOMEM;
    ck->own[0] = wf__key_run(prefix, workflow, id);
    ck->own[1] = wf__key_steps(prefix, workflow, id);
    ck->own[2] = wf__key_wf(prefix, workflow, "outbox");
    ck->own[3] = wf__key_wf(prefix, workflow, "parents");
    for (int i = 0; i < WF__NFIXED; i++) ck->k[i] = ck->wk.k[i];
    for (int i = 0; i < 4; i++) {
        if (!ck->own[i]) return WF_ERR_NOMEM;
        ck->k[WF__NFIXED + i] = ck->own[i];
    }
    return WF_OK;
}

static void ckeys_free(ckeys *ck)
{
    wf__wfkeys_free(&ck->wk);
    for (int i = 0; i < 4; i++) free(ck->own[i]);
}

/* enqueue.lua for the child (idempotent). Sets *state to the child's state ("" when unknown) and
 * *created to 1 when this call created it. */
static int start_child(wf_ctx *ctx, const char *name, const char *workflow, const char *child,
                       const void *payload, size_t len, char *state, size_t n, int *created)
{
    ckeys ck;
    state[0] = '\0';
    *created = 0;
    if (ckeys_init(&ck, wf__ctx_prefix(ctx), workflow, child) != WF_OK) {
        ckeys_free(&ck);
        return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    }
    const char *args[6] = {child, workflow, payload ? payload : "", "0", ctx->job->id, name};
    size_t lens[6] = {strlen(child),        strlen(workflow), payload ? len : 0, 1,
                      strlen(ctx->job->id), strlen(name)};
    redisReply *r = NULL;
    wf_error err = {0};
    int rc = wf__ctx_call(ctx, WF__SCRIPT_ENQUEUE, WF__NFIXED + 1, ck.k, 6, args, lens, &r, &err);
    ckeys_free(&ck);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "starting child run %s: %s", child, err.message);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        *created = r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
        snprintf(state, n, "%s", r->element[1]->str);
    }
    wf__reply_free(r);
    return WF_OK;
}

/* Settles the step from the child's run hash, when the child has ended or Redis time reached the
 * step's deadline: a child that ended (state final) before the deadline (its finished_at, Redis
 * time, before w->until; any time without a deadline) gives its end; otherwise the step times
 * out. Returns the step's outcome. */
static int settle_child(wf_ctx *ctx, const char *name, const char *workflow, wf__steprec *w,
                        const msgpack_object **output)
{
    char *key = wf__key_run(wf__ctx_prefix(ctx), workflow, w->child);
    if (!key) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    const char *argv[6] = {"HMGET", key, "state", "finished_at", "output", "error"};
    redisReply *r = NULL;
    wf_error err = {0};
    int rc = wf__ctx_command(ctx, 6, argv, NULL, &r, &err);
    free(key);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "reading child run %s: %s", w->child, err.message);
    const redisReply *st = NULL, *fin = NULL, *o = NULL, *e = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        st = r->element[0];
        fin = r->element[1];
        o = r->element[2];
        e = r->element[3];
    }
    const char *state = st && st->type == REDIS_REPLY_STRING ? st->str : "";
    int ended = strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
                strcmp(state, "cancelled") == 0 || strcmp(state, "terminated") == 0;
    long long finished = fin && fin->type == REDIS_REPLY_STRING ? atoll(fin->str) : 0;
    int late = ended && w->until > 0 && finished >= w->until;
    wf__steprec done = *w;
    done.t1 = wf__step_now(ctx);
    if (!ended || late) {
        wf__reply_free(r);
        snprintf(done.status, sizeof done.status, "timeout");
        if ((rc = wf__step_record(ctx, name, &done)) != WF_OK) return rc;
        return wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "timed out waiting for child run %s%s", w->child,
                           late ? " (it ended after the deadline)" : "");
    }
    snprintf(done.status, sizeof done.status, "done");
    snprintf(done.cstate, sizeof done.cstate, "%s", state);
    done.until = 0;
    if (o && o->type == REDIS_REPLY_STRING && o->len > 0 && strcmp(state, "completed") == 0) {
        done.result = o->str;
        done.result_len = o->len;
    }
    if (e && e->type == REDIS_REPLY_STRING) {
        snprintf(done.err_buf, sizeof done.err_buf, "%s", e->str);
        done.error = done.err_buf;
    }
    rc = wf__step_record(ctx, name, &done);
    if (rc == WF_OK) rc = outcome(ctx, &done, output);
    wf__reply_free(r);
    return rc;
}

/* The parent was found not running any more (suspend.lua answered STALE): if it was stopped,
 * stop the child too (unless kept), since wf_run_stop may have looked before it existed. */
static void stop_if_parent_cancelled(wf_ctx *ctx, const char *workflow, const char *child)
{
    char *key = wf__key_run(wf__ctx_prefix(ctx), ctx->job->workflow, ctx->job->id);
    if (!key) return;
    const char *argv[3] = {"HGET", key, "state"};
    redisReply *r = NULL;
    int rc = wf__ctx_command(ctx, 3, argv, NULL, &r, NULL);
    free(key);
    int cancelled =
        rc == WF_OK && r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "cancelled") == 0;
    wf__reply_free(r);
    if (!cancelled) return;
    ckeys ck;
    if (ckeys_init(&ck, wf__ctx_prefix(ctx), workflow, child) == WF_OK) {
        char reason[WF__ID_MAX + 32], retention[24];
        snprintf(reason, sizeof reason, "parent %s was stopped", ctx->job->id);
        snprintf(retention, sizeof retention, "%lld", (long long)ctx->job->retention_ms);
        const char *args[4] = {child, reason, retention, "auto"};
        r = NULL;
        if (wf__ctx_call(ctx, WF__SCRIPT_STOP, WF__NFIXED + 4, ck.k, 4, args, NULL, &r, NULL) ==
            WF_OK)
            wf__log_step(WF__LOG_INFO, ctx->job->id, ctx->job->workflow, ctx->job->attempt, "child",
                         "run stopped: stopped its child run %s too", child);
        wf__reply_free(r);
    }
    ckeys_free(&ck);
}

int wf_step_invoke_ex(wf_ctx *ctx, const char *name, const char *workflow, const void *payload,
                      size_t len, const wf_invoke_options *options, const msgpack_object **output)
{
    if (output) *output = NULL;
    if (!ctx) return WF_ERR_INVALID;
    if (!workflow || !wf__name_valid(workflow))
        return wf_ctx_fail(ctx, WF_ERR_BAD_NAME, "invalid child workflow name '%.64s'",
                           workflow ? workflow : "(null)");
    if (!payload) len = 0;
    wf__steprec rec;
    int had = 0;
    int rc = wf__step_begin(ctx, name, "invoke", &rec, &had);
    if (rc != WF_OK) return rc;
    if (had && strcmp(rec.status, "done") == 0) return outcome(ctx, &rec, output);
    if (had && strcmp(rec.status, "timeout") == 0)
        return wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "timed out waiting for child run %s", rec.child);

    wf_invoke_options o = options ? *options : (wf_invoke_options){0};
    int64_t now = wf__step_now(ctx);
    wf__steprec w = {0};
    snprintf(w.kind, sizeof w.kind, "invoke");
    snprintf(w.status, sizeof w.status, "waiting");
    if (had && rec.child[0])
        snprintf(w.child, sizeof w.child, "%s", rec.child);
    else
        wf__invoke_child_id(ctx->job->id, name, workflow, w.child);
    w.keep = had ? rec.keep : o.keep_running != 0;
    w.t0 = had && rec.t0 ? rec.t0 : now;
    w.until = had ? rec.until : (o.timeout_ms > 0 ? now + o.timeout_ms : 0);

    if (!had) {
        /* First time here: check the request, then record the wait before the child exists. */
        if (len > ctx->job->max_payload)
            return wf_ctx_fail(ctx, WF_ERR_TOO_LARGE, "child payload is %zu bytes, over %zu", len,
                               ctx->job->max_payload);
        wf_error err = {0};
        wf_payload_limits lim = {ctx->job->max_payload, 64};
        if (len > 0 && (rc = wf_msgpack_check(payload, len, &lim, &err)) != WF_OK)
            return wf_ctx_fail(ctx, rc, "child payload: %s", err.message);
        char *reg = wf__key_global(wf__ctx_prefix(ctx), "workflows");
        if (!reg) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
        const char *argv[3] = {"HEXISTS", reg, workflow};
        redisReply *r = NULL;
        rc = wf__ctx_command(ctx, 3, argv, NULL, &r, &err);
        free(reg);
        int known = rc == WF_OK && r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        wf__reply_free(r);
        if (rc != WF_OK)
            return wf_ctx_fail(ctx, rc, "checking workflow %s: %s", workflow, err.message);
        if (!known)
            return wf_ctx_fail(ctx, WF_ERR_UNKNOWN_WORKFLOW,
                               "no worker has registered workflow '%s' (child of step '%s')",
                               workflow, name);
        if ((rc = wf__step_record(ctx, name, &w)) != WF_OK) return rc;
    }
    /* Whether the deadline has passed is decided by Redis time, in suspend.lua (DUE) and by the
     * child's end time (deliver.lua, settle_child), never by this worker's estimate. */

    char state[32];
    int created = 0;
    rc = start_child(ctx, name, workflow, w.child, payload, len, state, sizeof state, &created);
    if (rc != WF_OK) return rc;
    if (created)
        wf__log_step(WF__LOG_DEBUG, ctx->job->id, ctx->job->workflow, ctx->job->attempt, name,
                     "started child run %s", w.child);
    if (!created && (strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
                     strcmp(state, "cancelled") == 0 || strcmp(state, "terminated") == 0))
        /* Already ended: its end is final, read it from its run hash (an end at or after the
         * deadline times the step out). This covers an end whose delivery found no waiting
         * record (steps cleared by a restart), a parent that was not live then (restarted after
         * it ended), or a late end that deliver.lua refused; a delivery still on its way finds
         * the step settled and changes nothing. */
        return settle_child(ctx, name, workflow, &w, output);

    char reason[WF__ID_MAX + 16];
    snprintf(reason, sizeof reason, "child %s", w.child);
    rc = wf__step_suspend_due(ctx, name, &w, w.until, reason, NULL);
    if (rc == WF__STEP_DUE) {
        /* Redis time reached the deadline: a child that ended before it still counts (its end
         * may not be delivered yet); otherwise the step times out. */
        return settle_child(ctx, name, workflow, &w, output);
    }
    if (rc == WF_OK) {
        /* Delivered between the record and the suspend: read the record it wrote. */
        wf__step_forget(ctx);
        return wf_step_invoke_ex(ctx, name, workflow, payload, len, options, output);
    }
    if (rc == WF_ERR_STALE && !w.keep) stop_if_parent_cancelled(ctx, workflow, w.child);
    return rc;
}

int wf_step_invoke(wf_ctx *ctx, const char *name, const char *workflow, const void *payload,
                   size_t len, const msgpack_object **output)
{
    return wf_step_invoke_ex(ctx, name, workflow, payload, len, NULL, output);
}

/* ---- Delivery of child ends (loop thread) --------------------------------------------------- */

typedef struct delivery {
    wf_worker *w;
    char *stream;
    char entry[48];
} delivery;

static void field(const redisReply *f, const char *name, const redisReply **out)
{
    *out = NULL;
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING) {
            *out = f->element[i + 1];
            return;
        }
}

static void ack(wf_worker *w, const char *stream, const char *entry)
{
    if (!wf__conn_usable(&w->cmd)) return;
    wf__conn_command(&w->cmd, NULL, NULL, "XACK %s %s %s", stream, GROUP, entry);
    wf__conn_command(&w->cmd, NULL, NULL, "XDEL %s %s", stream, entry);
}

static void deliver_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    delivery *d = privdata;
    redisReply *r = reply;
    d->w->kids.inflight--;
    if (r && r->type != REDIS_REPLY_ERROR && !d->w->stop.closing) {
        ack(d->w, d->stream, d->entry);
    } else if (r) {
        /* Left pending: taken over (by any worker, this one included) after lease_ms. */
        wf__log(WF__LOG_ERROR, "child end %s of %s: deliver.lua failed: %s", d->entry, d->stream,
                r->str);
    }
    free(d->stream);
    free(d);
}

/* Delivers one entry [id, [field, value...]] of `stream` to its parent. */
static void deliver_entry(wf_worker *w, const char *stream, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= 48)
        return;
    const char *entry = e->element[0]->str;
    const redisReply *id, *parent, *step, *state, *out, *error, *at;
    field(e->element[1], "id", &id);
    field(e->element[1], "parent", &parent);
    field(e->element[1], "step", &step);
    field(e->element[1], "state", &state);
    field(e->element[1], "output", &out);
    field(e->element[1], "error", &error);
    field(e->element[1], "at", &at);
    char pwf[WF__NAME_MAX + 1];
    if (!id || !parent || !step || !state || id->len >= WF__ID_MAX ||
        wf__runid_parse(parent->str, pwf, NULL) != WF_OK || !wf__step_name_valid(step->str)) {
        wf__log(WF__LOG_WARN, "child end %s of %s is malformed: dropped", entry, stream);
        ack(w, stream, entry);
        return;
    }
    wf__steprec rec = {0};
    snprintf(rec.kind, sizeof rec.kind, "invoke");
    snprintf(rec.status, sizeof rec.status, "done");
    snprintf(rec.child, sizeof rec.child, "%s", id->str);
    snprintf(rec.cstate, sizeof rec.cstate, "%s", state->str);
    if (strcmp(state->str, "completed") == 0) {
        rec.result = out && out->len ? out->str : "\xc0";
        rec.result_len = out && out->len ? out->len : 1;
    }
    if (error && error->len) {
        snprintf(rec.err_buf, sizeof rec.err_buf, "%s", error->str);
        rec.error = rec.err_buf;
    }
    rec.t1 = wf__worker_redis_now(w);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf__wfkeys wk = {0};
    char *run = wf__key_run(w->url.prefix, pwf, parent->str);
    char *steps = wf__key_steps(w->url.prefix, pwf, parent->str);
    delivery *d = calloc(1, sizeof *d);
    if (d) d->stream = strdup(stream);
    if (run && steps && d && d->stream && wf__wfkeys_init(&wk, w->url.prefix, pwf) == WF_OK) {
        wf__steprec_encode(&rec, &sb);
        d->w = w;
        snprintf(d->entry, sizeof d->entry, "%s", entry);
        const char *keys[WF__NFIXED + 2];
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
        keys[WF__NFIXED] = run;
        keys[WF__NFIXED + 1] = steps;
        /* The child's end time (Redis time): an end at or after the parent's deadline does not
         * satisfy the wait (deliver.lua). */
        const char *args[4] = {parent->str, step->str, sb.data, at ? at->str : ""};
        size_t lens[4] = {parent->len, step->len, sb.size, at ? at->len : 0};
        if (wf__conn_script(&w->cmd, deliver_reply, d, WF__SCRIPT_DELIVER, WF__NFIXED + 2, keys, 4,
                            args, lens) == WF_OK) {
            w->kids.inflight++;
            wf__log_run(WF__LOG_DEBUG, parent->str, pwf, 0, "child run %s ended %s: delivering",
                        id->str, state->str);
            d = NULL;
        }
    }
    if (d) free(d->stream);
    free(d);
    wf__wfkeys_free(&wk);
    free(run);
    free(steps);
    msgpack_sbuffer_destroy(&sb);
}

/* The reader's batch of entries of stream `i` (group_reader.c). */
static void on_entries(void *ud, int i, const redisReply *entries, int takeover)
{
    wf_worker *w = ud;
    const char *stream = w->defs[i]->aux[WF__AUX_PARENTS];
    if (takeover)
        wf__log(WF__LOG_INFO, "taking over %zu child end%s of %s left by a worker that died",
                entries->elements, entries->elements == 1 ? "" : "s", stream);
#ifdef WF_FAULT_INJECTION /* -DWF_FAULT_INJECTION=ON only (CMakeLists.txt), never installed */
    else if (w->kids.crash && entries->elements > 0) {
        /* Fault injection for the tests: die like a SIGKILLed worker with the entry read but
         * not delivered (it stays pending in the group). */
        wf__log(WF__LOG_WARN, "WF_TEST_CRASH_AFTER_CHILD_READ: killing this process");
        raise(SIGKILL);
    }
#endif
    for (size_t k = 0; k < entries->elements; k++) deliver_entry(w, stream, entries->element[k]);
}

void wf__children_on_ready(wf_worker *w)
{
#ifdef WF_FAULT_INJECTION /* -DWF_FAULT_INJECTION=ON only (CMakeLists.txt), never installed */
    const char *crash = getenv("WF_TEST_CRASH_AFTER_CHILD_READ");
    w->kids.crash = crash && *crash == '1';
#endif
    if (!w->kids.reader && w->ndefs > 0) {
        const char **streams = calloc((size_t)w->ndefs, sizeof *streams);
        for (int i = 0; streams && i < w->ndefs; i++) streams[i] = w->defs[i]->aux[WF__AUX_PARENTS];
        if (streams)
            w->kids.reader = wf__greader_new(w, GROUP, "the child ends (P:{W}:parents)", streams,
                                             w->ndefs, READ_MS, on_entries, w);
        free(streams);
        if (!w->kids.reader) wf__log(WF__LOG_ERROR, "out of memory: child ends are not read");
    }
}

void wf__children_tick(wf_worker *w, int64_t now)
{
    if (w->stop.closing || w->stop.draining || !w->kids.reader) return;
    if (w->kids.inflight >= MAX_INFLIGHT) return;
    wf__greader_read(w->kids.reader, now, READ_COUNT);
    int64_t idle = w->opt.lease_ms;
    wf__greader_takeover(w->kids.reader, now, idle, READ_COUNT, idle / 2 > 250 ? idle / 2 : 250);
}
