/* step_wait.c - durable waits: wf_step_sleep(), wf_step_sleep_until() and
 * wf_step_wait_for_event() (include/wf/step.h).
 *
 * A wait records a `waiting` step and suspends the run (suspend.lua) until its wake time or its
 * event; whether a wake time or a deadline has come is decided by Redis's clock, never the
 * worker's. A replay of a finished wait answers from its record (step_replay.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/step.h"
#include "wf_worker_internal.h"

#define LOOKBACK_MS 60000

int wf_step_sleep_until(wf_ctx *ctx, const char *name, int64_t epoch_ms)
{
    if (!ctx) return WF_ERR_INVALID;
    wf__steprec rec;
    int had;
    int rc = wf__step_begin(ctx, name, "sleep", &rec, &had);
    if (rc != WF_OK) return rc;
    if (had && strcmp(rec.status, "done") == 0) return WF_OK;
    int64_t until = had && rec.until ? rec.until : epoch_ms;
    int64_t now = wf__step_now(ctx);
    /* Whether the sleep is over is Redis's decision (suspend.lua compares its TIME with the wake
     * time and, when it has come, records `done` in the same call): never early, and the worker's
     * estimate of Redis time does not matter. A wake time at or before the epoch is due at once. */
    wf__steprec w = {0};
    snprintf(w.kind, sizeof w.kind, "sleep");
    snprintf(w.status, sizeof w.status, "waiting");
    w.t0 = had && rec.t0 ? rec.t0 : now;
    w.until = until;
    wf__steprec done = w;
    snprintf(done.status, sizeof done.status, "done");
    done.t1 = now > until ? now : until; /* Redis time was at least `until` */
    char reason[200];
    snprintf(reason, sizeof reason, "sleep %s until %lld", name, (long long)until);
    rc = wf__step_suspend_due(ctx, name, &w, until > 0 ? until : 1, reason, &done);
    if (rc == WF__STEP_DUE) return WF_OK;
    return rc; /* WF_SUSPEND, WF_OK (recorded done meanwhile) or an error */
}

int wf_step_sleep(wf_ctx *ctx, const char *name, int64_t ms)
{
    if (!ctx) return WF_ERR_INVALID;
    /* The wake time is fixed when the step is first reached (kept in its record), so replays do
     * not push it back. */
    return wf_step_sleep_until(ctx, name, wf__step_now(ctx) + (ms > 0 ? ms : 0));
}

/* ---- events --------------------------------------------------------------------------------- */

/* event_wait.lua: registers (mode "wait") or unregisters ("done") this run's wait. With "wait":
 * returns 1 and the payload when a matching event logged before `deadline` (Redis ms, 0: none)
 * is in the log, EVENT_TIMEOUT when there is none and Redis time reached the deadline (the wait
 * is unregistered), 0 when the run must wait. */
#define EVENT_TIMEOUT 2
static int event_call(wf_ctx *ctx, const char *event, const char *key, const char *member,
                      const char *since, const char *mode, int64_t deadline, char **payload,
                      size_t *plen)
{
    char *log = wf__key_event(wf__ctx_prefix(ctx), event, "log");
    char *waiters = wf__key_event(wf__ctx_prefix(ctx), event, "waiters");
    char *deadlines = wf__key_event(wf__ctx_prefix(ctx), event, "deadlines");
    if (!log || !waiters || !deadlines) {
        free(log);
        free(waiters);
        free(deadlines);
        return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory");
    }
    char dl[24];
    snprintf(dl, sizeof dl, "%lld", (long long)(deadline > 0 ? deadline : 0));
    const char *keys[3] = {log, waiters, deadlines};
    const char *args[5] = {member, key ? key : "", since, mode, dl};
    redisReply *reply = NULL;
    wf_error err = {0};
    int rc = wf__ctx_call(ctx, WF__SCRIPT_EVENT_WAIT, 3, keys, 5, args, NULL, &reply, &err);
    free(log);
    free(waiters);
    free(deadlines);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "event wait on '%s': %s", event, err.message);
    int found = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "TIMEOUT") == 0) {
        found = EVENT_TIMEOUT;
    } else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && payload) {
        const redisReply *p = reply->element[1];
        *plen = p->len;
        *payload = malloc(p->len + 1);
        if (*payload) {
            memcpy(*payload, p->str, p->len);
            found = 1;
        }
    }
    wf__reply_free(reply);
    return found;
}

int wf_step_wait_for_event(wf_ctx *ctx, const char *name, const char *event, const char *key,
                           int64_t timeout_ms, const msgpack_object **payload)
{
    if (payload) *payload = NULL;
    if (!ctx) return WF_ERR_INVALID;
    if (!event || !wf__name_valid(event))
        return wf_ctx_fail(ctx, WF_ERR_BAD_NAME, "invalid event name");
    if (key && *key && !wf__name_valid(key))
        return wf_ctx_fail(ctx, WF_ERR_INVALID, "invalid event key");
    wf__steprec rec;
    int had;
    int rc = wf__step_begin(ctx, name, "event", &rec, &had);
    if (rc != WF_OK) return rc;
    char member[WF__ID_MAX + 140];
    snprintf(member, sizeof member, "%s %s", ctx->job->id, name);
    if (had && strcmp(rec.status, "done") == 0) {
        event_call(ctx, event, key, member, "0", "done", 0, NULL, NULL);
        return wf__step_result(ctx, rec.result ? rec.result : "\xc0",
                               rec.result ? rec.result_len : 1, payload);
    }
    if (had && strcmp(rec.status, "timeout") == 0)
        return wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "timed out waiting for event '%s'", event);

    int64_t now = wf__step_now(ctx);
    wf__steprec w = {0};
    snprintf(w.kind, sizeof w.kind, "event");
    snprintf(w.status, sizeof w.status, "waiting");
    snprintf(w.event, sizeof w.event, "%s", event);
    if (key) snprintf(w.key, sizeof w.key, "%s", key);
    w.t0 = had && rec.t0 ? rec.t0 : now;
    /* The deadline is fixed when the wait is first reached and kept in its record; whether it
     * has passed, and which events came before it, only Redis's clock decides (event_wait.lua,
     * suspend.lua, deliver.lua). */
    w.until = had ? rec.until : (timeout_ms > 0 ? now + timeout_ms : 0);
    if (had && rec.since[0])
        snprintf(w.since, sizeof w.since, "%s", rec.since);
    else
        snprintf(w.since, sizeof w.since, "%lld", (long long)(now - LOOKBACK_MS));

    for (int tries = 0;; tries++) {
        char *data = NULL;
        size_t len = 0;
        int found = event_call(ctx, event, key, member, w.since, "wait", w.until, &data, &len);
        if (found < 0) return found;
        if (found == 1) {
            wf__steprec done = w;
            snprintf(done.status, sizeof done.status, "done");
            done.result = len ? data : "\xc0";
            done.result_len = len ? len : 1;
            done.t1 = wf__step_now(ctx);
            rc = wf__step_record(ctx, name, &done);
            if (rc == WF_OK) rc = wf__step_result(ctx, done.result, done.result_len, payload);
            free(data);
            if (rc == WF_OK) event_call(ctx, event, key, member, "0", "done", 0, NULL, NULL);
            return rc;
        }
        if (found == EVENT_TIMEOUT) {
            /* No event logged before the deadline, and Redis time reached it: a late delivery
             * (deliver.lua) is refused from now on, so this record cannot hide an event. */
            wf__steprec t = w;
            snprintf(t.status, sizeof t.status, "timeout");
            t.t1 = wf__step_now(ctx);
            if ((rc = wf__step_record(ctx, name, &t)) != WF_OK) return rc;
            return wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "timed out waiting for event '%s'", event);
        }
        char reason[300];
        snprintf(reason, sizeof reason, "event %s%s%s%s", event, key && *key ? " key " : "",
                 key && *key ? key : "", w.until ? "" : " (no timeout)");
        /* The first time, the timer is the wait's deadline (WF__STEP_DUE once it has come);
         * after that, a plain wake-up to look again. */
        rc = tries == 0 ? wf__step_suspend_due(ctx, name, &w, w.until, reason, NULL)
                        : wf__step_suspend(ctx, name, &w, w.until, reason);
        if (rc == WF__STEP_DUE) continue; /* the deadline came meanwhile: look again, decide */
        if (rc == WF_OK) {
            /* Delivered between the registration and the suspend: read the record it wrote. */
            wf__step_forget(ctx); /* let the replayed lookup below reuse the name */
            return wf_step_wait_for_event(ctx, name, event, key, timeout_ms, payload);
        }
        return rc;
    }
}
