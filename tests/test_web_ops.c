/* test_web_ops.c - the dashboard's operator API (`wf web`, cli/web_bulk.c and cli/web_ops.c) over
 * real HTTP with a real Redis and worker: bulk retry and stop on a filter, schedules (list,
 * pause, resume, trigger), pausing a workflow, its history, a stop with a reason and the run's
 * recorded history, dead letters. */
#include <criterion/criterion.h>

#include "web_env.h"

TestSuite(web_api, .init = web_setup, .fini = web_teardown, .timeout = 120);

typedef struct attempt_wait {
    const char *id;
    long long attempt;
} attempt_wait;

static int failed_again(void *arg)
{
    attempt_wait *w = arg;
    return strcmp(state_of(w->id), "failed") == 0 && run_attempt(w->id) == w->attempt;
}

static json_t *bulk(const char *query, int code)
{
    char path[400];
    snprintf(path, sizeof path, "/api/bulk?%s", query);
    return call("POST", path, code);
}

/* The dry run counts; acting with its `until` takes exactly the runs counted, not one that failed
 * after the count. */
Test(web_api, bulk_retry_acts_on_the_runs_counted)
{
    char *ids[4];
    for (int i = 0; i < 3; i++) ids[i] = start_run("fatal", "--wait", NULL, NULL, NULL);
    for (int i = 0; i < 3; i++) wait_state(ids[i], "failed");
    json_t *dry = bulk("action=retry&workflow=fatal&state=failed&dry_run=1", 200);
    cr_assert_eq(ifield(dry, "count"), 3);
    cr_assert_eq(ifield(dry, "acted"), 0);
    cr_assert(json_is_true(json_object_get(dry, "dryRun")));
    long long until = ifield(dry, "until");
    cr_assert_gt(until, 0);
    json_decref(dry);
    for (int i = 0; i < 3; i++) cr_assert_eq(run_attempt(ids[i]), 1, "a dry run changes nothing");

    ids[3] = start_run("fatal", "--wait", NULL, NULL, NULL); /* fails after the count */
    wait_state(ids[3], "failed");
    char q[200];
    snprintf(q, sizeof q, "action=retry&workflow=fatal&state=failed&until=%lld", until);
    json_t *done = bulk(q, 200);
    cr_assert_eq(ifield(done, "count"), 3);
    cr_assert_eq(ifield(done, "acted"), 3);
    cr_assert_eq(ifield(done, "failed"), 0);
    json_decref(done);
    for (int i = 0; i < 3; i++) {
        attempt_wait w = {ids[i], 2};
        cr_assert(wf_test_wait(failed_again, &w, 15000), "%s retried once", ids[i]);
    }
    cr_assert_eq(run_attempt(ids[3]), 1, "a run that failed after the count is left alone");
    for (int i = 0; i < 4; i++) free(ids[i]);
}

Test(web_api, bulk_stop_and_its_refusals)
{
    char *a = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    char *b = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    json_t *doc = bulk("action=stop&workflow=publish-draft&state=waiting&dry_run=1", 200);
    cr_assert_eq(ifield(doc, "count"), 2);
    json_decref(doc);
    cr_assert_str_eq(state_of(a), "waiting");
    doc = bulk("action=stop&workflow=publish-draft&state=waiting", 200);
    cr_assert_eq(ifield(doc, "acted"), 2);
    cr_assert_str_eq(sfield(doc, "action"), "stop");
    json_decref(doc);
    cr_assert_str_eq(state_of(a), "cancelled");
    cr_assert_str_eq(state_of(b), "cancelled");
    doc = bulk("action=stop&workflow=publish-draft&state=waiting", 200);
    cr_assert_eq(ifield(doc, "count"), 0, "nothing left to stop");
    json_decref(doc);

    static const char *const bad[] = {"action=explode&workflow=publish-draft&state=failed",
                                      "action=retry&workflow=publish-draft&state=completed",
                                      "action=retry&workflow=publish-draft&state=queued",
                                      "action=stop&workflow=publish-draft&state=failed",
                                      "action=stop&state=queued",
                                      "action=stop&workflow=publish-draft",
                                      "action=stop&workflow=publish-draft&state=queued&until=soon",
                                      "action=stop&workflow=bad%20name&state=queued"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) json_decref(bulk(bad[i], 400));
    json_decref(call("GET", "/api/bulk", 405));
    json_decref(call("DELETE", "/api/bulk", 405));
    free(a);
    free(b);
}

/* Adds schedule `id` of publish-draft with `wf schedule add`. */
static void add_schedule(const char *id, const char *spec, const char *input)
{
    char *out = NULL;
    cr_assert_eq(wf(&out, "schedule", "add", id, "publish-draft", spec, input, NULL), 0);
    free(out);
}

Test(web_api, schedules_are_listed)
{
    add_schedule("nightly", "@daily", "{\"title\":\"Nightly\"}");
    json_t *doc = call("GET", "/api/schedules", 200);
    json_t *list = json_object_get(doc, "schedules");
    cr_assert_eq(json_array_size(list), 1);
    json_t *s = json_array_get(list, 0);
    cr_assert_str_eq(sfield(s, "id"), "nightly");
    cr_assert_str_eq(sfield(s, "workflow"), "publish-draft");
    cr_assert_str_eq(sfield(s, "spec"), "@daily");
    cr_assert_str_eq(sfield(json_object_get(s, "input"), "title"), "Nightly");
    cr_assert_gt(ifield(s, "nextAt"), ifield(s, "createdAt"));
    cr_assert_eq(ifield(s, "fires"), 0);
    json_decref(doc);
    doc = call("GET", "/api/schedules?workflow=slow", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "schedules")), 0);
    json_decref(doc);
    json_decref(call("GET", "/api/schedules?workflow=bad%20name", 400));
    json_decref(call("POST", "/api/schedules", 405));
}

static json_t *only_schedule(void)
{
    json_t *doc = call("GET", "/api/schedules", 200);
    json_t *s = json_incref(json_array_get(json_object_get(doc, "schedules"), 0));
    json_decref(doc);
    cr_assert_not_null(s);
    return s;
}

Test(web_api, schedules_pause_resume_and_trigger)
{
    add_schedule("hourly", "@hourly", "{\"title\":\"Now\"}");
    json_decref(call("POST", "/api/schedules/publish-draft/hourly/pause", 200));
    json_t *s = only_schedule();
    cr_assert(json_is_true(json_object_get(s, "paused")));
    json_decref(s);
    json_t *doc = call("POST", "/api/schedules/publish-draft/hourly/trigger", 200);
    char *run = strdup(sfield(doc, "runId"));
    json_decref(doc);
    cr_assert_not_null(strstr(run, "publish-draft:sched-hourly"), "%s", run);
    wait_state(run, "completed");
    s = only_schedule();
    cr_assert_eq(ifield(s, "fires"), 1);
    cr_assert_str_eq(sfield(s, "lastRun"), run);
    json_decref(s);
    json_decref(call("POST", "/api/schedules/publish-draft/hourly/resume", 200));
    s = only_schedule();
    cr_assert(json_is_false(json_object_get(s, "paused")));
    json_decref(s);

    json_decref(call("POST", "/api/schedules/publish-draft/nope/pause", 404));
    json_decref(call("POST", "/api/schedules/publish-draft/hourly/explode", 404));
    json_decref(call("POST", "/api/schedules/publish-draft/hourly", 404));
    json_decref(call("POST", "/api/schedules/bad%20name/hourly/pause", 400));
    json_decref(call("GET", "/api/schedules/publish-draft/hourly/pause", 405));
    free(run);
}

static int workflow_paused(const char *workflow)
{
    json_t *v = workflow_member(workflow, "paused");
    int paused = json_is_true(v);
    json_decref(v);
    return paused;
}

Test(web_api, a_workflow_pauses_and_resumes)
{
    cr_assert_eq(workflow_paused("publish-draft"), 0);
    json_t *doc = call("POST", "/api/workflows/publish-draft/pause", 200);
    cr_assert(json_is_true(json_object_get(doc, "paused")));
    json_decref(doc);
    cr_assert_eq(workflow_paused("publish-draft"), 1);
    cr_assert_eq(workflow_paused("slow"), 0, "only that workflow");
    char *id = start_run("publish-draft", "{}", NULL, NULL, NULL);
    json_decref(call("POST", "/api/workflows/publish-draft/resume", 200));
    cr_assert_eq(workflow_paused("publish-draft"), 0);
    wait_state(id, "completed");
    json_decref(call("GET", "/api/workflows/publish-draft/pause", 405));
    json_decref(call("POST", "/api/workflows/publish-draft/explode", 404));
    json_decref(call("POST", "/api/workflows/bad%20name/pause", 400));
    free(id);
}

static long long sum(json_t *a)
{
    long long s = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) s += json_integer_value(v);
    return s;
}

Test(web_api, a_workflows_history_per_hour_and_day)
{
    char *id = start_run("publish-draft", "{}", "--wait", NULL, NULL);
    json_t *doc = call("GET", "/api/workflows/publish-draft/history", 200);
    cr_assert_str_eq(sfield(doc, "range"), "1h");
    cr_assert_eq(ifield(doc, "stepMs"), 60000);
    cr_assert_eq(json_array_size(json_object_get(doc, "completed")), 60);
    cr_assert_eq(sum(json_object_get(doc, "started")), 1);
    cr_assert_eq(sum(json_object_get(doc, "completed")), 1);
    cr_assert_eq(sum(json_object_get(doc, "failed")), 0);
    cr_assert_gt(ifield(doc, "from"), 0);
    json_decref(doc);
    doc = call("GET", "/api/workflows/publish-draft/history?range=1d", 200);
    cr_assert_eq(ifield(doc, "stepMs"), 15 * 60000);
    cr_assert_eq(json_array_size(json_object_get(doc, "completed")), 96);
    cr_assert_eq(sum(json_object_get(doc, "completed")), 1);
    json_decref(doc);
    json_decref(call("GET", "/api/workflows/publish-draft/history?range=1y", 400));
    json_decref(call("POST", "/api/workflows/publish-draft/history", 405));
    free(id);
}

/* A stop with a reason: the run's error, and its history, which records what happened. */
Test(web_api, a_stop_with_a_reason_and_the_runs_history)
{
    char *id = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    act_state(id, "pause", "paused");
    act_state(id, "resume", "waiting");
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s/stop?reason=deploy%%20rollback", id);
    json_decref(call("POST", path, 200));
    snprintf(path, sizeof path, "/api/runs/%s", id);
    json_t *doc = call("GET", path, 200);
    cr_assert_str_eq(sfield(doc, "state"), "cancelled");
    cr_assert_not_null(strstr(sfield(doc, "error"), "deploy rollback"), "%s", sfield(doc, "error"));
    json_t *events = json_object_get(doc, "events"), *e;
    size_t i;
    const char *want[] = {"enqueued", "paused", "resumed", "stopped"};
    size_t next = 0;
    json_array_foreach(events, i, e)
    {
        if (next < 4 && strcmp(sfield(e, "kind"), want[next]) == 0) {
            if (next == 3)
                cr_assert_not_null(strstr(sfield(e, "detail"), "deploy rollback"), "%s",
                                   sfield(e, "detail"));
            cr_assert_gt(ifield(e, "at"), 0);
            next++;
        }
    }
    cr_assert_eq(next, 4, "enqueued, paused, resumed, stopped in order (%zu of them found)",
                 json_array_size(events));
    json_decref(doc);
    char *long_reason = malloc(300);
    memset(long_reason, 'x', 299);
    long_reason[299] = '\0';
    char long_path[600];
    snprintf(long_path, sizeof long_path, "/api/runs/%s/stop?reason=%s", id, long_reason);
    json_decref(call("POST", long_path, 400));
    free(long_reason);
    free(id);
}

static int one_dead_letter(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(env.rc, "LLEN wf:{publish-draft}:dead") == 1;
}

Test(web_api, dead_letters_of_a_workflow)
{
    json_t *doc = call("GET", "/api/dead?workflow=publish-draft", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "deadLetters")), 0);
    json_decref(doc);
    freeReplyObject(wf_test_command(env.rc, "XADD wf:{publish-draft}:queue * x no-record-here"));
    cr_assert(wf_test_wait(one_dead_letter, NULL, 10000), "the worker moves the entry aside");
    doc = call("GET", "/api/dead?workflow=publish-draft&limit=10", 200);
    json_t *list = json_object_get(doc, "deadLetters");
    cr_assert_eq(json_array_size(list), 1);
    json_t *d = json_array_get(list, 0);
    cr_assert_not_null(strstr(sfield(d, "reason"), "no field 'r'"), "%s", sfield(d, "reason"));
    cr_assert(json_is_null(json_object_get(d, "runId")));
    cr_assert_gt(ifield(d, "at"), 0);
    cr_assert_gt(strlen(sfield(d, "entry")), 0);
    json_decref(doc);
    json_t *dead = workflow_member("publish-draft", "dead");
    cr_assert_eq(json_integer_value(dead), 1, "the workflow's stats count it");
    json_decref(dead);
    json_decref(call("GET", "/api/dead", 400));
    json_decref(call("GET", "/api/dead?workflow=publish-draft&limit=0", 400));
    json_decref(call("GET", "/api/dead?workflow=bad%20name", 400));
    json_decref(call("POST", "/api/dead?workflow=publish-draft", 405));
}
