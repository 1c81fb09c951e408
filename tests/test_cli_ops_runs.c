/* test_cli_ops_runs.c - the `wf` verbs that act on one run, against a real Redis and a real
 * wf-worker (cli_ops_env.h): pause and resume, restart and retry against runs in every state,
 * status and steps with the waiting reason and the timeline. JSON outputs are parsed with jansson;
 * exit codes are those of `wf --help`. */
#include <criterion/criterion.h>

#include "cli_ops_env.h"
#include "wf_internal.h"

TestSuite(cli_ops, .init = cli_ops_setup, .fini = cli_ops_teardown, .timeout = 120);

/* Runs `wf VERB ID --json` and checks the exit code and, on 0, the state printed. */
static void expect(const char *verb, const char *id, int code, const char *state)
{
    char *out;
    int rc = wf(&out, verb, id, "--json", NULL);
    cr_assert_eq(rc, code, "wf %s %s: exit %d, want %d (%s)", verb, id, rc, code, out);
    if (code == 0) {
        json_t *doc = parse(out);
        cr_assert_str_eq(sfield(doc, "state"), state, "after %s", verb);
        cr_assert_str_eq(sfield(doc, "id"), id);
        json_decref(doc);
    } else {
        cr_assert_str_eq(out, "", "nothing on stdout on failure");
        free(out);
    }
}

/* ---- pause / resume ------------------------------------------------------------------------- */

Test(cli_ops, pause_and_resume_in_every_state)
{
    /* waiting -> paused -> waiting (its timer is still ahead) */
    char *waiting = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    expect("pause", waiting, 0, "paused");
    expect("pause", waiting, 8, NULL);
    expect("resume", waiting, 0, "waiting");
    expect("resume", waiting, 8, NULL);

    /* queued -> paused -> queued */
    char *queued = queued_run();
    expect("pause", queued, 0, "paused");
    expect("resume", queued, 0, "queued");

    /* running -> paused (pausedFrom running) -> queued -> runs to the end */
    char *running = start_run("slow", "3000", NULL, NULL, NULL);
    wait_state(running, "running");
    expect("pause", running, 0, "paused");
    char *out;
    cr_assert_eq(wf(&out, "status", running, NULL), 0);
    json_t *doc = parse(out);
    cr_assert_str_eq(sfield(doc, "pausedFrom"), "running");
    json_decref(doc);
    cr_assert_eq(wf(&out, "resume", running, "--json", NULL), 0);
    doc = parse(out);
    const char *now = sfield(doc, "state"); /* the worker may claim it at once */
    cr_assert(strcmp(now, "queued") == 0 || strcmp(now, "running") == 0, "resumed to %s", now);
    json_decref(doc);
    wait_state(running, "completed");

    /* final runs: exit 5 */
    expect("pause", running, 5, NULL);
    expect("resume", running, 5, NULL);

    /* human output */
    cr_assert_eq(wf(&out, "pause", waiting, NULL), 0);
    cr_assert_not_null(strstr(out, ": paused, now paused"), "%s", out);
    free(out);

    /* unknown and malformed ids */
    expect("pause", "publish-draft:nope", 2, NULL);
    expect("resume", "not an id", 2, NULL);
    free(waiting);
    free(queued);
    free(running);
}

/* ---- restart / retry ------------------------------------------------------------------------ */

Test(cli_ops, retry_finished_runs_refuse_others)
{
    char *failed = start_run("fatal", "{}", "--wait", NULL, NULL);
    wait_state(failed, "failed");
    char *out;
    cr_assert_eq(wf(&out, "retry", failed, "--json", NULL), 0);
    json_t *doc = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "attempt")), 2);
    json_decref(doc);
    wait_state(failed, "failed"); /* fatal fails every attempt */

    char *terminated = start_run("timeout", "{}", "--wait", NULL, NULL);
    wait_state(terminated, "terminated");
    cr_assert_eq(wf(&out, "retry", terminated, "--json", NULL), 0);
    doc = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "attempt")), 2);
    json_decref(doc);
    wait_state(terminated, "terminated");

    char *cancelled = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    cr_assert_eq(wf(&out, "stop", cancelled, NULL), 0);
    free(out);
    cr_assert_eq(wf(&out, "retry", cancelled, NULL), 0);
    cr_assert_not_null(strstr(out, "retried, now"), "%s", out);
    cr_assert_not_null(strstr(out, "attempt 2"), "%s", out);
    free(out);
    wait_state(cancelled, "completed");

    /* completed, waiting, queued: refused with 8 and a message naming the state */
    expect("retry", cancelled, 8, NULL);
    char *waiting = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    expect("retry", waiting, 8, NULL);
    char *queued = queued_run();
    expect("retry", queued, 8, NULL);
    cr_assert_str_eq(state_of(waiting), "waiting", "a refused retry changes nothing");
    expect("retry", "publish-draft:nope", 2, NULL);
    free(failed);
    free(terminated);
    free(cancelled);
    free(waiting);
    free(queued);
}

Test(cli_ops, restart_keeps_or_clears_steps)
{
    char *id = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    put_step(id, "fetch", "run", "done", 1000, 2000, NULL, "{\"n\":1}");
    char *out;
    cr_assert_eq(wf(&out, "restart", id, "--json", NULL), 0);
    json_t *doc = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "attempt")), 2);
    json_decref(doc);
    wait_state(id, "completed");
    cr_assert_eq(steps_exist(id), 1, "restart keeps the steps");
    cr_assert_eq(wf(&out, "restart", id, "--clear-steps", NULL), 0);
    cr_assert_not_null(strstr(out, "restarted, now"), "%s", out);
    cr_assert_not_null(strstr(out, "attempt 3"), "%s", out);
    free(out);
    cr_assert_eq(steps_exist(id), 0, "--clear-steps deletes them");
    wait_state(id, "completed");
    cr_assert_eq(wf(&out, "restart", "publish-draft:nope", NULL), 2);
    free(out);
    free(id);
}

/* ---- status / steps ------------------------------------------------------------------------- */

Test(cli_ops, status_shows_steps_waiting_reason_and_timeline)
{
    char *id = start_run("publish-draft", "{\"title\":\"T\"}", "--delay", "600000", NULL);
    long long now = redis_now();
    put_step(id, "b-second", "sleep", "waiting", now - 500, 0, NULL, NULL);
    put_step(id, "a-first", "run", "failed", now - 2000, now - 1500, "boom", "[1,2]");
    put_step(id, "c-event", "event", "done", now - 400, now - 300, NULL, "{\"ok\":true}");
    char wfname[WF__NAME_MAX + 1];
    wf__runid_parse(id, wfname, NULL);
    char *key = wf__key_steps("wf", wfname, id);
    freeReplyObject(wf_test_command(env.rc, "HSET %s zz-broken notmsgpack", key));
    free(key);

    char *out;
    cr_assert_eq(wf(&out, "status", id, NULL), 0);
    json_t *doc = parse(out);
    cr_assert_str_eq(sfield(doc, "state"), "waiting");
    cr_assert_str_eq(sfield(doc, "waitReason"), "delayed start");
    cr_assert_gt(json_integer_value(json_object_get(doc, "wakeAt")), now);
    cr_assert_str_eq(sfield(json_object_get(doc, "input"), "title"), "T");
    json_t *steps = json_object_get(doc, "steps");
    cr_assert_eq(json_array_size(steps), 4);
    json_t *s0 = json_array_get(steps, 0);
    cr_assert_str_eq(sfield(s0, "name"), "a-first", "ordered by start time");
    cr_assert_str_eq(sfield(s0, "kind"), "run");
    cr_assert_str_eq(sfield(s0, "status"), "failed");
    cr_assert_str_eq(sfield(s0, "error"), "boom");
    cr_assert_eq(json_integer_value(json_object_get(s0, "durationMs")), 500);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(s0, "result"), 1)), 2);
    cr_assert_str_eq(sfield(json_array_get(steps, 1), "status"), "waiting");
    cr_assert(json_is_null(json_object_get(json_array_get(steps, 1), "finishedAt")));
    cr_assert_str_eq(sfield(json_array_get(steps, 2), "event"), "approved");
    cr_assert_str_eq(sfield(json_array_get(steps, 3), "status"), "unreadable");
    json_t *timeline = json_object_get(doc, "timeline");
    cr_assert_geq(json_array_size(timeline), 5);
    for (size_t i = 1; i < json_array_size(timeline); i++)
        cr_assert_geq(json_integer_value(json_object_get(json_array_get(timeline, i), "at")),
                      json_integer_value(json_object_get(json_array_get(timeline, i - 1), "at")),
                      "timeline in time order");
    json_decref(doc);

    cr_assert_eq(wf(&out, "steps", id, "--json", NULL), 0);
    doc = parse(out);
    cr_assert_eq(json_array_size(doc), 4);
    json_decref(doc);
    cr_assert_eq(wf(&out, "steps", id, NULL), 0);
    cr_assert_eq(strncmp(out, "STEP ", 5), 0, "%s", out);
    cr_assert_not_null(strstr(out, "a-first"));
    cr_assert_not_null(strstr(out, "boom"));
    free(out);
    cr_assert_eq(wf(&out, "status", id, "--text", NULL), 0);
    cr_assert_not_null(strstr(out, "waiting (delayed start), due "), "%s", out);
    cr_assert_not_null(strstr(out, "c-event"), "%s", out);
    free(out);

    /* A running run names its worker; a failed one its error; no steps is said so. */
    char *running = start_run("slow", "2000", NULL, NULL, NULL);
    wait_state(running, "running");
    cr_assert_eq(wf(&out, "status", running, "--text", NULL), 0);
    cr_assert_not_null(strstr(out, "State      running"), "%s", out);
    cr_assert_null(strstr(out, "Worker     -"), "%s", out);
    cr_assert_not_null(strstr(out, "no steps recorded"), "%s", out);
    free(out);
    char *failed = start_run("fatal", "{}", "--wait", NULL, NULL);
    cr_assert_eq(wf(&out, "status", failed, "--text", NULL), 0);
    cr_assert_not_null(strstr(out, "card declined"), "%s", out);
    free(out);
    cr_assert_eq(wf(&out, "steps", "publish-draft:nope", NULL), 2);
    free(out);
    cr_assert_eq(wf(&out, "status", id, "--text", "--json", NULL), 1);
    free(out);
    free(id);
    free(running);
    free(failed);
}

/* The event of the timeline entry that has detail starting with `prefix`, or NULL. */
static const char *timeline_event(json_t *doc, const char *prefix)
{
    json_t *t = json_object_get(doc, "timeline");
    for (size_t i = 0; i < json_array_size(t); i++) {
        json_t *e = json_array_get(t, i);
        const char *d = json_string_value(json_object_get(e, "detail"));
        if (d && strncmp(d, prefix, strlen(prefix)) == 0) return sfield(e, "event");
    }
    return NULL;
}

Test(cli_ops, timeline_says_resumed_when_the_start_came_after_earlier_steps)
{
    /* A run keeps only its latest start. After a durable wait that start is later than the steps
     * recorded before the wait: the timeline calls it "resumed", not "started". */
    char *id = start_run("publish-draft", "{\"title\":\"T\"}", "--delay", "600000", NULL);
    long long now = redis_now();
    char wfname[WF__NAME_MAX + 1];
    wf__runid_parse(id, wfname, NULL);
    char *key = wf__key_run("wf", wfname, id);
    freeReplyObject(wf_test_command(env.rc, "HSET %s started_at %lld", key, now - 1000));
    put_step(id, "later", "run", "done", now - 500, now - 400, NULL, "1");
    char *out;
    cr_assert_eq(wf(&out, "status", id, NULL), 0);
    json_t *doc = parse(out);
    cr_assert_str_eq(timeline_event(doc, "attempt 1"), "started", "no step before the start");
    json_decref(doc);

    put_step(id, "before", "sleep", "done", now - 3000, now - 1500, NULL, NULL);
    cr_assert_eq(wf(&out, "status", id, NULL), 0);
    doc = parse(out);
    cr_assert_str_eq(timeline_event(doc, "attempt 1"), "resumed", "a step started before it");
    json_decref(doc);
    free(key);
    free(id);
}
