/* web_api.c - the dashboard's JSON API (see web.c's usage text for the routes). Each handler
 * answers from libwf on the server's one client; errors map to HTTP codes in one place
 * (status_for). Run ids arrive percent-encoded in the path and are checked by libwf before any
 * key is built. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/keyvalq_struct.h>

#include "run_view.h"
#include "status_json.h"
#include "web.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT     500
/* A search (q=) looks at this many of the newest runs matching the other filters. */
#define SEARCH_WINDOW 5000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- GET /api/workflows, GET /api/workers -----------------------------------------------------
 */

/* Each workflow's stats plus "liveWorkers": how many live workers run it (0 with runs queued
 * means they wait for a worker that is not there). */
static void get_workflows(wf__web *web, struct evhttp_request *req)
{
    wf_stats *stats = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_workflow_stats(web->cli->client, NULL, &stats, &n, &err) != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    const char **names = calloc(n ? n : 1, sizeof *names);
    long long *live = calloc(n ? n : 1, sizeof *live);
    int known = names && live;
    for (size_t i = 0; known && i < n; i++) names[i] = stats[i].workflow;
    if (known) known = wf__cli_live_workers(web->cli, names, n, live) == 0;
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *w = wf__cli_stats_json(&stats[i]);
        if (w && known) json_object_set_new(w, "liveWorkers", json_integer(live[i]));
        json_array_append_new(a, w);
    }
    json_int_t now = n ? (json_int_t)stats[0].now_ms : (json_int_t)now_ms();
    free(names);
    free(live);
    wf_stats_free(stats, n);
    wf__web_send_json(req, 200, json_pack("{s:o*, s:I}", "workflows", a, "now", now));
}

static void get_workers(wf__web *web, struct evhttp_request *req)
{
    wf_worker_info *ws = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_list_workers(web->cli->client, 1, &ws, &n, &err) != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) json_array_append_new(a, wf__cli_worker_json(&ws[i]));
    wf_workers_free(ws, n);
    wf__web_send_json(req, 200, json_pack("{s:o*}", "workers", a));
}

/* ---- GET /api/runs ----------------------------------------------------------------------------
 */

/* Reads the list filters from the query. Returns 0, or answers 400 and returns -1. */
static int list_options(struct evhttp_request *req, struct evkeyvalq *q, wf_list_options *lo)
{
    const char *v;
    long long n;
    lo->limit = DEFAULT_LIMIT;
    if ((v = evhttp_find_header(q, "workflow")) && *v) lo->workflow = v; /* checked by libwf */
    if ((v = evhttp_find_header(q, "state")) && *v) {
        lo->state = wf_state_from_name(v);
        if (lo->state == WF_STATE_UNKNOWN) {
            wf__web_send_error(req, 400, "no state '%.40s'", v);
            return -1;
        }
    }
    if ((v = evhttp_find_header(q, "limit")) && *v) {
        if (wf__cli_parse_long(v, &n) != 0 || n == 0 || n > MAX_LIMIT) {
            wf__web_send_error(req, 400, "limit wants 1..%d", MAX_LIMIT);
            return -1;
        }
        lo->limit = (size_t)n;
    }
    if ((v = evhttp_find_header(q, "offset")) && *v) {
        if (wf__cli_parse_long(v, &n) != 0 || n > 1000000) {
            wf__web_send_error(req, 400, "offset wants a count");
            return -1;
        }
        lo->offset = (size_t)n;
    }
    int64_t now = now_ms();
    if (((v = evhttp_find_header(q, "since")) && *v && wf__cli_parse_time(v, now, &lo->since_ms)) ||
        ((v = evhttp_find_header(q, "until")) && *v && wf__cli_parse_time(v, now, &lo->until_ms))) {
        wf__web_send_error(req, 400, "since/until want ms since the epoch or a duration (10m)");
        return -1;
    }
    return 0;
}

/* 1 when run id `id` ("workflow:rest") starts with `q`, or its part after the colon does: a
 * pasted id, its first characters, or the first characters of the part after the workflow. */
static int id_matches(const char *id, const char *q)
{
    size_t n = strlen(q);
    if (strncmp(id, q, n) == 0) return 1;
    const char *colon = strchr(id, ':');
    return colon && strncmp(colon + 1, q, n) == 0;
}

/* Keeps the ids of `ids` that match `q`, then applies offset and limit. */
static void search_ids(char **ids, size_t *count, const char *q, size_t offset, size_t limit)
{
    size_t kept = 0, seen = 0;
    for (size_t i = 0; i < *count; i++) {
        if (id_matches(ids[i], q) && seen++ >= offset && kept < limit) {
            ids[kept++] = ids[i];
        } else {
            free(ids[i]);
        }
    }
    *count = kept;
}

static void get_runs(wf__web *web, struct evhttp_request *req, const char *query)
{
    struct evkeyvalq q;
    if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
        wf__web_send_error(req, 400, "malformed query string");
        return;
    }
    wf_list_options lo = {0};
    if (list_options(req, &q, &lo) != 0) {
        evhttp_clear_headers(&q);
        return;
    }
    char search[256] = "";
    const char *v = evhttp_find_header(&q, "q");
    if (v && strlen(v) >= sizeof search) {
        evhttp_clear_headers(&q);
        wf__web_send_error(req, 400, "q wants at most %zu characters", sizeof search - 1);
        return;
    }
    if (v) snprintf(search, sizeof search, "%s", v);
    size_t limit = lo.limit, offset = lo.offset;
    if (search[0]) { /* filtered here, over a window of the newest runs */
        lo.limit = SEARCH_WINDOW;
        lo.offset = 0;
    }
    char **ids = NULL;
    size_t count = 0;
    wf_error err = {0};
    int rc = wf_list_runs(web->cli->client, &lo, &ids, &count, &err);
    evhttp_clear_headers(&q);
    if (rc == WF_OK && search[0]) search_ids(ids, &count, search, offset, limit);
    if (rc != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    json_t *runs = json_array();
    for (size_t i = 0; runs && i < count; i++) {
        wf_run *run;
        wf_status st = {0};
        int code = wf__cli_fetch(web->cli, ids[i], &run, &st, &err);
        if (code == WF_ERR_NOT_FOUND) continue; /* expired or purged since the listing */
        if (code != WF_OK) {
            json_decref(runs);
            wf_list_free(ids, count);
            wf__web_send_wf_error(req, &err);
            return;
        }
        json_array_append_new(runs, wf__cli_status_json(ids[i], wf_run_workflow_name(run), &st));
        wf_status_clear(&st);
        wf_run_free(run);
    }
    wf_list_free(ids, count);
    wf__web_send_json(req, 200,
                      json_pack("{s:o*, s:I}", "runs", runs, "now", (json_int_t)now_ms()));
}

/* ---- /api/runs/ID and its actions ---------------------------------------------------------------
 */

static void get_run(wf__web *web, struct evhttp_request *req, const char *id)
{
    wf_run *run;
    wf_status st;
    wf_step_info *steps;
    size_t n;
    wf_error err = {0};
    if (wf__cli_fetch_detail(web->cli->client, id, &run, &st, &steps, &n, &err) != WF_OK) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    json_t *body =
        wf__cli_run_detail_json(wf_run_id(run), wf_run_workflow_name(run), &st, steps, n);
    const char *workflow = wf_run_workflow_name(run);
    long long live = 0;
    if (body && wf__cli_live_workers(web->cli, &workflow, 1, &live) == 0) /* else no warning */
        json_object_set_new(body, "liveWorkers", json_integer(live));
    wf_run_event *ev = NULL;
    size_t ne = 0;
    if (body && wf_run_events(run, &ev, &ne, &err) == WF_OK) { /* else no history is shown */
        json_t *a = json_array();
        for (size_t i = 0; a && i < ne; i++)
            json_array_append_new(a,
                                  json_pack("{s:o, s:o, s:o}", "at", wf__cli_time_json(ev[i].at_ms),
                                            "kind", wf__cli_string_json(ev[i].kind), "detail",
                                            wf__cli_string_json(ev[i].detail)));
        json_object_set_new(body, "events", a);
        wf_run_events_free(ev, ne);
    }
    wf_steps_free(steps, n);
    wf_status_clear(&st);
    wf_run_free(run);
    wf__web_send_json(req, 200, body);
}

/* POST /api/runs/ID/ACTION: stop, pause, resume, restart (from the start, whatever its state,
 * like `wf restart`), or retry (a run that ended without completing,
 * as a new attempt keeping its steps, like `wf retry`). Answers {"ok": true, "run": STATUS}. */
static void post_action(wf__web *web, struct evhttp_request *req, const char *id,
                        const char *action, const char *reason)
{
    wf_error err = {0};
    wf_run *run = wf_get_workflow_run(web->cli->client, id, &err);
    if (!run) {
        wf__web_send_wf_error(req, &err);
        return;
    }
    wf_status st = {0};
    int rc;
    if (strcmp(action, "stop") == 0) {
        rc = reason && *reason ? wf_run_stop_reason(run, reason, &err) : wf_run_stop(run, &err);
    } else if (strcmp(action, "pause") == 0) {
        rc = wf_run_pause(run, &err);
    } else if (strcmp(action, "resume") == 0) {
        rc = wf_run_resume(run, &err);
    } else if (strcmp(action, "restart") == 0) { /* from the start, steps replayed */
        rc = wf_run_restart(run, 0, &err);
    } else {
        rc = wf_run_status(run, &st, &err);
        if (rc == WF_OK && (!wf_state_is_final(st.state) || st.state == WF_STATE_COMPLETED))
            rc = wf_error_set(&err, WF_ERR_STATE,
                              "run '%s' is %s: retry is for runs that ended failed, terminated "
                              "or cancelled",
                              id, wf_state_name(st.state));
        wf_status_clear(&st);
        if (rc == WF_OK) rc = wf_run_restart(run, 0, &err);
    }
    if (rc == WF_OK) rc = wf_run_status(run, &st, &err);
    if (rc != WF_OK) {
        wf__web_send_wf_error(req, &err);
    } else {
        json_t *status = wf__cli_status_json(wf_run_id(run), wf_run_workflow_name(run), &st);
        wf__web_send_json(req, 200, json_pack("{s:b, s:o*}", "ok", 1, "run", status));
    }
    wf_status_clear(&st);
    wf_run_free(run);
}

/* Routes /runs/ID[/ACTION]: `rest` is the part after "/runs/", percent-encoded. */
static void run_route(wf__web *web, struct evhttp_request *req, const char *rest, const char *query)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    size_t len = 0;
    char *decoded = evhttp_uridecode(rest, 0, &len);
    if (!decoded) {
        wf__web_send_error(req, 500, "out of memory");
        return;
    }
    char *action = strrchr(decoded, '/');
    if (action) *action++ = '\0';
    if (len != strlen(decoded) + (action ? strlen(action) + 1 : 0)) {
        wf__web_send_error(req, 400, "malformed run id (contains a NUL byte)");
    } else if (!action) {
        if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
            get_run(web, req, decoded);
        else
            wf__web_send_405(req, "GET, HEAD");
    } else if (strcmp(action, "stop") && strcmp(action, "retry") && strcmp(action, "pause") &&
               strcmp(action, "resume") && strcmp(action, "restart")) {
        wf__web_send_error(req, 404, "no action '%.40s' (stop, retry, pause, resume, restart)",
                           action);
    } else if (cmd != EVHTTP_REQ_POST) {
        wf__web_send_405(req, "POST");
    } else {
        struct evkeyvalq q;
        if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
            wf__web_send_error(req, 400, "malformed query string");
        } else {
            const char *reason = evhttp_find_header(&q, "reason");
            if (reason && strlen(reason) > 200)
                wf__web_send_error(req, 400, "reason wants at most 200 characters");
            else
                post_action(web, req, decoded, action, reason);
            evhttp_clear_headers(&q);
        }
    }
    free(decoded);
}

void wf__web_api(wf__web *web, struct evhttp_request *req, const char *path, const char *query)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    if (strncmp(path, "/runs/", 6) == 0 && path[6]) {
        run_route(web, req, path + 6, query);
        return;
    }
    if (wf__web_ops(web, req, path, query)) return;
    if (strcmp(path, "/bulk") == 0) {
        if (cmd == EVHTTP_REQ_POST)
            wf__web_bulk(web, req, query);
        else
            wf__web_send_405(req, "POST");
        return;
    }
    static const char *const lists[] = {"/workflows", "/workers", "/runs"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (strcmp(path, lists[i]) != 0) continue;
        if (!get)
            wf__web_send_405(req, "GET, HEAD");
        else if (i == 0)
            get_workflows(web, req);
        else if (i == 1)
            get_workers(web, req);
        else
            get_runs(web, req, query);
        return;
    }
    wf__web_send_error(req, 404, "no API route %.100s", path);
}
