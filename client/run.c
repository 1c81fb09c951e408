/* run.c - runWorkflow / getWorkflowRun and the run handle: id, provider, native, status, stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "cluster.h"

#define ENQUEUE_MAX_DEPTH 64

int wf__check_start(wf_client *client, const char *name, const void *payload, size_t len,
                    wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!name || !wf__name_valid(name))
        return wf_error_set(err, WF_ERR_BAD_NAME,
                            "invalid workflow name '%.64s': use 1-%d characters of "
                            "[A-Za-z0-9._-], starting with a letter or digit",
                            name ? name : "(null)", WF__NAME_MAX);
    if (len > client->url.max_payload)
        return wf_error_set(err, WF_ERR_TOO_LARGE,
                            "payload is %zu bytes, over the limit of %zu (raise max_payload in "
                            "the Redis URL if this is intended)",
                            len, client->url.max_payload);
    if (len > 0 && !payload) return wf_error_set(err, WF_ERR_INVALID, "payload is NULL, len > 0");
    if (len > 0) {
        wf_payload_limits lim = {client->url.max_payload, ENQUEUE_MAX_DEPTH};
        int rc = wf_msgpack_check(payload, len, &lim, err);
        if (rc != WF_OK) return rc;
    }
    return WF_OK;
}

int wf__check_run_options(const wf_run_options *opt, wf_error *err)
{
    if (!opt) return WF_OK;
    if (opt->id && !wf__suffix_valid(opt->id))
        return wf_error_set(err, WF_ERR_BAD_ID,
                            "run id suffix must be 1-%d characters of [A-Za-z0-9._-]",
                            WF__SUFFIX_MAX);
    if (opt->delay_ms < 0) return wf_error_set(err, WF_ERR_INVALID, "delay_ms must be >= 0");
    return wf__priority_check(opt->priority, err);
}

int wf__enqueue_call_init(wf__enqueue_call *call, const wf__url *url, const char *name,
                          const char *id, const void *payload, size_t len,
                          const wf_run_options *opt, const char *how)
{
    memset(call, 0, sizeof *call);
    if (wf__wfkeys_init(&call->wk, url->prefix, name) != WF_OK) return WF_ERR_NOMEM;
    call->own[0] = wf__key_run(url->prefix, name, id);
    /* Singleton and debounce (enqueue.lua) read the limits and the key -> run map. */
    call->own[1] = wf__key_wf(url->prefix, name, "limits");
    call->own[2] = wf__key_wf(url->prefix, name, "single");
    if (!call->own[0] || !call->own[1] || !call->own[2]) {
        wf__enqueue_call_free(call);
        return WF_ERR_NOMEM;
    }
    for (int i = 0; i < WF__NFIXED; i++) call->keys[i] = call->wk.k[i];
    for (int i = 0; i < 3; i++) call->keys[WF__NFIXED + i] = call->own[i];
    snprintf(call->delay, sizeof call->delay, "%lld", (long long)(opt ? opt->delay_ms : 0));
    int lane = wf__lane_of_priority(opt ? opt->priority : WF_PRIORITY_NORMAL);
    const char *a[8] = {id,
                        name,
                        payload ? (const char *)payload : "",
                        call->delay,
                        "",
                        "",
                        wf__lane_arg(lane < 0 ? WF__LANE_NORMAL : (wf__lane)lane),
                        how};
    call->nargs = 8;
    for (int i = 0; i < call->nargs; i++) {
        call->args[i] = a[i];
        call->lens[i] = i == 2 ? (payload ? len : 0) : strlen(a[i]);
    }
    return WF_OK;
}

void wf__enqueue_call_free(wf__enqueue_call *call)
{
    wf__wfkeys_free(&call->wk);
    for (int i = 0; i < 3; i++) free(call->own[i]);
    memset(call, 0, sizeof *call);
}

/* enqueue_lean.lua for run `id` (a generated id, ready now): WF_OK once it is queued, lean; *full
 * set (and nothing written) when enqueue.lua must take it (singleton, debounce, a clock far off);
 * or an error (WF_ERR_IO: the caller's retry goes through enqueue.lua, which looks first). */
static int enqueue_lean(wf__rc *c, const wf__url *url, const char *name, const char *id,
                        const void *payload, size_t len, const wf_run_options *opt, int *full,
                        wf_error *err)
{
    static const char *const lanes[WF__NLANES] = {"queue:high", "queue", "queue:low"};
    int lane = wf__lane_of_priority(opt ? opt->priority : WF_PRIORITY_NORMAL);
    char *keys[2] = {wf__key_wf(url->prefix, name, lanes[lane < 0 ? WF__LANE_NORMAL : lane]),
                     wf__key_wf(url->prefix, name, "limits")};
    if (!keys[0] || !keys[1]) {
        free(keys[0]);
        free(keys[1]);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    const char *args[2] = {strchr(id, ':') + 1, payload ? (const char *)payload : ""};
    size_t lens[2] = {strlen(args[0]), payload ? len : 0};
    redisReply *r = wf__script_call(c, WF__SCRIPT_ENQUEUE_LEAN, 2, (const char *const *)keys, 2,
                                    args, lens, err);
    free(keys[0]);
    free(keys[1]);
    if (!r) return err ? err->code : WF_ERR_IO;
    int rc = WF_OK;
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "FULL") == 0)
        *full = 1;
    else if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
        rc = wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply from enqueue_lean.lua");
    freeReplyObject(r);
    return rc;
}

int wf__enqueue(wf__rc *c, const wf__url *url, const char *name, const void *payload, size_t len,
                const wf_run_options *opt, char *id, wf_error *err)
{
    int rc = wf__check_run_options(opt, err);
    if (rc != WF_OK) return rc;
    const char *how = WF__ID_CALLER;
    if (opt && opt->id) {
        snprintf(id, WF__ID_MAX, "%s:%s", name, opt->id);
    } else if (id[0]) {
        how = WF__ID_RETRY; /* the id of a call whose answer was lost: look for its run first */
    } else {
        wf__runid_new(name, id);
        how = WF__ID_GENERATED;
    }
    if (strcmp(how, WF__ID_GENERATED) == 0 && !(opt && opt->delay_ms > 0)) {
        int full = 0;
        rc = enqueue_lean(c, url, name, id, payload, len, opt, &full, err);
        if (!full) return rc;
    }
    wf__enqueue_call call;
    if (wf__enqueue_call_init(&call, url, name, id, payload, len, opt, how) != WF_OK)
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__script_call(c, WF__SCRIPT_ENQUEUE, WF__NFIXED + 3, call.keys, call.nargs,
                                    call.args, call.lens, err);
    wf__enqueue_call_free(&call);
    if (!r) return err ? err->code : WF_ERR_IO;
    int redirected;
    rc = wf__enqueue_reply(r, id, &redirected, err);
    freeReplyObject(r);
    return rc;
}

int wf__enqueue_reply(const redisReply *r, char *id, int *redirected, wf_error *err)
{
    *redirected = 0;
    if (r->type != REDIS_REPLY_ARRAY || (r->elements != 2 && r->elements != 3))
        return wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply from enqueue script");
    if (r->elements == 3) {
        const redisReply *other = r->element[2];
        if (other->type != REDIS_REPLY_STRING || other->len == 0 || other->len >= WF__ID_MAX)
            return wf_error_set(err, WF_ERR_PROTOCOL, "unexpected run id from enqueue script");
        memcpy(id, other->str, other->len);
        id[other->len] = '\0';
        *redirected = 1;
    }
    return WF_OK;
}

static wf_run *run_new(wf_client *client, const char *id, const char *workflow, wf_error *err)
{
    wf_run *run = calloc(1, sizeof *run);
    if (!run) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    run->client = client;
    snprintf(run->id, sizeof run->id, "%s", id);
    snprintf(run->workflow, sizeof run->workflow, "%s", workflow);
    run->key = wf__key_run(client->url.prefix, workflow, id);
    if (!run->key) {
        free(run);
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return run;
}

wf_run *wf_run_workflow_ex(wf_client *client, const char *name, const void *payload, size_t len,
                           const wf_run_options *options, wf_error *err)
{
    if (wf__check_start(client, name, payload, len, err) != WF_OK ||
        wf__check_run_options(options, err) != WF_OK)
        return NULL;
    if (!(options && options->allow_unregistered) &&
        wf__client_check_workflow(client, name, err) != WF_OK)
        return NULL;
    char id[WF__ID_MAX] = "";
    int rc = WF_ERR_IO;
    /* One retry after a reconnect, with the id of the first try (wf__enqueue): the enqueue
     * script looks for the run that try may have started, so a retry after a lost reply never
     * creates a second run. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (wf__client_ensure(client, err) != WF_OK) return NULL;
        rc = wf__enqueue(client->c, &client->url, name, payload, len, options, id, err);
        if (rc != WF_ERR_IO) break;
    }
    if (rc != WF_OK) return NULL;
    return run_new(client, id, name, err);
}

wf_run *wf_run_workflow(wf_client *client, const char *name, const void *payload, size_t len,
                        wf_error *err)
{
    return wf_run_workflow_ex(client, name, payload, len, NULL, err);
}

wf_run *wf_get_workflow_run(wf_client *client, const char *id, wf_error *err)
{
    if (!client) {
        wf_error_set(err, WF_ERR_INVALID, "client is NULL");
        return NULL;
    }
    char workflow[WF__NAME_MAX + 1];
    if (wf__runid_parse(id, workflow, err) != WF_OK) return NULL;
    wf_run *run = run_new(client, id, workflow, err);
    if (!run) return NULL;
    /* status.lua rather than EXISTS: a lean queued run has no hash yet (schema 2). */
    redisReply *r = wf__run_read(run, err);
    if (!r) {
        wf_run_free(run);
        return NULL;
    }
    int exists = r->elements > 0;
    freeReplyObject(r);
    if (!exists) {
        wf_error_set(err, WF_ERR_NOT_FOUND,
                     "no run '%s' (never started, or expired after its retention time)", id);
        wf_run_free(run);
        return NULL;
    }
    return run;
}

void wf_run_free(wf_run *run)
{
    if (!run) return;
    free(run->key);
    free(run);
}

const char *wf_run_id(const wf_run *run)
{
    return run->id;
}

const char *wf_run_provider(const wf_run *run)
{
    (void)run;
    return "redis";
}

const char *wf_run_native(const wf_run *run)
{
    return run->key;
}

const char *wf_run_workflow_name(const wf_run *run)
{
    return run->workflow;
}

/* ---- status --------------------------------------------------------------------------------- */

static int64_t field_i64(const redisReply *v)
{
    if (!v || v->type != REDIS_REPLY_STRING || v->len == 0 || v->len > 20) return 0;
    char buf[24];
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    return strtoll(buf, NULL, 10);
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

redisReply *wf__run_read(wf_run *run, wf_error *err)
{
    const char *keys[1] = {run->key};
    const char *args[1] = {run->id};
    for (int attempt = 0; attempt < 2; attempt++) { /* a read: once more after a reconnect */
        if (wf__client_ensure(run->client, err) != WF_OK) return NULL;
        redisReply *r =
            wf__script_call(run->client->c, WF__SCRIPT_STATUS, 1, keys, 1, args, NULL, err);
        if (r && r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply from status.lua");
            return NULL;
        }
        if (r || (err && err->code != WF_ERR_IO)) return r;
    }
    return NULL;
}

int wf_run_status(wf_run *run, wf_status *st, wf_error *err)
{
    if (!run || !st) return wf_error_set(err, WF_ERR_INVALID, "run or status is NULL");
    memset(st, 0, sizeof *st);
    redisReply *r = wf__run_read(run, err);
    if (!r) return err ? err->code : WF_ERR_IO;
    if (r->elements == 0) {
        freeReplyObject(r);
        return wf_error_set(err, WF_ERR_NOT_FOUND, "run '%s' no longer exists", run->id);
    }
    size_t n = r->elements / 2;
    st->raw = calloc(n, sizeof *st->raw);
    if (!st->raw) {
        freeReplyObject(r);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        wf_field *f = &st->raw[st->raw_len];
        f->name = dup_bytes(k->str, k->len);
        f->value = dup_bytes(v->str, v->len);
        f->value_len = v->len;
        if (!f->name || !f->value) {
            free(f->name);
            free(f->value);
            freeReplyObject(r);
            wf_status_clear(st);
            return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        }
        st->raw_len++;
        const char *name = f->name;
        if (strcmp(name, "state") == 0)
            st->state = wf_state_from_name(f->value);
        else if (strcmp(name, "attempt") == 0)
            st->attempt = (int)field_i64(v);
        else if (strcmp(name, "created_at") == 0)
            st->created_at_ms = field_i64(v);
        else if (strcmp(name, "updated_at") == 0)
            st->updated_at_ms = field_i64(v);
        else if (strcmp(name, "started_at") == 0)
            st->started_at_ms = field_i64(v);
        else if (strcmp(name, "finished_at") == 0)
            st->finished_at_ms = field_i64(v);
        else if (strcmp(name, "wake_at") == 0)
            st->wake_at_ms = field_i64(v);
        else if (strcmp(name, "wait_reason") == 0)
            st->wait_reason = f->value;
        else if (strcmp(name, "worker") == 0)
            st->worker = f->value;
        else if (strcmp(name, "error") == 0)
            st->error = f->value;
        else if (strcmp(name, "output") == 0 && v->len > 0) {
            st->output = f->value;
            st->output_len = v->len;
        }
    }
    freeReplyObject(r);
    /* The convenience pointers alias raw[] values; make them owned copies so that clear() can
     * free raw[] and them independently. */
    st->wait_reason = st->wait_reason ? strdup(st->wait_reason) : NULL;
    st->worker = st->worker ? strdup(st->worker) : NULL;
    st->error = st->error ? strdup(st->error) : NULL;
    st->output = st->output ? dup_bytes(st->output, st->output_len) : NULL;
    return WF_OK;
}

void wf_status_clear(wf_status *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->raw_len; i++) {
        free(st->raw[i].name);
        free(st->raw[i].value);
    }
    free(st->raw);
    free(st->output);
    free(st->error);
    free(st->wait_reason);
    free(st->worker);
    memset(st, 0, sizeof *st);
}

/* ---- stop ----------------------------------------------------------------------------------- */

#define STOP_MAX_DEPTH 16

/* stop.lua on run `id` of `workflow`. Returns WF_OK, WF_ERR_FINAL (e.message "FINAL <state>"),
 * WF_ERR_NOT_FOUND or a connection error. */
static int stop_one(wf_client *client, const char *workflow, const char *id, const char *reason,
                    wf_error *e)
{
    wf__wfkeys wk;
    if (wf__wfkeys_init(&wk, client->url.prefix, workflow) != WF_OK)
        return wf_error_set(e, WF_ERR_NOMEM, "out of memory");
    char *runkey = wf__key_run(client->url.prefix, workflow, id);
    char *steps = wf__key_steps(client->url.prefix, workflow, id);
    /* The workflow's webhook outbox: "auto" records the cancellation there when a worker with
     * webhooks created it (lua/lib_finish.lua outbox_add): the notification is as durable as the
     * stop. P:{W}:parents: a child run's cancellation reaches its parent (lib_finish.lua
     * parent_add). */
    char *outbox = wf__key_wf(client->url.prefix, workflow, "outbox");
    char *parents = wf__key_wf(client->url.prefix, workflow, "parents");
    int rc = WF_OK;
    if (!runkey || !steps || !outbox || !parents) {
        rc = wf_error_set(e, WF_ERR_NOMEM, "out of memory");
    } else {
        const char *keys[WF__NFIXED + 4];
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
        keys[WF__NFIXED] = runkey;
        keys[WF__NFIXED + 1] = steps;
        keys[WF__NFIXED + 2] = outbox;
        keys[WF__NFIXED + 3] = parents;
        char retention[32];
        snprintf(retention, sizeof retention, "%lld", (long long)client->url.retention_ms);
        const char *args[4] = {id, reason, retention, "auto"};
        redisReply *r =
            wf__script_call(client->c, WF__SCRIPT_STOP, WF__NFIXED + 4, keys, 4, args, NULL, e);
        if (r)
            freeReplyObject(r);
        else
            rc = e->code ? e->code : WF_ERR_IO;
    }
    free(parents);
    free(outbox);
    free(steps);
    free(runkey);
    wf__wfkeys_free(&wk);
    return rc;
}

/* Stops the children run `id` (cancelled) still waits for: its steps of kind "invoke" that are
 * `waiting`, unless started with keep_running. Recursive (bounded): a child's own children too. */
static void stop_children(wf_client *client, const char *workflow, const char *id, int depth)
{
    if (depth >= STOP_MAX_DEPTH) return;
    char *steps = wf__key_steps(client->url.prefix, workflow, id);
    if (!steps) return;
    redisReply *r = wf__client_cmd(client, 1, NULL, "HGETALL %s", steps);
    free(steps);
    if (!r) return;
    char reason[WF__ID_MAX + 32];
    snprintf(reason, sizeof reason, "parent %s was stopped", id);
    for (size_t i = 1; r->type == REDIS_REPLY_ARRAY && i < r->elements; i += 2) {
        const redisReply *v = r->element[i];
        wf__steprec rec;
        char cwf[WF__NAME_MAX + 1];
        if (v->type != REDIS_REPLY_STRING ||
            wf__steprec_decode(v->str, v->len, &rec, NULL) != WF_OK ||
            strcmp(rec.kind, "invoke") != 0 || strcmp(rec.status, "waiting") != 0 || rec.keep ||
            wf__runid_parse(rec.child, cwf, NULL) != WF_OK)
            continue;
        wf_error e = {0};
        int rc = stop_one(client, cwf, rec.child, reason, &e);
        if (rc == WF_OK || (rc == WF_ERR_FINAL && strstr(e.message, "cancelled")))
            stop_children(client, cwf, rec.child, depth + 1);
    }
    freeReplyObject(r);
}

#define STOP_REASON_MAX 1024

int wf_run_stop(wf_run *run, wf_error *err)
{
    return wf_run_stop_reason(run, NULL, err);
}

int wf_run_stop_reason(wf_run *run, const char *reason, wf_error *err)
{
    if (!run) return wf_error_set(err, WF_ERR_INVALID, "run is NULL");
    if (reason && strlen(reason) > STOP_REASON_MAX)
        return wf_error_set(err, WF_ERR_INVALID, "a stop reason is at most %d bytes",
                            STOP_REASON_MAX);
    wf_client *client = run->client;
    if (wf__client_ensure(client, err) != WF_OK) return err ? err->code : WF_ERR_CONNECT;
    char why[STOP_REASON_MAX + 32] = "stopped by request";
    if (reason && *reason) snprintf(why, sizeof why, "stopped by request: %s", reason);
    wf_error e = {0};
    int rc = stop_one(client, run->workflow, run->id, why, &e);
    /* Children (wf_step_invoke): stopped after the parent, also when a first stop was cut short
     * before it reached them (the parent is then found already cancelled). */
    if (rc == WF_OK || (rc == WF_ERR_FINAL && strstr(e.message, "cancelled")))
        stop_children(client, run->workflow, run->id, 0);
    if (rc == WF_OK) return WF_OK;
    if (e.code == WF_ERR_FINAL)
        return wf_error_set(err, WF_ERR_FINAL, "run '%s' is already %s; nothing to stop", run->id,
                            e.message + 6);
    if (e.code == WF_ERR_NOT_FOUND)
        return wf_error_set(err, WF_ERR_NOT_FOUND, "run '%s' no longer exists", run->id);
    if (err) *err = e;
    return e.code;
}
