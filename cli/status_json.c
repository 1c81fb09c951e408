/* status_json.c - see status_json.h: one place that turns a wf_status into JSON. */
#include "status_json.h"

#include <stdlib.h>
#include <string.h>

/* A number field, or null when the timestamp was never set. */
json_t *wf__cli_time_json(int64_t ms)
{
    return ms > 0 ? json_integer((json_int_t)ms) : json_null();
}

/* A string field, or null. Text that is not UTF-8 (a handler's error message may be anything) is
 * kept with its non-ASCII bytes shown as '?' rather than dropped. */
json_t *wf__cli_string_json(const char *s)
{
    if (!s) return json_null();
    json_t *v = json_string(s);
    if (v) return v;
    char *copy = strdup(s);
    if (!copy) return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

/* The handler's msgpack result as a JSON value, or null when there is none or it does not convert
 * (it was checked when stored, so that would mean a corrupted record). */
static json_t *output_json(const wf_status *st)
{
    if (!st->output || st->output_len == 0) return json_null();
    char *text = NULL;
    if (wf_msgpack_to_json(st->output, st->output_len, &text, NULL) != WF_OK) return json_null();
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    free(text);
    return value ? value : json_null();
}

json_t *wf__cli_status_json(const char *id, const char *workflow, const wf_status *st)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_string(id));
    bad |= json_object_set_new(o, "workflow", json_string(workflow));
    bad |= json_object_set_new(o, "state", json_string(wf_state_name(st->state)));
    bad |= json_object_set_new(o, "attempt", json_integer(st->attempt));
    bad |= json_object_set_new(o, "output", output_json(st));
    bad |= json_object_set_new(o, "error", wf__cli_string_json(st->error));
    bad |= json_object_set_new(o, "createdAt", wf__cli_time_json(st->created_at_ms));
    bad |= json_object_set_new(o, "updatedAt", wf__cli_time_json(st->updated_at_ms));
    bad |= json_object_set_new(o, "startedAt", wf__cli_time_json(st->started_at_ms));
    bad |= json_object_set_new(o, "finishedAt", wf__cli_time_json(st->finished_at_ms));
    bad |= json_object_set_new(o, "waitReason", wf__cli_string_json(st->wait_reason));
    bad |= json_object_set_new(o, "wakeAt", wf__cli_time_json(st->wake_at_ms));
    bad |= json_object_set_new(o, "worker", wf__cli_string_json(st->worker));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *wf__cli_run_json(const wf_run *run, const wf_status *st)
{
    json_t *status = wf__cli_status_json(wf_run_id(run), wf_run_workflow_name(run), st);
    if (!status) return NULL;
    return json_pack("{s:s, s:o}", "runId", wf_run_id(run), "status", status);
}
