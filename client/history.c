/* history.c - what happened, as the scripts recorded it when it happened: a workflow's runs
 * started, completed and failed per minute (wf_workflow_history, from the hashes
 * P:{W}:hist:KIND:HOUR that lua/lib_history.lua's hist_add keeps for a day), one run's transitions
 * (wf_run_events, from its hash's fields evN that lib_history.lua's ev_fields adds), and the queue
 * entries a claim moved aside (wf_dead_letters, from the list P:{W}:dead). */
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_impl.h"

#define MINUTE_MS  60000LL
#define HOUR_MS    3600000LL
#define MAX_POINTS 10080 /* a week of minutes */

void wf_history_free(wf_history_point *points)
{
    free(points);
}

/* The counters of one kind for one hour (an HGETALL reply: minute -> count) into `pts`, which
 * start at minute `since`. */
static void add_hour(wf_history_point *pts, size_t n, int64_t since, long long hour, int kind,
                     const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        long long minute = strtoll(f->str, NULL, 10);
        if (minute < 0 || minute > 59) continue;
        int64_t at = (int64_t)hour * HOUR_MS + minute * MINUTE_MS;
        if (at < since || (at - since) / MINUTE_MS >= (int64_t)n) continue;
        wf_history_point *p = &pts[(at - since) / MINUTE_MS];
        long long c = strtoll(v->str, NULL, 10);
        if (kind == 0) p->started += c;
        if (kind == 1) p->completed += c;
        if (kind == 2) p->failed += c;
    }
}

/* The range [*since, *until) in whole minutes, with the defaults of wf_workflow_history(). */
static int history_range(wf_client *client, int64_t *since, int64_t *until, wf_error *err)
{
    if (*since < 0 || *until < 0)
        return wf_error_set(err, WF_ERR_INVALID, "history: times must not be negative");
    if (*until == 0) {
        int64_t now = 0;
        int rc = wf__client_time(client, &now, err);
        if (rc != WF_OK) return rc;
        *until = now - now % MINUTE_MS + MINUTE_MS;
    }
    if (*since == 0) *since = *until - 60 * MINUTE_MS;
    *since -= *since % MINUTE_MS;
    if (*since >= *until)
        return wf_error_set(err, WF_ERR_INVALID,
                            "history: since (%lld) must be before until (%lld)", (long long)*since,
                            (long long)*until);
    if ((*until - *since + MINUTE_MS - 1) / MINUTE_MS > MAX_POINTS)
        return wf_error_set(err, WF_ERR_INVALID, "history: at most %d minutes at once", MAX_POINTS);
    return WF_OK;
}

/* The checks a per-workflow read starts with, once its *out is cleared: clears *n, and fails on a
 * NULL client, out or n (WF_ERR_INVALID) or a bad workflow name (WF_ERR_BAD_NAME). */
static int check_args(const wf_client *client, const char *workflow, const void *out, size_t *n,
                      wf_error *err)
{
    if (n) *n = 0;
    if (!client || !out || !n) return wf_error_set(err, WF_ERR_INVALID, "NULL argument");
    if (!workflow || !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'",
                            workflow ? workflow : "(null)");
    return WF_OK;
}

int wf_workflow_history(wf_client *client, const char *workflow, int64_t since_ms, int64_t until_ms,
                        wf_history_point **points, size_t *n, wf_error *err)
{
    if (points) *points = NULL;
    int rc = check_args(client, workflow, points, n, err);
    if (rc != WF_OK || !points) return rc; /* (!points: check_args refused it already) */
    rc = history_range(client, &since_ms, &until_ms, err);
    if (rc != WF_OK) return rc;
    size_t npts = (size_t)((until_ms - since_ms + MINUTE_MS - 1) / MINUTE_MS);
    long long h0 = since_ms / HOUR_MS, h1 = (until_ms - 1) / HOUR_MS;
    size_t ncmd = 3 * (size_t)(h1 - h0 + 1);
    static const char *const kinds[] = {"s", "c", "f"};
    wf_history_point *pts = calloc(npts, sizeof *pts);
    char **keys = calloc(ncmd, sizeof *keys);
    const char **argv = calloc(3 * ncmd, sizeof *argv);
    const char *const **cmds = calloc(ncmd, sizeof *cmds);
    redisReply **r = calloc(ncmd, sizeof *r);
    rc = pts && keys && argv && cmds && r ? WF_OK : WF_ERR_NOMEM;
    for (size_t i = 0; rc == WF_OK && i < ncmd; i++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, "hist:%s:%lld", kinds[i % 3], h0 + (long long)(i / 3));
        if (!(keys[i] = wf__key_wf(client->url.prefix, workflow, suffix))) rc = WF_ERR_NOMEM;
        argv[3 * i] = "HGETALL";
        argv[3 * i + 1] = keys[i];
        argv[3 * i + 2] = NULL;
        cmds[i] = &argv[3 * i];
    }
    if (rc == WF_ERR_NOMEM) wf_error_set(err, rc, "out of memory");
    if (rc == WF_OK) rc = wf__client_pipeline(client, ncmd, cmds, r, err);
    for (size_t i = 0; rc == WF_OK && i < ncmd; i++)
        if (r[i] && r[i]->type == REDIS_REPLY_ERROR)
            rc = wf__script_error(r[i]->str, r[i]->len, err);
    for (size_t i = 0; rc == WF_OK && i < npts; i++)
        pts[i].minute_ms = since_ms + (int64_t)i * MINUTE_MS;
    for (size_t i = 0; rc == WF_OK && i < ncmd; i++)
        add_hour(pts, npts, since_ms, h0 + (long long)(i / 3), (int)(i % 3), r[i]);
    for (size_t i = 0; r && keys && i < ncmd; i++) {
        freeReplyObject(r[i]);
        free(keys[i]);
    }
    free(r);
    free(cmds);
    free(argv);
    free(keys);
    if (rc != WF_OK) {
        free(pts);
        return rc;
    }
    *points = pts;
    *n = npts;
    return WF_OK;
}

/* ---- A run's history ------------------------------------------------------------------------ */

void wf_run_events_free(wf_run_event *events, size_t n)
{
    static const size_t strs[] = {offsetof(wf_run_event, kind), offsetof(wf_run_event, detail)};
    wf__records_free(events, n, sizeof *events, strs, sizeof strs / sizeof *strs);
}

/* One event "MS KIND[ DETAIL]" into `ev`. Returns 0, or -1 when out of memory. An event that
 * does not parse keeps its text as the detail of kind "unreadable". */
static int parse_event(const char *line, size_t len, wf_run_event *ev)
{
    const char *sp1 = memchr(line, ' ', len);
    const char *end = line + len;
    char *num_end = NULL;
    long long at = strtoll(line, &num_end, 10);
    if (!sp1 || num_end != sp1 || sp1 + 1 >= end) {
        ev->kind = strdup("unreadable");
        ev->detail = strndup(line, len);
        return ev->kind && ev->detail ? 0 : -1;
    }
    ev->at_ms = at;
    const char *k = sp1 + 1, *sp2 = memchr(k, ' ', (size_t)(end - k));
    ev->kind = strndup(k, (size_t)((sp2 ? sp2 : end) - k));
    if (sp2 && sp2 + 1 < end) ev->detail = strndup(sp2 + 1, (size_t)(end - sp2 - 1));
    return ev->kind && (!sp2 || sp2 + 1 >= end || ev->detail) ? 0 : -1;
}

/* The number N of a run hash field "evN" (lua/lib_history.lua ev_fields), else 0. */
static long event_number(const redisReply *f)
{
    if (f->type != REDIS_REPLY_STRING || f->len < 3 || f->len > 12 || memcmp(f->str, "ev", 2))
        return 0;
    long n = 0;
    for (size_t i = 2; i < f->len; i++) {
        if (f->str[i] < '0' || f->str[i] > '9') return 0;
        n = n * 10 + (f->str[i] - '0');
    }
    return n;
}

static int by_number(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* The value of field `name` of an HGETALL reply, or NULL. */
static const redisReply *hfield(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            return r->element[i + 1];
    return NULL;
}

/* Appends event "AT KIND[ DETAIL]" built from fields of the hash to out[*count]. 0, or -1 when
 * out of memory. */
static int implicit_event(wf_run_event *out, size_t *count, const redisReply *at, const char *kind,
                          const char *detail)
{
    if (!at) return 0;
    wf_run_event *ev = &out[*count];
    ev->at_ms = strtoll(at->str, NULL, 10);
    ev->kind = strdup(kind);
    ev->detail = detail ? strdup(detail) : NULL;
    (*count)++;
    return ev->kind && (!detail || ev->detail) ? 0 : -1;
}

/* A run whose history is implicit (no evN field: lib_history.lua ev_open): its enqueued,
 * started and final events, from created_at, started_at and finished_at, as ev_open would write
 * them. */
static int implicit_events(const redisReply *r, wf_run_event **events, size_t *n)
{
    wf_run_event *out = calloc(3, sizeof *out);
    if (!out) return WF_ERR_NOMEM;
    size_t count = 0;
    const redisReply *sched = hfield(r, "schedule"), *worker = hfield(r, "worker");
    const redisReply *attempt = hfield(r, "attempt"), *state = hfield(r, "state");
    char detail[200];
    snprintf(detail, sizeof detail, "by schedule %s", sched ? sched->str : "");
    int bad =
        implicit_event(out, &count, hfield(r, "created_at"), "enqueued", sched ? detail : NULL);
    const char *w = worker ? worker->str : "?";
    size_t wl = strlen(w);
    snprintf(detail, sizeof detail, "attempt %s on %s", attempt ? attempt->str : "1",
             wl > 28 ? w + wl - 28 : w);
    bad |= implicit_event(out, &count, hfield(r, "started_at"), "started", detail);
    if (state && wf_state_is_final(wf_state_from_name(state->str)))
        bad |= implicit_event(out, &count, hfield(r, "finished_at"), state->str, NULL);
    if (bad) {
        wf_run_events_free(out, count);
        return WF_ERR_NOMEM;
    }
    if (count == 0) {
        free(out);
        out = NULL;
    }
    *events = out;
    *n = count;
    return WF_OK;
}

int wf_run_events(wf_run *run, wf_run_event **events, size_t *n, wf_error *err)
{
    if (events) *events = NULL;
    if (n) *n = 0;
    if (!run || !events || !n) return wf_error_set(err, WF_ERR_INVALID, "NULL argument");
    /* The whole hash: the events are its fields evN, as many as the run has had (<= 50). */
    redisReply *r = wf__run_read(run, err);
    if (!r) return err ? err->code : WF_ERR_IO;
    if (r->elements == 0) {
        freeReplyObject(r);
        return wf_error_set(err, WF_ERR_NOT_FOUND, "run '%s' no longer exists", run->id);
    }
    /* (number, index of the value) pairs, sorted by number. */
    long(*idx)[2] = calloc(r->elements / 2 + 1, sizeof *idx);
    size_t count = 0;
    for (size_t i = 0; idx && i + 1 < r->elements; i += 2) {
        long num = event_number(r->element[i]);
        if (num > 0 && r->element[i + 1]->type == REDIS_REPLY_STRING) {
            idx[count][0] = num;
            idx[count++][1] = (long)i + 1;
        }
    }
    if (idx && count == 0) {
        free(idx);
        int rc = implicit_events(r, events, n);
        freeReplyObject(r);
        return rc == WF_OK ? WF_OK : wf_error_set(err, rc, "out of memory");
    }
    if (count > 1) qsort(idx, count, sizeof *idx, by_number);
    wf_run_event *out = idx && count ? calloc(count, sizeof *out) : NULL;
    int rc = idx && (out || count == 0) ? WF_OK : WF_ERR_NOMEM;
    for (size_t i = 0; rc == WF_OK && i < count; i++) {
        const redisReply *v = r->element[idx[i][1]];
        if (parse_event(v->str, v->len, &out[i]) != 0) {
            wf_run_events_free(out, i + 1);
            out = NULL;
            rc = WF_ERR_NOMEM;
        }
    }
    free(idx);
    freeReplyObject(r);
    if (rc != WF_OK) return wf_error_set(err, rc, "out of memory");
    *events = out;
    *n = count;
    return WF_OK;
}

/* ---- Dead letters --------------------------------------------------------------------------- */

#define DEAD_DEFAULT 100
#define DEAD_MAX     10000

void wf_dead_letters_free(wf_dead_letter *letters, size_t n)
{
    static const size_t strs[] = {offsetof(wf_dead_letter, run_id),
                                  offsetof(wf_dead_letter, reason), offsetof(wf_dead_letter, entry),
                                  offsetof(wf_dead_letter, worker)};
    wf__records_free(letters, n, sizeof *letters, strs, sizeof strs / sizeof *strs);
}

/* A copy of the JSON string `key` of `o`, or NULL. Sets *oom when a copy failed. */
static char *json_dup(json_t *o, const char *key, int *oom)
{
    const char *v = json_string_value(json_object_get(o, key));
    char *c = v ? strdup(v) : NULL;
    if (v && !c) *oom = 1;
    return c;
}

/* One item of P:{W}:dead (claim.lua's JSON {entry, reason, at, consumer, fields[, id]}) into `d`.
 * The `fields` string holds the entry's raw bytes, which cjson leaves unescaped and jansson
 * refuses as UTF-8: bytes above 0x7f are read as '?' (only `fields` can hold them, and it is not
 * returned). Returns 0, or -1 when out of memory. */
static int parse_dead(const redisReply *item, wf_dead_letter *d)
{
    if (item->type != REDIS_REPLY_STRING) return 0;
    char *text = malloc(item->len + 1);
    if (!text) return -1;
    for (size_t i = 0; i < item->len; i++)
        text[i] = (unsigned char)item->str[i] > 0x7f ? '?' : item->str[i];
    text[item->len] = '\0';
    json_t *o = json_loads(text, 0, NULL);
    int oom = 0;
    if (!json_is_object(o)) {
        d->reason = text; /* not wf's: shown as it is */
        json_decref(o);
        return 0;
    }
    free(text);
    d->run_id = json_dup(o, "id", &oom);
    d->reason = json_dup(o, "reason", &oom);
    d->entry = json_dup(o, "entry", &oom);
    d->worker = json_dup(o, "consumer", &oom);
    json_t *at = json_object_get(o, "at");
    d->at_ms = json_is_number(at) ? (int64_t)json_number_value(at) : 0;
    json_decref(o);
    return oom ? -1 : 0;
}

int wf_dead_letters(wf_client *client, const char *workflow, size_t limit, wf_dead_letter **letters,
                    size_t *n, wf_error *err)
{
    if (letters) *letters = NULL;
    int rc = check_args(client, workflow, letters, n, err);
    if (rc != WF_OK || !letters) return rc; /* (!letters: check_args refused it already) */
    if (limit == 0) limit = DEAD_DEFAULT;
    if (limit > DEAD_MAX) limit = DEAD_MAX;
    char *key = wf__key_wf(client->url.prefix, workflow, "dead");
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__client_cmd(client, 1, err, "LRANGE %s 0 %lld", key, (long long)limit - 1);
    free(key);
    if (!r) return err ? err->code : WF_ERR_IO;
    rc = WF_OK;
    wf_dead_letter *out = NULL;
    size_t count = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    if (r->type != REDIS_REPLY_ARRAY)
        rc = wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply to LRANGE");
    else if (count > 0 && !(out = calloc(count, sizeof *out)))
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == WF_OK && i < count; i++)
        if (parse_dead(r->element[i], &out[i]) != 0)
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    freeReplyObject(r);
    if (rc != WF_OK) {
        wf_dead_letters_free(out, count);
        return rc;
    }
    *letters = out;
    *n = count;
    return WF_OK;
}
