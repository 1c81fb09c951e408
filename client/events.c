/* events.c - sendEvent: record an event in its log and deliver it to the runs waiting for it.
 *
 * Two scripts in two hash slots: event_send.lua on the event's keys ("P:{ev:NAME}:...") returns
 * the matching waiters, then deliver.lua on each waiting run's keys records the event as the wait
 * step's result and queues the run. If this process dies between the two, the event is still in
 * the log, and the run finds it when it next checks (its timeout, or any replay). An event whose
 * log time (Redis time) is at or after a wait's deadline does not satisfy that wait: event_send.lua
 * does not return such a waiter and deliver.lua refuses it.
 *
 * The logic is written once (wf__event_send) over a transport: the client's synchronous
 * connection here, the worker loop's connection for wf_ctx_send_event().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "cluster.h"

#define EVENT_LOG_MAX "10000"

/* Delivers to one waiter "RUNID STEP". Members that are not well formed are skipped. */
static int deliver(const wf__transport *t, const char *prefix, const char *member,
                   const char *event, const char *at, const void *payload, size_t len,
                   wf_error *err)
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
    char *runkey = wf__key_run(prefix, workflow, id);
    char *steps = wf__key_steps(prefix, workflow, id);
    int rc;
    if (!runkey || !steps || wf__steprec_encode(&rec, &sb) != WF_OK ||
        wf__wfkeys_init(&wk, prefix, workflow) != WF_OK) {
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    } else {
        const char *keys[WF__NFIXED + 2];
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
        keys[WF__NFIXED] = runkey;
        keys[WF__NFIXED + 1] = steps;
        const char *args[4] = {id, step, sb.data, at};
        size_t lens[4] = {strlen(id), strlen(step), sb.size, strlen(at)};
        redisReply *r = NULL;
        rc = t->call(t->ctx, WF__SCRIPT_DELIVER, WF__NFIXED + 2, keys, 4, args, lens, &r, err);
        if (r) t->free_reply(r);
    }
    wf__wfkeys_free(&wk);
    free(runkey);
    free(steps);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int wf__event_send(const wf__transport *t, const char *prefix, size_t max_payload, const char *name,
                   const char *key, const void *payload, size_t len, wf_error *err)
{
    if (!name || !wf__name_valid(name))
        return wf_error_set(err, WF_ERR_BAD_NAME,
                            "invalid event name: use 1-128 characters of [A-Za-z0-9._-]");
    if (key && *key && !wf__name_valid(key))
        return wf_error_set(err, WF_ERR_INVALID,
                            "invalid event key: use 1-128 characters of [A-Za-z0-9._-]");
    if (!payload) len = 0;
    if (len > max_payload)
        return wf_error_set(err, WF_ERR_TOO_LARGE, "event payload is %zu bytes, over %zu", len,
                            max_payload);
    if (len > 0) {
        wf_payload_limits lim = {max_payload, 64};
        int rc = wf_msgpack_check(payload, len, &lim, err);
        if (rc != WF_OK) return rc;
    }
    char *log = wf__key_event(prefix, name, "log");
    char *waiters = wf__key_event(prefix, name, "waiters");
    char *deadlines = wf__key_event(prefix, name, "deadlines");
    if (!log || !waiters || !deadlines) {
        free(log);
        free(waiters);
        free(deadlines);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    const char *keys[3] = {log, waiters, deadlines};
    const char *args[3] = {key ? key : "", payload ? payload : "", EVENT_LOG_MAX};
    size_t lens[3] = {key ? strlen(key) : 0, len, strlen(EVENT_LOG_MAX)};
    redisReply *r = NULL;
    int rc = t->call(t->ctx, WF__SCRIPT_EVENT_SEND, 3, keys, 3, args, lens, &r, err);
    free(log);
    free(waiters);
    free(deadlines);
    if (rc != WF_OK) return rc;
    /* r = {entry id, waiter members...}: deliver to each, with the event's time (the entry id's
     * milliseconds, Redis time), so that a wait whose deadline came first refuses it; go on past
     * failures, report the first. */
    char at[24] = "";
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        snprintf(at, sizeof at, "%.*s", (int)strcspn(r->element[0]->str, "-"), r->element[0]->str);
    for (size_t i = 1; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        wf_error e = {0};
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        int d = deliver(t, prefix, r->element[i]->str, name, at, payload, len, &e);
        if (d != WF_OK && rc == WF_OK) {
            rc = d;
            if (err) *err = e;
        }
    }
    if (r) t->free_reply(r);
    return rc;
}

/* The client's transport: its synchronous connection. */
static int sync_call(void *ctx, wf__script s, int nkeys, const char *const *keys, int nargs,
                     const char *const *args, const size_t *arglen, redisReply **reply,
                     wf_error *err)
{
    wf_client *client = ctx;
    *reply = wf__script_call(client->c, s, nkeys, keys, nargs, args, arglen, err);
    return *reply ? WF_OK : (err && err->code ? err->code : WF_ERR_IO);
}

static void sync_free(redisReply *r)
{
    freeReplyObject(r);
}

int wf_send_event_keyed(wf_client *client, const char *name, const char *key, const void *payload,
                        size_t len, wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (wf__client_ensure(client, err) != WF_OK) return err ? err->code : WF_ERR_CONNECT;
    wf__transport t = {sync_call, sync_free, client};
    wf_error e = {0};
    int rc = wf__event_send(&t, client->url.prefix, client->url.max_payload, name, key, payload,
                            len, &e);
    if (rc != WF_OK && err) *err = e;
    return rc;
}

int wf_send_event(wf_client *client, const char *name, const void *payload, size_t len,
                  wf_error *err)
{
    return wf_send_event_keyed(client, name, NULL, payload, len, err);
}
