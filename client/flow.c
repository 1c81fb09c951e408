/* flow.c - flow control's settings (include/wf/client.h, "Flow control"): a workflow's limits in
 * the hash P:{W}:limits {max_running, key, max_per_key, ...} and its pause (field `paused`).
 * Enforcement is in Lua (lua/lib_flow.lua's flow_* helpers, used by claim.lua and admit.lua) and
 * the worker (worker/flow.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

static int field_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("._-", s[i])))
            return 0;
    return 1;
}

static int check_name(const wf_client *client, const char *workflow, wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!workflow || !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'",
                            workflow ? workflow : "(null)");
    return WF_OK;
}

int wf_flow_set(wf_client *client, const char *workflow, const wf_flow_limits *limits,
                wf_error *err)
{
    int rc = check_name(client, workflow, err);
    if (rc != WF_OK) return rc;
    wf_flow_limits l = limits ? *limits : (wf_flow_limits){0};
    if (l.max_running < 0 || l.max_per_key < 0)
        return wf_error_set(err, WF_ERR_INVALID, "flow limits must not be negative");
    if (l.key && !field_valid(l.key))
        return wf_error_set(err, WF_ERR_INVALID,
                            "flow key '%.64s' must be 1-64 characters of [A-Za-z0-9._-] (a "
                            "field of the run's input object)",
                            l.key);
    if (l.max_per_key > 0 && !l.key)
        return wf_error_set(err, WF_ERR_INVALID, "max_per_key needs a key (the input field)");
    if (l.rate < 0 || l.rate_ms < 0)
        return wf_error_set(err, WF_ERR_INVALID, "rate and rate_ms must not be negative");
    if (l.rate > 0 && l.rate_ms == 0)
        return wf_error_set(err, WF_ERR_INVALID,
                            "rate needs rate_ms, its period (e.g. 10 runs per 1000 ms)");
    if (l.rate == 0) l.rate_ms = 0, l.rate_per_key = 0;
    if (l.debounce_ms < 0) return wf_error_set(err, WF_ERR_INVALID, "debounce_ms must be >= 0");
    if (l.rate_per_key && !l.key)
        return wf_error_set(err, WF_ERR_INVALID, "rate_per_key needs a key (the input field)");
    char *k = wf__key_wf(client->url.prefix, workflow, "limits");
    if (!k) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r;
    if (l.max_running == 0 && l.max_per_key == 0 && l.rate == 0 && !l.singleton &&
        l.debounce_ms == 0) /* not DEL: the hash also keeps the workflow's pause */
        r = wf__client_cmd(client, 1, err,
                           "HDEL %s max_running key max_per_key rate rate_ms rate_per_key "
                           "singleton debounce_ms",
                           k);
    else
        r = wf__client_cmd(client, 1, err,
                           "HSET %s max_running %d key %s max_per_key %d rate %d rate_ms %lld "
                           "rate_per_key %d singleton %d debounce_ms %lld",
                           k, l.max_running, l.key ? l.key : "", l.max_per_key, l.rate, l.rate_ms,
                           l.rate_per_key ? 1 : 0, l.singleton ? 1 : 0, l.debounce_ms);
    free(k);
    if (!r) return err ? err->code : WF_ERR_IO;
    freeReplyObject(r);
    return WF_OK;
}

int wf_flow_get(wf_client *client, const char *workflow, wf_flow_limits *limits, char *key,
                size_t key_size, long long *held, wf_error *err)
{
    if (limits) memset(limits, 0, sizeof *limits);
    if (held) *held = 0;
    int rc = check_name(client, workflow, err);
    if (rc != WF_OK) return rc;
    if (!limits) return wf_error_set(err, WF_ERR_INVALID, "limits is NULL");
    char *k = wf__key_wf(client->url.prefix, workflow, "limits");
    char *h = wf__key_wf(client->url.prefix, workflow, "held");
    redisReply *r =
        k && h ? wf__client_cmd(client, 1, err,
                                "HMGET %s max_running key max_per_key rate rate_ms rate_per_key "
                                "singleton debounce_ms",
                                k)
               : NULL;
    if (!k || !h) wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 8) {
        if (r->element[6]->type == REDIS_REPLY_STRING) limits->singleton = atoi(r->element[6]->str);
        if (r->element[7]->type == REDIS_REPLY_STRING)
            limits->debounce_ms = atoll(r->element[7]->str);
        if (r->element[3]->type == REDIS_REPLY_STRING) limits->rate = atoi(r->element[3]->str);
        if (r->element[4]->type == REDIS_REPLY_STRING) limits->rate_ms = atoll(r->element[4]->str);
        if (r->element[5]->type == REDIS_REPLY_STRING)
            limits->rate_per_key = atoi(r->element[5]->str);
        if (r->element[0]->type == REDIS_REPLY_STRING)
            limits->max_running = atoi(r->element[0]->str);
        if (r->element[2]->type == REDIS_REPLY_STRING)
            limits->max_per_key = atoi(r->element[2]->str);
        if (r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len > 0 && key &&
            r->element[1]->len < key_size) {
            memcpy(key, r->element[1]->str, r->element[1]->len + 1);
            limits->key = key;
        }
    }
    if (r) freeReplyObject(r);
    rc = r ? WF_OK : (err && err->code ? err->code : WF_ERR_IO);
    if (rc == WF_OK && held) {
        redisReply *z = wf__client_cmd(client, 1, err, "ZCARD %s", h);
        if (!z)
            rc = err ? err->code : WF_ERR_IO;
        else {
            if (z->type == REDIS_REPLY_INTEGER) *held = z->integer;
            freeReplyObject(z);
        }
    }
    free(k);
    free(h);
    return rc;
}

/* ---- Pausing a workflow ------------------------------------------------------------------------
 */

/* The field `paused` of P:{W}:limits: claim.lua reads it with the limits, in the call it makes
 * anyway, so a workflow that is not paused costs nothing more (lua/claim.lua says what a worker
 * does with a paused workflow's entries). Its value is the Redis time of the pause. */
static int set_paused(wf_client *client, const char *workflow, int paused, wf_error *err)
{
    int rc = check_name(client, workflow, err);
    if (rc != WF_OK) return rc;
    int64_t now = 0;
    if (paused && (rc = wf__client_time(client, &now, err)) != WF_OK) return rc;
    char *k = wf__key_wf(client->url.prefix, workflow, "limits");
    if (!k) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = paused
                        ? wf__client_cmd(client, 1, err, "HSETNX %s paused %lld", k, (long long)now)
                        : wf__client_cmd(client, 1, err, "HDEL %s paused", k);
    free(k);
    if (!r) return err ? err->code : WF_ERR_IO;
    freeReplyObject(r);
    return WF_OK;
}

int wf_workflow_pause(wf_client *client, const char *workflow, wf_error *err)
{
    return set_paused(client, workflow, 1, err);
}

int wf_workflow_resume(wf_client *client, const char *workflow, wf_error *err)
{
    return set_paused(client, workflow, 0, err);
}
