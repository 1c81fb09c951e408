/* events.c - sendEvent: record an event in its log and deliver it to the runs waiting for it.
 *
 * Two scripts in two hash slots: event_send.lua on the event's keys ("P:{ev:NAME}:...") returns
 * the matching waiters, then deliver.lua on each waiting run's keys records the event as the wait
 * step's result and queues the run. If this process dies between the two, the event is still in
 * the log, and the run finds it when it next checks (its timeout, or any replay).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

#define EVENT_LOG_MAX "10000"

/* Delivers to one waiter "RUNID STEP". Failures are returned; the caller goes on with the rest. */
static int deliver(wf_client *client, const char *member, const char *event, const void *payload,
                   size_t len, wf_error *err)
{
    char id[WF__ID_MAX], workflow[WF__NAME_MAX + 1];
    const char *sp = strchr(member, ' ');
    if (!sp || (size_t)(sp - member) >= sizeof id) return WF_OK; /* not ours: ignore */
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
    wf__steprec_encode(&rec, &sb);
    wf__wfkeys wk;
    char *runkey = wf__key_run(client->url.prefix, workflow, id);
    char *steps = wf__key_steps(client->url.prefix, workflow, id);
    int rc = WF_OK;
    if (!runkey || !steps || wf__wfkeys_init(&wk, client->url.prefix, workflow) != WF_OK) {
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    } else {
        const char *keys[WF__NFIXED + 2];
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
        keys[WF__NFIXED] = runkey;
        keys[WF__NFIXED + 1] = steps;
        const char *args[3] = {id, step, sb.data};
        size_t lens[3] = {strlen(id), strlen(step), sb.size};
        redisReply *r = wf__script_call(client->c, WF__SCRIPT_DELIVER, WF__NFIXED + 2, keys, 3,
                                        args, lens, err);
        if (r)
            freeReplyObject(r);
        else
            rc = err ? err->code : WF_ERR_IO;
        wf__wfkeys_free(&wk);
    }
    free(runkey);
    free(steps);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int wf_send_event_keyed(wf_client *client, const char *name, const char *key, const void *payload,
                        size_t len, wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!name || !wf__name_valid(name))
        return wf_error_set(err, WF_ERR_BAD_NAME,
                            "invalid event name: use 1-128 characters of [A-Za-z0-9._-]");
    if (key && *key && !wf__name_valid(key))
        return wf_error_set(err, WF_ERR_INVALID,
                            "invalid event key: use 1-128 characters of [A-Za-z0-9._-]");
    if (len > client->url.max_payload)
        return wf_error_set(err, WF_ERR_TOO_LARGE, "event payload is %zu bytes, over %zu", len,
                            client->url.max_payload);
    if (len > 0) {
        wf_payload_limits lim = {client->url.max_payload, 64};
        int rc = wf_msgpack_check(payload, len, &lim, err);
        if (rc != WF_OK) return rc;
    }
    if (wf__client_ensure(client, err) != WF_OK) return err ? err->code : WF_ERR_CONNECT;
    char *log = wf__key_event(client->url.prefix, name, "log");
    char *waiters = wf__key_event(client->url.prefix, name, "waiters");
    if (!log || !waiters) {
        free(log);
        free(waiters);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    const char *keys[2] = {log, waiters};
    const char *args[3] = {key ? key : "", payload ? payload : "", EVENT_LOG_MAX};
    size_t lens[3] = {key ? strlen(key) : 0, payload ? len : 0, strlen(EVENT_LOG_MAX)};
    redisReply *r = wf__script_call(client->c, WF__SCRIPT_EVENT_SEND, 2, keys, 3, args, lens, err);
    free(log);
    free(waiters);
    if (!r) return err ? err->code : WF_ERR_IO;
    int rc = WF_OK;
    for (size_t i = 1; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        wf_error e = {0};
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        int d = deliver(client, r->element[i]->str, name, payload, len, &e);
        if (d != WF_OK && rc == WF_OK) {
            rc = d;
            if (err) *err = e;
        }
    }
    freeReplyObject(r);
    return rc;
}

int wf_send_event(wf_client *client, const char *name, const void *payload, size_t len,
                  wf_error *err)
{
    return wf_send_event_keyed(client, name, NULL, payload, len, err);
}
