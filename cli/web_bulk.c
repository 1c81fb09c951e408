/* web_bulk.c - the dashboard's bulk actions on a filter:
 *
 *   POST /api/bulk?action=retry|stop&workflow=W&state=S[&dry_run=1][&until=MS]
 *
 * answers {"action", "workflow", "state", "dryRun", "until", "count", "acted", "skipped",
 * "failed"}. The page asks first with dry_run=1: that counts the runs of W in state S whose last
 * state change is at or before Redis's time now, and answers that time as "until". The page shows
 * the count in its confirmation and then sends the same `until` back to act, so exactly the runs
 * the operator confirmed are acted on, never runs that reached the state after the count.
 *
 * Acting re-reads each run's state first (a run that left S meanwhile is skipped, as `wf stop
 * --state` does) and then stops it (stop) or retries it as a new attempt keeping its steps
 * (retry: for failed, cancelled or terminated runs). It runs on the server's one thread: a few
 * round trips per run, so a bulk action on thousands of runs stalls the dashboard for a while
 * (the CLI's `wf retry --workflow W --state S` is the tool for huge selections). */
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "web.h"

#define PAGE 500 /* ids per wf_list_runs() call */

/* What a request asks for. */
typedef struct bulk_req {
    int stop; /* 1 stop, 0 retry */
    const char *workflow;
    wf_state state;
    int dry_run;
    int64_t until_ms; /* 0: Redis's time now */
} bulk_req;

/* Reads the query into `b`. Returns 0, or answers 400 and returns -1. */
static int parse_bulk(struct evhttp_request *req, struct evkeyvalq *q, bulk_req *b)
{
    const char *action = evhttp_find_header(q, "action");
    const char *state = evhttp_find_header(q, "state");
    const char *until = evhttp_find_header(q, "until");
    const char *dry = evhttp_find_header(q, "dry_run");
    long long n = 0;
    b->workflow = evhttp_find_header(q, "workflow");
    if (!action || (strcmp(action, "stop") && strcmp(action, "retry"))) {
        wf__web_send_error(req, 400, "action wants stop or retry");
        return -1;
    }
    b->stop = action[0] == 's';
    if (!b->workflow || !*b->workflow) {
        wf__web_send_error(req, 400, "a bulk action needs workflow=W");
        return -1;
    }
    b->state = state ? wf_state_from_name(state) : WF_STATE_UNKNOWN;
    int fits = b->stop ? !wf_state_is_final(b->state)
                       : wf_state_is_final(b->state) && b->state != WF_STATE_COMPLETED;
    if (b->state == WF_STATE_UNKNOWN || !fits) {
        wf__web_send_error(req, 400,
                           b->stop ? "stop wants state=queued, running, waiting or paused"
                                   : "retry wants state=failed, cancelled or terminated");
        return -1;
    }
    if (until && *until && (wf__cli_parse_long(until, &n) != 0 || n <= 0)) {
        wf__web_send_error(req, 400, "until wants ms since the epoch");
        return -1;
    }
    b->until_ms = n;
    b->dry_run = dry && (strcmp(dry, "1") == 0 || strcmp(dry, "true") == 0);
    return 0;
}

/* Counts the selection by paging through it. Returns WF_OK or an error. */
static int count_selection(wf__web *web, const bulk_req *b, size_t *count, wf_error *err)
{
    wf_list_options lo = {b->workflow, b->state, PAGE, 0, b->until_ms, 0};
    *count = 0;
    for (;;) {
        char **ids = NULL;
        size_t n = 0;
        if (wf_list_runs(web->cli->client, &lo, &ids, &n, err) != WF_OK) return err->code;
        wf_list_free(ids, n);
        *count += n;
        if (n < PAGE) return WF_OK;
        lo.offset += n;
    }
}

/* Acts on run `id` if it is still in b->state. Returns 1 acted, 0 skipped (it moved on), or -1
 * with `err` set. */
static int act_one(wf__web *web, const bulk_req *b, const char *id, wf_error *err)
{
    wf_run *run = wf_get_workflow_run(web->cli->client, id, err);
    if (!run) return err->code == WF_ERR_NOT_FOUND ? 0 : -1;
    wf_status st = {0};
    int rc = wf_run_status(run, &st, err);
    int out = -1;
    if (rc == WF_OK && st.state != b->state) {
        out = 0;
    } else if (rc == WF_OK) {
        rc = b->stop ? wf_run_stop(run, err) : wf_run_restart(run, 0, err);
        /* Refused because it moved between the read and the act: nothing changed. */
        out = rc == WF_OK ? 1 : (rc == WF_ERR_FINAL || rc == WF_ERR_STATE) ? 0 : -1;
    }
    wf_status_clear(&st);
    wf_run_free(run);
    return out;
}

/* Acts on the selection. Each run acted on or skipped leaves the state's index (a retried run
 * that fails again comes back later than `until`), so the listing restarts from the top, past
 * the runs that could not be acted on: those stay, and they are the newest of what is left. */
static int act_selection(wf__web *web, const bulk_req *b, size_t *acted, size_t *skipped,
                         size_t *failed, wf_error *err)
{
    wf_list_options lo = {b->workflow, b->state, PAGE, 0, b->until_ms, 0};
    for (;;) {
        char **ids = NULL;
        size_t n = 0;
        if (wf_list_runs(web->cli->client, &lo, &ids, &n, err) != WF_OK) return err->code;
        int rc = WF_OK;
        for (size_t i = 0; i < n && rc == WF_OK; i++) {
            wf_error one = {0};
            int r = act_one(web, b, ids[i], &one);
            if (r > 0) {
                (*acted)++;
            } else if (r == 0) {
                (*skipped)++;
            } else {
                (*failed)++;
                lo.offset++;
                if (wf__cli_exit_code(one.code) == WF_CLI_CONNECT) { /* the rest would fail too */
                    *err = one;
                    rc = one.code;
                }
            }
        }
        wf_list_free(ids, n);
        if (rc != WF_OK || n == 0) return rc;
    }
}

/* Redis's time now, from the workflow's stats. */
static int redis_now(wf__web *web, const char *workflow, int64_t *now, wf_error *err)
{
    wf_stats *stats = NULL;
    size_t n = 0;
    if (wf_workflow_stats(web->cli->client, workflow, &stats, &n, err) != WF_OK) return err->code;
    *now = n ? stats[0].now_ms : 0;
    wf_stats_free(stats, n);
    return WF_OK;
}

void wf__web_bulk(wf__web *web, struct evhttp_request *req, const char *query)
{
    struct evkeyvalq q;
    if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
        wf__web_send_error(req, 400, "malformed query string");
        return;
    }
    bulk_req b = {0};
    if (parse_bulk(req, &q, &b) != 0) {
        evhttp_clear_headers(&q);
        return;
    }
    wf_error err = {0};
    size_t count = 0, acted = 0, skipped = 0, failed = 0;
    int rc = WF_OK;
    if (!b.until_ms) rc = redis_now(web, b.workflow, &b.until_ms, &err);
    if (rc == WF_OK) rc = count_selection(web, &b, &count, &err);
    if (rc == WF_OK && !b.dry_run) rc = act_selection(web, &b, &acted, &skipped, &failed, &err);
    if (rc != WF_OK) {
        wf__web_send_wf_error(req, &err);
    } else {
        wf__web_send_json(req, 200,
                          json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "action",
                                    b.stop ? "stop" : "retry", "workflow", b.workflow, "state",
                                    wf_state_name(b.state), "dryRun", b.dry_run, "until",
                                    (json_int_t)b.until_ms, "count", (json_int_t)count, "acted",
                                    (json_int_t)acted, "skipped", (json_int_t)skipped, "failed",
                                    (json_int_t)failed));
    }
    evhttp_clear_headers(&q);
}
