/* web_ops.c - the dashboard's API beyond runs: schedules (list, pause, resume, trigger now), dead
 * letters, pausing a whole workflow, and a workflow's history per minute. Routed from
 * web_api.c's wf__web_api(); answers as the rest of the API does (web.c). */
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "run_view.h"
#include "status_json.h"
#include "web.h"

/* The value of `key` in a query string, copied into `out` ("" when absent). Returns 0, or -1
 * for a malformed query or a value too long (then the request is answered 400). */
static int query_value(struct evhttp_request *req, const char *query, const char *key, char *out,
                       size_t size)
{
    struct evkeyvalq q;
    out[0] = '\0';
    if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
        wf__web_send_error(req, 400, "malformed query string");
        return -1;
    }
    const char *v = evhttp_find_header(&q, key);
    int rc = 0;
    if (v && strlen(v) >= size) {
        wf__web_send_error(req, 400, "%s wants at most %zu characters", key, size - 1);
        rc = -1;
    } else if (v) {
        memcpy(out, v, strlen(v) + 1);
    }
    evhttp_clear_headers(&q);
    return rc;
}

/* ---- GET /api/schedules?workflow=W ------------------------------------------------------------
 */

static json_t *schedule_json(const wf_schedule_info *s)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "id", wf__cli_string_json(s->id));
    json_object_set_new(o, "workflow", wf__cli_string_json(s->workflow));
    json_object_set_new(o, "spec", wf__cli_string_json(s->spec));
    json_object_set_new(o, "input", wf__cli_msgpack_json(s->payload, s->payload_len));
    json_object_set_new(o, "catchUp", json_string(wf_catch_up_name(s->catch_up)));
    json_object_set_new(o, "createdAt", wf__cli_time_json(s->created_at_ms));
    json_object_set_new(o, "nextAt", wf__cli_time_json(s->next_at_ms));
    json_object_set_new(o, "lastAt", wf__cli_time_json(s->last_at_ms));
    json_object_set_new(o, "fires", json_integer(s->fires));
    json_object_set_new(o, "lastRun", wf__cli_string_json(s->last_run));
    json_object_set_new(o, "paused", json_boolean(s->paused));
    return o;
}

static void get_schedules(wf__web *web, struct evhttp_request *req, const char *query)
{
    char workflow[256];
    if (query_value(req, query, "workflow", workflow, sizeof workflow) != 0) return;
    wf_schedule_info *s = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_schedule_list(web->cli->client, workflow[0] ? workflow : NULL, &s, &n, &err) != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) json_array_append_new(a, schedule_json(&s[i]));
    wf_schedules_free(s, n);
    wf__web_send_json(req, 200, json_pack("{s:o*}", "schedules", a));
}

/* ---- POST /api/schedules/W/ID/pause|resume|trigger, POST /api/workflows/W/pause|resume ---------
 */

/* Splits `rest` ("A/B/ACTION" with `parts` 3, "A/ACTION" with 2), percent-decoded, into
 * `out[0..parts-1]`, pointing into `*buf` (the caller frees it). Returns 0 or -1 (wrong shape,
 * a NUL byte, an empty part). */
static int split_path(const char *rest, int parts, char **buf, const char *out[3])
{
    size_t len = 0;
    int got = 0;
    *buf = evhttp_uridecode(rest, 0, &len);
    if (!*buf || strlen(*buf) != len) return -1;
    for (char *p = *buf, *slash; got < parts; p = slash + 1) {
        slash = got + 1 < parts ? strchr(p, '/') : NULL;
        if ((got + 1 < parts && !slash) || (got + 1 == parts && strchr(p, '/'))) return -1;
        if (slash) *slash = '\0';
        if (!*p) return -1;
        out[got++] = p;
        if (!slash) break;
    }
    return got == parts ? 0 : -1;
}

static void schedule_action(wf__web *web, struct evhttp_request *req, const char *rest)
{
    char *buf = NULL;
    const char *part[3];
    if (split_path(rest, 3, &buf, part) != 0) {
        free(buf);
        wf__web_send_error(req, 404, "no such route: /api/schedules/WORKFLOW/ID/ACTION");
        return;
    }
    const char *workflow = part[0], *id = part[1], *action = part[2];
    char run_id[WF_RUN_ID_MAX] = "";
    wf_error err = {0};
    int rc = WF_OK, answered = 1;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        wf__web_send_405(req, "POST");
    } else if (strcmp(action, "pause") == 0) {
        rc = wf_schedule_pause(web->cli->client, workflow, id, &err), answered = 0;
    } else if (strcmp(action, "resume") == 0) {
        rc = wf_schedule_resume(web->cli->client, workflow, id, &err), answered = 0;
    } else if (strcmp(action, "trigger") == 0) {
        rc = wf_schedule_trigger(web->cli->client, workflow, id, run_id, &err), answered = 0;
    } else {
        wf__web_send_error(req, 404, "no action '%.40s' (pause, resume, trigger)", action);
    }
    if (!answered && rc != WF_OK) wf__web_send_wf_error(req, &err);
    if (!answered && rc == WF_OK)
        wf__web_send_json(req, 200,
                          json_pack("{s:b, s:s, s:s, s:s, s:s?}", "ok", 1, "workflow", workflow,
                                    "schedule", id, "action", action, "runId",
                                    run_id[0] ? run_id : NULL));
    free(buf);
}

static void workflow_action(wf__web *web, struct evhttp_request *req, const char *workflow,
                            const char *action)
{
    wf_error err = {0};
    int rc;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        wf__web_send_405(req, "POST");
        return;
    }
    if (strcmp(action, "pause") == 0) {
        rc = wf_workflow_pause(web->cli->client, workflow, &err);
    } else {
        rc = wf_workflow_resume(web->cli->client, workflow, &err);
    }
    if (rc != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    wf__web_send_json(
        req, 200,
        json_pack("{s:b, s:s, s:b}", "ok", 1, "workflow", workflow, "paused", action[0] == 'p'));
}

/* ---- GET /api/workflows/W/history?range=1h|1d ---------------------------------------------------
 */

/* The last hour in 60 buckets of a minute, or the last day in 96 buckets of 15 minutes: enough
 * points for a small chart, few enough to draw without a library. */
static void get_history(wf__web *web, struct evhttp_request *req, const char *workflow,
                        const char *query)
{
    char range[8];
    if (query_value(req, query, "range", range, sizeof range) != 0) return;
    int day = strcmp(range, "1d") == 0;
    if (range[0] && !day && strcmp(range, "1h") != 0) {
        wf__web_send_error(req, 400, "range wants 1h or 1d");
        return;
    }
    int minutes = day ? 1440 : 60, per = day ? 15 : 1;
    wf_history_point *pts = NULL;
    size_t n = 0;
    wf_error err = {0};
    /* until 0: up to and including the current minute; `minutes` points back from it. */
    if (wf_workflow_history(web->cli->client, workflow, 0, 0, &pts, &n, &err) != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    int64_t until = n ? pts[n - 1].minute_ms + 60000 : 0;
    if (n > (size_t)minutes) { /* the current minute and the 60 before it: keep the last 60 */
        memmove(pts, pts + (n - (size_t)minutes), (size_t)minutes * sizeof *pts);
        n = (size_t)minutes;
    }
    if (day && until) {
        wf_history_free(pts);
        pts = NULL;
        if (wf_workflow_history(web->cli->client, workflow, until - (int64_t)minutes * 60000, until,
                                &pts, &n, &err) != WF_OK) {
            wf__web_send_wf_error(req, &err);
            return;
        }
    }
    json_t *started = json_array(), *completed = json_array(), *failed = json_array();
    for (size_t i = 0; i < n; i += (size_t)per) {
        long long s = 0, c = 0, f = 0;
        for (size_t j = i; j < i + (size_t)per && j < n; j++) {
            s += pts[j].started;
            c += pts[j].completed;
            f += pts[j].failed;
        }
        json_array_append_new(started, json_integer(s));
        json_array_append_new(completed, json_integer(c));
        json_array_append_new(failed, json_integer(f));
    }
    json_int_t from = n ? (json_int_t)pts[0].minute_ms : 0;
    wf_history_free(pts);
    wf__web_send_json(req, 200,
                      json_pack("{s:s, s:s, s:I, s:I, s:o*, s:o*, s:o*}", "workflow", workflow,
                                "range", day ? "1d" : "1h", "from", from, "stepMs",
                                (json_int_t)per * 60000, "started", started, "completed", completed,
                                "failed", failed));
}

/* Routes /workflows/W/ACTION: pause, resume (POST) or history (GET). */
static void workflow_route(wf__web *web, struct evhttp_request *req, const char *rest,
                           const char *query)
{
    char *buf = NULL;
    const char *part[3];
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (split_path(rest, 2, &buf, part) != 0) {
        wf__web_send_error(req, 404, "no such route: /api/workflows/WORKFLOW/ACTION");
    } else if (strcmp(part[1], "history") == 0) {
        if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
            get_history(web, req, part[0], query);
        else
            wf__web_send_405(req, "GET, HEAD");
    } else if (strcmp(part[1], "pause") == 0 || strcmp(part[1], "resume") == 0) {
        workflow_action(web, req, part[0], part[1]);
    } else {
        wf__web_send_error(req, 404, "no action '%.40s' (pause, resume, history)", part[1]);
    }
    free(buf);
}

/* ---- GET /api/dead?workflow=W&limit=N -----------------------------------------------------------
 */

static void get_dead(wf__web *web, struct evhttp_request *req, const char *query)
{
    char workflow[256], limit_arg[16];
    long long limit = 100;
    if (query_value(req, query, "workflow", workflow, sizeof workflow) != 0 ||
        query_value(req, query, "limit", limit_arg, sizeof limit_arg) != 0)
        return;
    if (!workflow[0]) {
        wf__web_send_error(req, 400, "dead letters want workflow=W");
        return;
    }
    if (limit_arg[0] &&
        (wf__cli_parse_long(limit_arg, &limit) != 0 || limit < 1 || limit > 10000)) {
        wf__web_send_error(req, 400, "limit wants 1..10000");
        return;
    }
    wf_dead_letter *d = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_dead_letters(web->cli->client, workflow, (size_t)limit, &d, &n, &err) != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(
            a, json_pack("{s:o, s:o, s:o, s:o, s:o}", "runId", wf__cli_string_json(d[i].run_id),
                         "at", wf__cli_time_json(d[i].at_ms), "reason",
                         wf__cli_string_json(d[i].reason), "entry", wf__cli_string_json(d[i].entry),
                         "worker", wf__cli_string_json(d[i].worker)));
    wf_dead_letters_free(d, n);
    wf__web_send_json(req, 200, json_pack("{s:s, s:o*}", "workflow", workflow, "deadLetters", a));
}

int wf__web_ops(wf__web *web, struct evhttp_request *req, const char *path, const char *query)
{
    if (strcmp(path, "/dead") == 0) {
        enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
        if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
            get_dead(web, req, query);
        else
            wf__web_send_405(req, "GET, HEAD");
        return 1;
    }
    if (strncmp(path, "/schedules/", 11) == 0) {
        schedule_action(web, req, path + 11);
        return 1;
    }
    if (strncmp(path, "/workflows/", 11) == 0) {
        workflow_route(web, req, path + 11, query);
        return 1;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    if (strcmp(path, "/schedules") == 0) {
        if (get)
            get_schedules(web, req, query);
        else
            wf__web_send_405(req, "GET, HEAD");
        return 1;
    }
    return 0;
}
