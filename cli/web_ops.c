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

int wf__web_ops(wf__web *web, struct evhttp_request *req, const char *path, const char *query)
{
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
