/* run_view.c - see run_view.h: a run's details (status, steps, input, timeline) as JSON and as
 * text. Shared by `wf status`, `wf steps` and `wf web`. */
#include "run_view.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "status_json.h"

const char *wf__cli_status_field(const wf_status *st, const char *name, size_t *len)
{
    for (size_t i = 0; i < st->raw_len; i++)
        if (strcmp(st->raw[i].name, name) == 0) {
            if (len) *len = st->raw[i].value_len;
            return st->raw[i].value;
        }
    if (len) *len = 0;
    return NULL;
}

static int64_t field_ms(const wf_status *st, const char *name)
{
    const char *v = wf__cli_status_field(st, name, NULL);
    return v ? (int64_t)strtoll(v, NULL, 10) : 0;
}

json_t *wf__cli_msgpack_json(const char *data, size_t len)
{
    if (!data || len == 0) return json_null();
    char *text = NULL;
    if (wf_msgpack_to_json(data, len, &text, NULL) != WF_OK) return json_null();
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    free(text);
    return value ? value : json_null();
}

json_t *wf__cli_steps_json(const wf_step_info *steps, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const wf_step_info *s = &steps[i];
        int64_t dur = s->finished_at_ms > 0 && s->started_at_ms > 0
                          ? s->finished_at_ms - s->started_at_ms
                          : -1;
        json_t *o = json_object();
        int bad = !o;
        bad = bad || json_object_set_new(o, "name", wf__cli_string_json(s->name));
        bad = bad || json_object_set_new(o, "kind", wf__cli_string_json(s->kind));
        bad = bad || json_object_set_new(o, "status", wf__cli_string_json(s->status));
        bad = bad || json_object_set_new(o, "attempts", json_integer(s->attempts));
        bad = bad || json_object_set_new(o, "startedAt", wf__cli_time_json(s->started_at_ms));
        bad = bad || json_object_set_new(o, "finishedAt", wf__cli_time_json(s->finished_at_ms));
        bad = bad || json_object_set_new(o, "durationMs",
                                         dur >= 0 ? json_integer((json_int_t)dur) : json_null());
        bad = bad || json_object_set_new(o, "until", wf__cli_time_json(s->until_ms));
        bad = bad || json_object_set_new(o, "error", wf__cli_string_json(s->error));
        bad = bad || json_object_set_new(o, "event", wf__cli_string_json(s->event));
        bad = bad || json_object_set_new(o, "eventKey", wf__cli_string_json(s->event_key));
        bad =
            bad || json_object_set_new(o, "result", wf__cli_msgpack_json(s->result, s->result_len));
        if (bad || json_array_append_new(a, o) != 0) {
            if (bad) json_decref(o);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ---- Timeline ---------------------------------------------------------------------------------
 */

typedef struct moment {
    int64_t at;
    size_t seq; /* insertion order: ties keep the order events happen in a run */
    const char *event;
    char detail[512];
} moment;

typedef struct moments {
    moment *m;
    size_t n, cap;
} moments;

static void add(moments *ms, int64_t at, const char *event, const char *detail)
{
    if (at <= 0 || ms->n == ms->cap) return;
    moment *m = &ms->m[ms->n];
    m->at = at;
    m->seq = ms->n++;
    m->event = event;
    snprintf(m->detail, sizeof m->detail, "%s", detail ? detail : "");
}

static int by_time(const void *a, const void *b)
{
    const moment *x = a, *y = b;
    if (x->at != y->at) return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* What happened to the run, in time order, from the timestamps it keeps: created, the current
 * execution's start, each step's start and end, the last state change, the timer, the end.
 * The run keeps only its latest start: after a durable wait (sleep, event, child run) that is
 * when a worker took it up again, later than its first steps, so it reads "resumed" then. */
static json_t *timeline_json(const wf_status *st, const wf_step_info *steps, size_t n)
{
    moments ms = {calloc(2 * n + 6, sizeof(moment)), 0, 2 * n + 6};
    if (!ms.m) return NULL;
    char detail[512];
    add(&ms, st->created_at_ms, "created", NULL);
    int resumed = 0;
    for (size_t i = 0; i < n && !resumed; i++)
        resumed = steps[i].started_at_ms > 0 && steps[i].started_at_ms < st->started_at_ms;
    snprintf(detail, sizeof detail, "attempt %d%s%s", st->attempt, st->worker ? " on " : "",
             st->worker ? st->worker : "");
    add(&ms, st->started_at_ms, resumed ? "resumed" : "started", detail);
    for (size_t i = 0; i < n; i++) {
        snprintf(detail, sizeof detail, "step %s (%s)", steps[i].name, steps[i].kind);
        add(&ms, steps[i].started_at_ms, "step started", detail);
        snprintf(detail, sizeof detail, "step %s %s%s%s", steps[i].name, steps[i].status,
                 steps[i].error ? ": " : "", steps[i].error ? steps[i].error : "");
        add(&ms, steps[i].finished_at_ms, "step ended", detail);
    }
    if (!wf_state_is_final(st->state)) {
        const char *from = wf__cli_status_field(st, "paused_from", NULL);
        snprintf(detail, sizeof detail, "%s%s%s", st->wait_reason ? st->wait_reason : "",
                 from ? "paused while " : "", from ? from : "");
        add(&ms, st->updated_at_ms, wf_state_name(st->state), detail);
        add(&ms, st->wake_at_ms, "due", st->wait_reason);
    }
    add(&ms, st->finished_at_ms, wf_state_name(st->state), st->error);
    if (ms.n > 1) qsort(ms.m, ms.n, sizeof *ms.m, by_time);
    json_t *t = json_array();
    for (size_t i = 0; t && i < ms.n; i++) {
        json_t *e = json_pack(
            "{s:I, s:s, s:o}", "at", (json_int_t)ms.m[i].at, "event", ms.m[i].event, "detail",
            ms.m[i].detail[0] ? wf__cli_string_json(ms.m[i].detail) : json_null());
        if (!e || json_array_append_new(t, e) != 0) {
            json_decref(t);
            t = NULL;
        }
    }
    free(ms.m);
    return t;
}

json_t *wf__cli_run_detail_json(const char *id, const char *workflow, const wf_status *st,
                                const wf_step_info *steps, size_t n)
{
    json_t *o = wf__cli_status_json(id, workflow, st);
    if (!o) return NULL;
    size_t input_len;
    const char *input = wf__cli_status_field(st, "input", &input_len);
    int bad =
        json_object_set_new(o, "step", wf__cli_string_json(wf__cli_status_field(st, "step", NULL)));
    bad |= json_object_set_new(o, "pausedFrom",
                               wf__cli_string_json(wf__cli_status_field(st, "paused_from", NULL)));
    bad |= json_object_set_new(o, "reclaims", json_integer(field_ms(st, "reclaims")));
    bad |=
        json_object_set_new(o, "priority", json_string(wf_priority_name(wf_status_priority(st))));
    bad |= json_object_set_new(o, "input", wf__cli_msgpack_json(input, input_len));
    bad |= json_object_set_new(o, "steps", wf__cli_steps_json(steps, n));
    bad |= json_object_set_new(o, "timeline", timeline_json(st, steps, n));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- Text -------------------------------------------------------------------------------------
 */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wf__cli_print_steps_table(FILE *out, const wf_step_info *steps, size_t n, int color)
{
    if (n == 0) {
        fputs("no steps recorded\n", out);
        return;
    }
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(steps[i].name) > w)
            w = (int)strlen(steps[i].name) > 40 ? 40 : (int)strlen(steps[i].name);
    fprintf(out, "%-*s  %-6s  %-10s  %8s  %-20s  %-9s  %-20s  %s\n", w, "STEP", "KIND", "STATUS",
            "ATTEMPTS", "STARTED", "DURATION", "UNTIL", "ERROR");
    for (size_t i = 0; i < n; i++) {
        const wf_step_info *s = &steps[i];
        char name[48], started[32], until[32], dur[32] = "-", error[64], status[64];
        if (s->started_at_ms > 0 && s->finished_at_ms >= s->started_at_ms)
            wf__cli_format_duration(s->finished_at_ms - s->started_at_ms, dur, sizeof dur);
        fprintf(out, "%-*s  %-6s  %s  %8d  %-20s  %-9s  %-20s  %s\n", w,
                wf__cli_cell(s->name, (size_t)w, name, sizeof name), s->kind,
                wf__cli_paint(color, s->status ? s->status : "-", 10, status, sizeof status),
                s->attempts, wf__cli_format_time(s->started_at_ms, started, sizeof started), dur,
                wf__cli_format_time(s->until_ms, until, sizeof until),
                wf__cli_cell(s->error, 60, error, sizeof error));
    }
}

static void line(FILE *out, const char *label, const char *value)
{
    fprintf(out, "%-10s %s\n", label, value && *value ? value : "-");
}

void wf__cli_print_run_text(FILE *out, const char *id, const char *workflow, const wf_status *st,
                            const wf_step_info *steps, size_t n, int color)
{
    char buf[600], t1[32], t2[32], state[48];
    int64_t now = now_ms();
    line(out, "Run", id);
    line(out, "Workflow", workflow);
    const char *from = wf__cli_status_field(st, "paused_from", NULL);
    if (st->state == WF_STATE_WAITING && st->wake_at_ms > 0)
        snprintf(buf, sizeof buf, "waiting (%s), due %s, in %s",
                 st->wait_reason ? st->wait_reason : "timer",
                 wf__cli_format_time(st->wake_at_ms, t1, sizeof t1),
                 wf__cli_format_duration(st->wake_at_ms - now, t2, sizeof t2));
    else if (st->state == WF_STATE_WAITING)
        snprintf(buf, sizeof buf, "waiting (%s)", st->wait_reason ? st->wait_reason : "event");
    else if (st->state == WF_STATE_PAUSED)
        snprintf(buf, sizeof buf, "paused (was %s)", from ? from : "?");
    else
        snprintf(buf, sizeof buf, "%s", wf_state_name(st->state));
    if (color) { /* buf begins with the state's name: colour that word */
        char rest[600];
        size_t len = strlen(wf_state_name(st->state));
        snprintf(rest, sizeof rest, "%s", buf + len);
        snprintf(buf, sizeof buf, "%s%s",
                 wf__cli_paint(color, wf_state_name(st->state), 0, state, sizeof state), rest);
    }
    line(out, "State", buf);
    wf_priority pri = wf_status_priority(st);
    if (pri != WF_PRIORITY_NORMAL) line(out, "Priority", wf_priority_name(pri));
    snprintf(buf, sizeof buf, "%d", st->attempt);
    line(out, "Attempt", buf);
    line(out, "Step", wf__cli_status_field(st, "step", NULL));
    line(out, "Worker", st->worker);
    line(out, "Error", st->error);
    line(out, "Created", wf__cli_format_time(st->created_at_ms, t1, sizeof t1));
    line(out, "Started", wf__cli_format_time(st->started_at_ms, t1, sizeof t1));
    line(out, "Updated", wf__cli_format_time(st->updated_at_ms, t1, sizeof t1));
    if (st->finished_at_ms > 0 && st->created_at_ms > 0)
        snprintf(buf, sizeof buf, "%s (after %s)",
                 wf__cli_format_time(st->finished_at_ms, t1, sizeof t1),
                 wf__cli_format_duration(st->finished_at_ms - st->created_at_ms, t2, sizeof t2));
    else
        snprintf(buf, sizeof buf, "-");
    line(out, "Finished", buf);
    char *output = NULL;
    if (st->output && wf_msgpack_to_json(st->output, st->output_len, &output, NULL) == WF_OK)
        line(out, "Output", output);
    else
        line(out, "Output", NULL);
    free(output);
    fputc('\n', out);
    wf__cli_print_steps_table(out, steps, n, color);
}

int wf__cli_fetch_detail(wf_client *client, const char *id, wf_run **run, wf_status *st,
                         wf_step_info **steps, size_t *n, wf_error *err)
{
    *steps = NULL;
    *n = 0;
    memset(st, 0, sizeof *st);
    *run = wf_get_workflow_run(client, id, err);
    if (!*run) return err->code;
    int rc = wf_run_status(*run, st, err);
    if (rc == WF_OK) rc = wf_run_steps(*run, steps, n, err);
    if (rc != WF_OK) {
        wf_status_clear(st);
        wf_run_free(*run);
        *run = NULL;
    }
    return rc;
}
