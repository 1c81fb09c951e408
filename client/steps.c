/* steps.c - reading a run's recorded steps for people: wf_run_steps() decodes every value of the
 * run's steps hash (P:{W}:run:ID:steps, msgpack records of core/steprec.c) into the public
 * wf_step_info, ordered by start time. Used by `wf status`, `wf steps` and the dashboard. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

void wf_steps_free(wf_step_info *steps, size_t n)
{
    static const size_t strs[] = {offsetof(wf_step_info, name),   offsetof(wf_step_info, kind),
                                  offsetof(wf_step_info, status), offsetof(wf_step_info, error),
                                  offsetof(wf_step_info, event),  offsetof(wf_step_info, event_key),
                                  offsetof(wf_step_info, result)};
    wf__records_free(steps, n, sizeof *steps, strs, sizeof strs / sizeof *strs);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* NULL for NULL or "", else a copy; sets *oom when the copy failed. */
static char *dup_opt(const char *s, int *oom)
{
    if (!s || !*s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

/* Fills `out` from the hash field `name` = `value`. Returns WF_OK or WF_ERR_NOMEM. */
static int fill(wf_step_info *out, const redisReply *name, const redisReply *value)
{
    memset(out, 0, sizeof *out);
    int oom = 0;
    out->name = dup_n(name->str, name->len);
    wf__steprec rec;
    wf_error e = {0};
    if (wf__steprec_decode(value->str, value->len, &rec, &e) != WF_OK) {
        out->kind = strdup("unknown");
        out->status = strdup("unreadable");
        out->error = strdup(e.message);
        oom = !out->kind || !out->status || !out->error;
    } else {
        out->kind = strdup(rec.kind);
        out->status = strdup(rec.status);
        oom = !out->kind || !out->status;
        out->attempts = rec.attempts;
        out->started_at_ms = rec.t0;
        out->finished_at_ms = rec.t1;
        out->until_ms = rec.until;
        out->error = dup_opt(rec.error, &oom);
        int invoke = strcmp(rec.kind, "invoke") == 0;
        out->event = dup_opt(invoke ? rec.child : rec.event, &oom);
        out->event_key = dup_opt(invoke ? rec.cstate : rec.key, &oom);
        if (rec.result) {
            out->result = dup_n(rec.result, rec.result_len);
            out->result_len = rec.result_len;
            oom |= !out->result;
        }
    }
    return oom || !out->name ? WF_ERR_NOMEM : WF_OK;
}

static int by_start(const void *a, const void *b)
{
    const wf_step_info *x = a, *y = b;
    /* A step not started yet (t0 0) sorts last. */
    int64_t tx = x->started_at_ms ? x->started_at_ms : INT64_MAX;
    int64_t ty = y->started_at_ms ? y->started_at_ms : INT64_MAX;
    if (tx != ty) return tx < ty ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* WF_ERR_NOT_FOUND when the run is gone, else WF_OK or a connection error. A run with no hash
 * may be a lean queued run (schema 2): its steps are none, not an error. */
static int check_exists(wf_run *run, wf_error *err)
{
    redisReply *r = wf__client_cmd(run->client, 1, err, "EXISTS %s", run->key);
    if (!r) return err ? err->code : WF_ERR_IO;
    int exists = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    if (!exists) {
        r = wf__run_read(run, err);
        if (!r) return err ? err->code : WF_ERR_IO;
        exists = r->elements > 0;
        freeReplyObject(r);
    }
    if (!exists) return wf_error_set(err, WF_ERR_NOT_FOUND, "run '%s' no longer exists", run->id);
    return WF_OK;
}

int wf_run_steps(wf_run *run, wf_step_info **steps, size_t *n, wf_error *err)
{
    if (!run || !steps || !n) return wf_error_set(err, WF_ERR_INVALID, "run or output is NULL");
    *steps = NULL;
    *n = 0;
    char *key = wf__key_steps(run->client->url.prefix, run->workflow, run->id);
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__client_cmd(run->client, 1, err, "HGETALL %s", key);
    free(key);
    if (!r) return err ? err->code : WF_ERR_IO;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply to HGETALL");
    }
    if (r->elements < 2) {
        /* No steps: tell an existing run without steps from a run that is gone. */
        freeReplyObject(r);
        return check_exists(run, err);
    }
    size_t cap = r->elements / 2, count = 0;
    wf_step_info *out = calloc(cap, sizeof *out);
    if (!out) {
        freeReplyObject(r);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    int rc = WF_OK;
    for (size_t i = 0; i + 1 < r->elements && rc == WF_OK; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        /* Bookkeeping fields are not steps: their names are not step names (" lost",
         * lua/lib_history.lua WF_LOST_FIELD). */
        if (!wf__step_name_valid(k->str)) continue;
        rc = fill(&out[count], k, v);
        count++; /* counted even when half filled, so wf_steps_free() releases it */
    }
    freeReplyObject(r);
    if (rc != WF_OK) {
        wf_steps_free(out, count);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    if (count > 1) qsort(out, count, sizeof *out, by_start);
    *steps = out;
    *n = count;
    return WF_OK;
}
