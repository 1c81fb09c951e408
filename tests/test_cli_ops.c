/* test_cli_ops.c - the operator commands of the built `wf` against a real Redis and a real
 * wf-worker: pause, resume, restart, retry against runs in every state; status with steps;
 * steps; list with time windows and paging; stats; workers; purge; run --wait's progress. JSON
 * outputs are parsed with jansson; exit codes are those of `wf --help`. */
#include <criterion/criterion.h>

#include "ops_env.h"
#include "wf_internal.h"

static void setup(void)
{
    ops_env_start();
}

static void teardown(void)
{
    ops_env_stop();
}

TestSuite(cli_ops, .init = setup, .fini = teardown, .timeout = 120);

/* A workflow that is registered but has no worker: its runs stay queued. */
static char *queued_run(void)
{
    redisReply *r = redisCommand(env.rc, "HSET wf:workflows idle {}");
    freeReplyObject(r);
    return start_run("idle", NULL, NULL, NULL, NULL);
}

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

/* Writes a step record into run `id`'s steps hash, as the worker's step engine would. */
static void put_step(const char *id, const char *name, const char *kind, const char *status,
                     long long t0, long long t1, const char *error, const char *result_json)
{
    wf__steprec rec = {0};
    snprintf(rec.kind, sizeof rec.kind, "%s", kind);
    snprintf(rec.status, sizeof rec.status, "%s", status);
    rec.attempts = 1;
    rec.t0 = t0;
    rec.t1 = t1;
    rec.error = error;
    msgpack_sbuffer result;
    msgpack_sbuffer_init(&result);
    if (result_json) {
        cr_assert_eq(wf_json_to_msgpack(result_json, strlen(result_json), NULL, &result, NULL),
                     WF_OK);
        rec.result = result.data;
        rec.result_len = result.size;
    }
    if (strcmp(kind, "event") == 0) snprintf(rec.event, sizeof rec.event, "approved");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(wf__steprec_encode(&rec, &sb), WF_OK);
    char wfname[WF__NAME_MAX + 1];
    cr_assert_eq(wf__runid_parse(id, wfname, NULL), WF_OK);
    char *key = wf__key_steps("wf", wfname, id);
    redisReply *r = redisCommand(env.rc, "HSET %s %s %b", key, name, sb.data, sb.size);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    free(key);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&result);
}

static long long steps_exist(const char *id)
{
    char wfname[WF__NAME_MAX + 1];
    wf__runid_parse(id, wfname, NULL);
    char *key = wf__key_steps("wf", wfname, id);
    long long n = wf_test_cmd_int(env.rc, "EXISTS %s", key);
    free(key);
    return n;
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
    freeReplyObject(redisCommand(env.rc, "HSET %s zz-broken notmsgpack", key));
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
    freeReplyObject(redisCommand(env.rc, "HSET %s started_at %lld", key, now - 1000));
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

/* ---- list ----------------------------------------------------------------------------------- */

static int clock_moved(void *arg)
{
    return redis_now() > *(long long *)arg + 1;
}

static json_t *list(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5,
                    const char *a6)
{
    char *out;
    int rc =
        wf(&out, "list", "--json", "--workflow", "publish-draft", a1, a2, a3, a4, a5, a6, NULL);
    cr_assert_eq(rc, 0, "list: exit %d", rc);
    json_t *doc = parse(out);
    cr_assert(json_is_array(doc));
    return doc;
}

Test(cli_ops, list_time_window_and_paging)
{
    char *ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = start_run("publish-draft", "--wait", NULL, NULL, NULL);
        /* Distinct ms scores, so the order is deterministic: wait for Redis's clock to move. */
        long long t = redis_now();
        cr_assert(wf_test_wait(clock_moved, &t, 1000));
    }
    json_t *all = list(NULL, NULL, NULL, NULL, NULL, NULL);
    cr_assert_eq(json_array_size(all), 5);
    for (int i = 0; i < 5; i++)
        cr_assert_str_eq(sfield(json_array_get(all, (size_t)i), "id"), ids[4 - i], "newest first");
    json_t *p1 = list("--limit", "2", NULL, NULL, NULL, NULL);
    json_t *p2 = list("--limit", "2", "--offset", "2", NULL, NULL);
    json_t *p3 = list("--limit", "2", "--offset", "4", NULL, NULL);
    json_t *p4 = list("--limit", "2", "--offset", "6", NULL, NULL);
    cr_assert_eq(json_array_size(p1), 2);
    cr_assert_eq(json_array_size(p2), 2);
    cr_assert_eq(json_array_size(p3), 1);
    cr_assert_eq(json_array_size(p4), 0);
    cr_assert_str_eq(sfield(json_array_get(p2, 0), "id"), ids[2]);
    cr_assert_str_eq(sfield(json_array_get(p3, 0), "id"), ids[0]);

    char future[32], edge[32];
    snprintf(future, sizeof future, "%lld", redis_now() + 3600000);
    json_t *none = list("--since", future, NULL, NULL, NULL, NULL);
    cr_assert_eq(json_array_size(none), 0);
    json_t *recent = list("--since", "10m", "--state", "completed", NULL, NULL);
    cr_assert_eq(json_array_size(recent), 5);
    json_t *old = list("--until", "1h", NULL, NULL, NULL, NULL);
    cr_assert_eq(json_array_size(old), 0);
    /* until the middle run's last change: it and the older ones */
    snprintf(edge, sizeof edge, "%lld",
             (long long)json_integer_value(json_object_get(json_array_get(all, 2), "updatedAt")));
    json_t *upto = list("--until", edge, NULL, NULL, NULL, NULL);
    cr_assert_geq(json_array_size(upto), 3);
    cr_assert_str_eq(sfield(json_array_get(upto, 0), "id"), ids[2]);

    char *out;
    cr_assert_eq(wf(&out, "list", "--since", "yesterday", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "list", "--since", "1m", "--until", "2h", NULL), 1, "since > until");
    free(out);
    cr_assert_eq(wf(&out, "list", "--offset", "-1", NULL), 1);
    free(out);
    json_t *docs[] = {all, p1, p2, p3, p4, none, recent, old, upto};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) json_decref(docs[i]);
    for (int i = 0; i < 5; i++) free(ids[i]);
}

/* ---- stats ---------------------------------------------------------------------------------- */

static int oldest_queued_grew(void *arg)
{
    (void)arg;
    char *out;
    if (wf(&out, "stats", "--json", "--workflow", "idle", NULL) != 0) return 0;
    json_t *doc = parse(out);
    long long ms = json_integer_value(json_object_get(json_array_get(doc, 0), "oldestQueuedMs"));
    json_decref(doc);
    return ms >= 200;
}

Test(cli_ops, stats_counts_match_the_runs)
{
    for (int i = 0; i < 3; i++) free(start_run("publish-draft", "--wait", NULL, NULL, NULL));
    free(start_run("publish-draft", "--delay", "600000", NULL, NULL));
    char *paused = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    char *out;
    cr_assert_eq(wf(&out, "pause", paused, NULL), 0);
    free(out);
    free(start_run("fatal", "{}", "--wait", NULL, NULL));
    char *queued = queued_run();

    cr_assert_eq(wf(&out, "stats", "--json", NULL), 0);
    json_t *doc = parse(out);
    int seen = 0;
    size_t i;
    json_t *w;
    json_array_foreach(doc, i, w)
    {
        json_t *c = json_object_get(w, "counts");
        const char *name = sfield(w, "workflow");
        if (strcmp(name, "publish-draft") == 0) {
            seen |= 1;
            cr_assert_eq(json_integer_value(json_object_get(c, "completed")), 3);
            cr_assert_eq(json_integer_value(json_object_get(c, "waiting")), 1);
            cr_assert_eq(json_integer_value(json_object_get(c, "paused")), 1);
            cr_assert_eq(json_integer_value(json_object_get(c, "queued")), 0);
            cr_assert_eq(json_integer_value(json_object_get(w, "total")), 5);
            cr_assert_eq(json_integer_value(json_object_get(w, "completedLastMinute")), 3);
            cr_assert_float_eq(json_number_value(json_object_get(w, "runsPerSecond")), 0.05, 1e-9);
            cr_assert_eq(json_integer_value(json_object_get(w, "oldestQueuedMs")), 0);
        } else if (strcmp(name, "fatal") == 0) {
            seen |= 2;
            cr_assert_eq(json_integer_value(json_object_get(c, "failed")), 1);
        } else if (strcmp(name, "idle") == 0) {
            seen |= 4;
            cr_assert_eq(json_integer_value(json_object_get(c, "queued")), 1);
        }
    }
    cr_assert_eq(seen, 7, "every workflow listed");
    json_decref(doc);
    cr_assert(wf_test_wait(oldest_queued_grew, NULL, 5000), "oldest queued age does not grow");

    cr_assert_eq(wf(&out, "stats", NULL), 0);
    cr_assert_eq(strncmp(out, "WORKFLOW ", 9), 0, "%s", out);
    cr_assert_not_null(strstr(out, "publish-draft"));
    cr_assert_not_null(strstr(out, "OLDEST QUEUED"));
    free(out);
    cr_assert_eq(wf(&out, "stats", "--workflow", "bad name!", NULL), 6);
    free(out);
    free(paused);
    free(queued);
}

/* ---- workers -------------------------------------------------------------------------------- */

/* Keeps the entries this test wrote: the environment's real worker registers itself in
 * P:workers too (at start and every ~5 s, worker/presence.c). */
static json_t *fake_workers(json_t *doc)
{
    for (size_t i = json_array_size(doc); i-- > 0;) {
        const char *nm = json_string_value(json_object_get(json_array_get(doc, i), "name"));
        if (!nm ||
            (strcmp(nm, "alpha:101:aa") && strcmp(nm, "beta:202:bb") && strcmp(nm, "gamma:303:cc")))
            json_array_remove(doc, i);
    }
    return doc;
}

Test(cli_ops, workers_lists_the_registry_and_flags_stale_ones)
{
    long long now = redis_now();
    char live[256], stale[256];
    snprintf(live, sizeof live,
             "{\"host\":\"alpha\",\"pid\":101,\"started_at\":%lld,\"last_seen\":%lld,"
             "\"concurrency\":8,\"busy\":3,\"workflows\":[\"publish-draft\",\"slow\"]}",
             now - 60000, now - 2000);
    snprintf(stale, sizeof stale,
             "{\"host\":\"beta\",\"pid\":202,\"started_at\":%lld,\"last_seen\":%lld,"
             "\"concurrency\":4,\"busy\":0,\"workflows\":[]}",
             now - 600000, now - 120000);
    /* Cleared first: the real worker may be registering itself there too. */
    freeReplyObject(redisCommand(env.rc, "DEL wf:workers"));
    freeReplyObject(redisCommand(env.rc,
                                 "HSET wf:workers alpha:101:aa %s beta:202:bb %s "
                                 "gamma:303:cc not-json",
                                 live, stale));
    char *out;
    cr_assert_eq(wf(&out, "workers", "--json", NULL), 0);
    json_t *doc = fake_workers(parse(out));
    cr_assert_eq(json_array_size(doc), 3);
    json_t *a = json_array_get(doc, 0), *b = json_array_get(doc, 1), *g = json_array_get(doc, 2);
    cr_assert_str_eq(sfield(a, "name"), "alpha:101:aa");
    cr_assert_str_eq(sfield(a, "host"), "alpha");
    cr_assert_eq(json_integer_value(json_object_get(a, "pid")), 101);
    cr_assert_eq(json_integer_value(json_object_get(a, "busy")), 3);
    cr_assert_eq(json_integer_value(json_object_get(a, "concurrency")), 8);
    cr_assert(json_is_false(json_object_get(a, "stale")));
    cr_assert_geq(json_integer_value(json_object_get(a, "ageMs")), 2000);
    cr_assert_eq(json_array_size(json_object_get(a, "workflows")), 2);
    cr_assert(json_is_true(json_object_get(b, "stale")));
    cr_assert(json_is_true(json_object_get(g, "stale")), "unreadable entries count as stale");
    cr_assert(json_is_null(json_object_get(g, "host")));
    json_decref(doc);

    cr_assert_eq(wf(&out, "workers", "--live", "--json", NULL), 0);
    doc = fake_workers(parse(out));
    cr_assert_eq(json_array_size(doc), 1);
    json_decref(doc);
    cr_assert_eq(wf(&out, "workers", NULL), 0);
    cr_assert_not_null(strstr(out, "3/8"), "%s", out);
    cr_assert_not_null(strstr(out, "stale"), "%s", out);
    cr_assert_not_null(strstr(out, "publish-draft,slow"), "%s", out);
    free(out);
    freeReplyObject(redisCommand(env.rc, "DEL wf:workers"));
    cr_assert_eq(wf(&out, "workers", NULL), 0);
    /* "no workers", unless the real worker re-registered in between (one line, its own). */
    if (strcmp(out, "no workers\n") != 0)
        cr_assert(!strstr(out, "alpha:101") && !strstr(out, "stale"), "%s", out);
    free(out);
}

/* ---- purge ---------------------------------------------------------------------------------- */

/* Makes run `id` look as if its last state change was `age_ms` ago (hash and index agree). */
static void age_run(const char *id, const char *state, long long age_ms)
{
    char wfname[WF__NAME_MAX + 1];
    wf__runid_parse(id, wfname, NULL);
    char *key = wf__key_run("wf", wfname, id);
    long long then = redis_now() - age_ms;
    freeReplyObject(redisCommand(env.rc, "HSET %s updated_at %lld", key, then));
    freeReplyObject(redisCommand(env.rc, "ZADD wf:{%s}:state:%s %lld %s", wfname, state, then, id));
    free(key);
}

static long long run_exists(const char *id)
{
    char wfname[WF__NAME_MAX + 1];
    wf__runid_parse(id, wfname, NULL);
    char *key = wf__key_run("wf", wfname, id);
    long long n = wf_test_cmd_int(env.rc, "EXISTS %s", key);
    free(key);
    return n;
}

Test(cli_ops, purge_deletes_only_old_finished_runs)
{
    char *old_done = start_run("publish-draft", "--wait", NULL, NULL, NULL);
    put_step(old_done, "s", "run", "done", 1, 2, NULL, NULL);
    char *new_done = start_run("publish-draft", "--wait", NULL, NULL, NULL);
    char *old_failed = start_run("fatal", "{}", "--wait", NULL, NULL);
    char *old_cancelled = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    char *out;
    cr_assert_eq(wf(&out, "stop", old_cancelled, NULL), 0);
    free(out);
    char *old_waiting = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    age_run(old_done, "completed", 7200000);
    age_run(old_failed, "failed", 7200000);
    age_run(old_cancelled, "cancelled", 7200000);
    age_run(old_waiting, "waiting", 7200000);
    /* In the completed index with an old score, but its hash says it changed just now: the
     * script's own check must keep it. */
    char *lying = start_run("publish-draft", "--wait", NULL, NULL, NULL);
    freeReplyObject(redisCommand(env.rc, "ZADD wf:{publish-draft}:state:completed %lld %s",
                                 redis_now() - 7200000, lying));

    cr_assert_eq(wf(&out, "purge", "--older-than", "1h", "--dry-run", "--json", NULL), 0);
    json_t *doc = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "purged")), 4, "candidates by index");
    cr_assert(json_is_true(json_object_get(doc, "dryRun")));
    json_decref(doc);
    cr_assert_eq(run_exists(old_done), 1, "dry run deletes nothing");

    cr_assert_eq(wf(&out, "purge", "--older-than", "1h", "--state", "failed", "--json", NULL), 0);
    doc = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "purged")), 1);
    json_decref(doc);
    cr_assert_eq(run_exists(old_failed), 0);
    cr_assert_eq(run_exists(old_done), 1, "--state failed leaves completed runs");

    cr_assert_eq(wf(&out, "purge", "--older-than", "1h", "--workflow", "publish-draft", NULL), 0);
    cr_assert_str_eq(out, "purged 2 finished runs\n");
    free(out);
    cr_assert_eq(run_exists(old_done), 0);
    cr_assert_eq(steps_exist(old_done), 0, "its steps go too");
    cr_assert_eq(run_exists(old_cancelled), 0);
    char *score = wf_test_cmd_str(env.rc, "ZSCORE wf:{publish-draft}:state:completed %s", old_done);
    cr_assert_null(score, "and its index entry (score %s)", score);
    cr_assert_eq(run_exists(new_done), 1, "a new finished run stays");
    cr_assert_eq(run_exists(lying), 1, "the script re-checks the run's own time");
    cr_assert_eq(run_exists(old_waiting), 1, "a run that has not finished stays");
    cr_assert_str_eq(state_of(old_waiting), "waiting");

    cr_assert_eq(wf(&out, "purge", NULL), 1, "--older-than is required");
    free(out);
    cr_assert_eq(wf(&out, "purge", "--older-than", "1h", "--state", "waiting", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "purge", "--older-than", "soon", NULL), 1);
    free(out);
    char *ids[] = {old_done, new_done, old_failed, old_cancelled, old_waiting, lying};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) free(ids[i]);
}

/* ---- run --wait progress, help -------------------------------------------------------------- */

Test(cli_ops, run_wait_shows_progress_on_stderr)
{
    char *bin = wf_test_path("wf"), cmd[1024], *out;
    /* Piped: plain lines on stderr, the JSON alone on stdout. */
    snprintf(cmd, sizeof cmd, "%s --redis %s run slow 300 --wait 2>&1 >/dev/null", bin,
             env.redis.url);
    const char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(wf_test_run(sh, NULL, NULL, &out, 30000), 0);
    cr_assert_not_null(strstr(out, " running after "), "%s", out);
    cr_assert_not_null(strstr(out, " completed after "), "%s", out);
    cr_assert_null(strchr(out, '\r'), "no carriage returns when piped");
    free(out);
    /* On a terminal (script(1) gives it one): a line rewritten in place. */
    snprintf(cmd, sizeof cmd, "%s --redis %s run slow 600 --wait", bin, env.redis.url);
    const char *tty[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};
    cr_assert_eq(wf_test_run(tty, NULL, NULL, &out, 30000), 0);
    cr_assert_not_null(strstr(out, "\r\033[K"), "%s", out);
    cr_assert_not_null(strstr(out, "running"), "%s", out);
    cr_assert_not_null(strstr(out, "\"completed\""), "%s", out);
    free(out);
    free(bin);
}

Test(cli_ops, every_command_has_help_and_the_exit_codes_are_listed)
{
    static const char *const cmds[] = {"status", "steps", "pause", "resume",  "restart",
                                       "retry",  "list",  "stats", "workers", "purge",
                                       "web",    "stop",  "run",   "wait"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *out;
        cr_assert_eq(wf(&out, cmds[i], "--help", NULL), 0, "%s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "Usage: wf %s", cmds[i]);
        cr_assert_not_null(strstr(out, want), "%s", out);
        free(out);
    }
    char *out;
    cr_assert_eq(wf(&out, "--help", NULL), 0);
    cr_assert_not_null(strstr(out, "  8  the run's state does not allow it"), "%s", out);
    cr_assert_not_null(strstr(out, "  9  web: cannot listen"), "%s", out);
    cr_assert_not_null(strstr(out, "purge --older-than"), "%s", out);
    cr_assert_not_null(strstr(out, "  10 wait, status --follow: the run ended cancelled"), "%s",
                       out);
    cr_assert_not_null(strstr(out, "Durations ("), "%s", out);
    cr_assert_not_null(strstr(out, "--no-color"), "%s", out);
    free(out);
    cr_assert_eq(wf(&out, "pause", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "restart", "x:y", "--clear-everything", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "workers", "--bogus", NULL), 1);
    free(out);
}

/* ---- durations, --redis '' ------------------------------------------------------------------ */

/* Runs `/bin/sh -c CMD` where CMD is `fmt` formatted; "$WF" in it is the built wf with --redis.
 * Returns the exit code, *out the shell's stdout (caller frees). */
static int sh(char **out, const char *fmt, ...)
{
    char *bin = wf_test_path("wf"), cmd[2048], prefix[600];
    snprintf(prefix, sizeof prefix, "WF='%s --redis %s'; ", bin, env.redis.url);
    size_t n = strlen(prefix);
    memcpy(cmd, prefix, n + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - n, fmt, ap);
    va_end(ap);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    int rc = wf_test_run(argv, NULL, NULL, out, 30000);
    free(bin);
    return rc;
}

static json_int_t ifield(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

Test(cli_ops, one_duration_syntax_for_every_time_option)
{
    /* --delay: units, and a bare number is still milliseconds. */
    char *out;
    cr_assert_eq(wf(&out, "run", "publish-draft", "--delay", "10m", "--id", "d-10m", NULL), 0);
    json_t *doc = parse(out);
    json_t *st = json_object_get(doc, "status");
    json_int_t due = ifield(st, "wakeAt") - ifield(st, "createdAt");
    cr_assert(due >= 599000 && due <= 601000, "--delay 10m is due in %lld ms", (long long)due);
    json_decref(doc);
    cr_assert_eq(wf(&out, "run", "publish-draft", "--delay", "1h30m", "--json", NULL), 0);
    doc = parse(out);
    st = json_object_get(doc, "status");
    due = ifield(st, "wakeAt") - ifield(st, "createdAt");
    cr_assert(due >= 5399000 && due <= 5401000, "--delay 1h30m is due in %lld ms", (long long)due);
    json_decref(doc);
    cr_assert_eq(wf(&out, "run", "publish-draft", "--delay", "600000", NULL), 0);
    doc = parse(out);
    st = json_object_get(doc, "status");
    due = ifield(st, "wakeAt") - ifield(st, "createdAt");
    cr_assert(due >= 599000 && due <= 601000, "bare --delay 600000 is due in %lld ms",
              (long long)due);
    json_decref(doc);

    /* --timeout: units (and a bare number is still seconds: test_cli's --timeout 0.3). */
    long long t0 = redis_now();
    cr_assert_eq(wf(&out, "run", "slow", "20000", "--wait", "--timeout", "300ms", NULL), 7);
    cr_assert_lt(redis_now() - t0, 10000, "--timeout 300ms gave up in time");
    free(out);

    /* --older-than, --since/--until, limit --per and --debounce. */
    cr_assert_eq(wf(&out, "purge", "--older-than", "1h30m", "--dry-run", NULL), 0);
    free(out);
    cr_assert_eq(wf(&out, "list", "--since", "1h30m", "--until", "500ms", NULL), 0);
    free(out);
    cr_assert_eq(wf(&out, "limit", "publish-draft", "--rate", "5", "--per", "1m", "--debounce",
                    "1.5s", "--json", NULL),
                 0);
    doc = parse(out);
    cr_assert_eq(ifield(doc, "ratePerMs"), 60000);
    cr_assert_eq(ifield(doc, "debounceMs"), 1500);
    json_decref(doc);
    cr_assert_eq(
        wf(&out, "limit", "publish-draft", "--per", "250", "--debounce", "0", "--json", NULL), 0);
    doc = parse(out);
    cr_assert_eq(ifield(doc, "ratePerMs"), 250, "a bare --per is still milliseconds");
    cr_assert_eq(ifield(doc, "debounceMs"), 0);
    json_decref(doc);

    /* Anything else: exit 1 and one message that names the option and shows the syntax. */
    static const char *const bad[][2] = {
        {"run publish-draft --delay 10x", "--delay: '10x' is not a duration"},
        {"run publish-draft --wait --timeout 5mins", "--timeout: '5mins' is not a duration"},
        {"run publish-draft --delay -5s", "--delay: '-5s' is not a duration"},
        {"run publish-draft --delay 1h30", "--delay: '1h30' is not a duration"},
        {"purge --older-than 0x10", "--older-than: '0x10' is not a duration"},
        {"limit publish-draft --debounce soon", "--debounce: 'soon' is not a duration"},
        {"wait publish-draft:x --timeout 1y", "--timeout: '1y' is not a duration"},
        {"list --since 10x", "--since: '10x' is not a time"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(sh(&out, "$WF %s 2>&1", bad[i][0]), 1, "%s: %s", bad[i][0], out);
        cr_assert_not_null(strstr(out, bad[i][1]), "%s: %s", bad[i][0], out);
        if (strncmp(bad[i][0], "list", 4) != 0)
            cr_assert_not_null(strstr(out, "use e.g. 500ms, 10s, 10m, 7d"), "%s", out);
        free(out);
    }
    /* Nothing was started by the refused commands: three delayed runs and the slow one. */
    cr_assert_eq(wf(&out, "list", "--json", NULL), 0);
    doc = parse(out);
    cr_assert_eq(json_array_size(doc), 4);
    json_decref(doc);
}

Test(cli_ops, an_empty_redis_url_is_a_usage_error_not_the_default)
{
    char *bin = wf_test_path("wf"), *out;
    /* $WF_REDIS_URL names the test's Redis: an empty --redis must not fall back to it. */
    const char *before[] = {bin, "--redis", "", "run", "publish-draft", "--id", "empty", NULL};
    const char *after[] = {bin, "run", "publish-draft", "--id", "empty", "--redis=", NULL};
    const char *envp[] = {env.redis_env, NULL};
    cr_assert_eq(wf_test_run(before, envp, NULL, &out, 30000), 1, "%s", out);
    cr_assert_str_eq(out, "");
    free(out);
    cr_assert_eq(wf_test_run(after, envp, NULL, &out, 30000), 1, "%s", out);
    free(out);
    cr_assert_str_eq(state_of("publish-draft:empty"), "", "no run was started");
    free(bin);
    cr_assert_eq(sh(&out, "$WF status x:y --redis '' 2>&1"), 1);
    cr_assert_not_null(strstr(out, "--redis: the URL is empty"), "%s", out);
    free(out);
}

/* ---- wait, status --follow ------------------------------------------------------------------ */

Test(cli_ops, wait_blocks_until_final_and_the_exit_code_says_how_it_ended)
{
    char *out, want[256];
    char *done = start_run("slow", "300", NULL, NULL, NULL);
    cr_assert_eq(wf(&out, "wait", done, NULL), 0, "%s", out);
    snprintf(want, sizeof want, "%s: completed\n", done);
    cr_assert_str_eq(out, want);
    free(out);
    cr_assert_str_eq(state_of(done), "completed");

    char *failed = start_run("fatal", "{}", NULL, NULL, NULL);
    cr_assert_eq(wf(&out, "wait", failed, "--timeout", "30s", NULL), 4, "%s", out);
    cr_assert_not_null(strstr(out, ": failed: card declined"), "%s", out);
    free(out);

    char *terminated = start_run("timeout", "{}", NULL, NULL, NULL);
    cr_assert_eq(wf(&out, "wait", terminated, "--json", NULL), 11, "%s", out);
    json_t *doc = parse(out);
    cr_assert_str_eq(sfield(doc, "state"), "terminated");
    cr_assert_str_eq(sfield(doc, "id"), terminated);
    json_decref(doc);

    /* Not final within --timeout: 7, the last state printed, the run goes on. */
    char *waiting = start_run("publish-draft", "--delay", "10m", NULL, NULL);
    long long t0 = redis_now();
    cr_assert_eq(wf(&out, "wait", waiting, "--timeout", "300ms", NULL), 7, "%s", out);
    cr_assert_lt(redis_now() - t0, 10000);
    snprintf(want, sizeof want, "%s: waiting\n", waiting);
    cr_assert_str_eq(out, want);
    free(out);

    /* Cancelled while waiting: 10. */
    char *bin = wf_test_path("wf"), log[400];
    snprintf(log, sizeof log, "%s/wait.log", env.redis.dir);
    const char *argv[] = {bin, "--redis", env.redis.url, "wait", waiting, NULL};
    pid_t pid = wf_test_spawn(argv, NULL, log);
    free(bin);
    cr_assert_gt(pid, 0);
    cr_assert_eq(wf(&out, "stop", waiting, NULL), 0);
    free(out);
    int status = wf_test_kill(pid, 0, 15000); /* signal 0: just reap it, within 15 s */
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 10, "wf wait exited %#x: %s", status,
              wf_test_slurp(log));

    cr_assert_eq(wf(&out, "wait", "slow:01AAAAAAAAAAAAAAAAAAAAAAAA", NULL), 2);
    free(out);
    cr_assert_eq(wf(&out, "wait", NULL), 1);
    free(out);
    char *ids[] = {done, failed, terminated, waiting};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) free(ids[i]);
}

Test(cli_ops, status_follow_prints_each_change_until_final)
{
    char *id = start_run("slow", "800", NULL, NULL, NULL);
    char *out;
    /* Piped: one compact JSON document per line, each different from the one before. */
    cr_assert_eq(wf(&out, "status", id, "--follow", "--timeout", "30s", NULL), 0, "%s", out);
    size_t lines = 0;
    char *save = NULL, *prev = NULL;
    const char *first = NULL, *last = NULL;
    json_t *docs[64];
    for (char *line = strtok_r(out, "\n", &save); line && lines < 64;
         line = strtok_r(NULL, "\n", &save)) {
        cr_assert(prev == NULL || strcmp(prev, line) != 0, "a line repeats: %s", line);
        docs[lines] = parse(strdup(line));
        last = sfield(docs[lines], "state");
        if (!first) first = last;
        prev = line;
        lines++;
    }
    cr_assert_geq(lines, 2, "the run changed at least once while followed");
    cr_assert(strcmp(first, "queued") == 0 || strcmp(first, "running") == 0, "first %s", first);
    cr_assert_str_eq(last, "completed");
    cr_assert_not_null(json_object_get(docs[lines - 1], "timeline"));
    for (size_t i = 0; i < lines; i++) json_decref(docs[i]);
    free(out);

    /* --text: the timeline as it grows, then the whole view; the exit code of `wf wait`. */
    char *failed = start_run("fatal", "{}", NULL, NULL, NULL);
    cr_assert_eq(wf(&out, "status", failed, "--follow", "--text", NULL), 4, "%s", out);
    cr_assert_not_null(strstr(out, "Z  created\n"), "%s", out);
    cr_assert_not_null(strstr(out, "  failed        card declined"), "%s", out);
    cr_assert_not_null(strstr(out, "\nState      failed\n"), "%s", out);
    free(out);

    /* --timeout without --follow is a usage error; with it, 7. */
    cr_assert_eq(wf(&out, "status", id, "--timeout", "1s", NULL), 1);
    free(out);
    char *waiting = start_run("publish-draft", "--delay", "10m", NULL, NULL);
    cr_assert_eq(wf(&out, "status", waiting, "--follow", "--timeout", "200ms", NULL), 7);
    json_t *doc = parse(out);
    cr_assert_str_eq(sfield(doc, "state"), "waiting");
    json_decref(doc);
    free(id);
    free(failed);
    free(waiting);
}

/* ---- stop / retry by selection -------------------------------------------------------------- */

/* Runs `wf ARGS` (a string for the shell) on a terminal (script(1)) with `input` typed in.
 * Returns the exit code, *out the terminal's text (what wf printed and the input echoed). */
static int on_tty(char **out, const char *input, const char *args)
{
    char *bin = wf_test_path("wf"), cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --redis %s %s", bin, env.redis.url, args);
    const char *argv[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};
    int rc = wf_test_run(argv, NULL, input, out, 30000);
    free(bin);
    return rc;
}

static int count_in(const char *const *ids, size_t n, const char *state)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) k += strcmp(state_of(ids[i]), state) == 0;
    return k;
}

Test(cli_ops, stop_by_selection_dry_run_confirmation_and_count)
{
    char *q[3], *out;
    for (int i = 0; i < 3; i++) q[i] = queued_run();
    const char *const *ids = (const char *const *)q;
    char *other = start_run("publish-draft", "--delay", "10m", NULL, NULL); /* waiting */

    /* --dry-run: the count and the ids, nothing stopped. */
    cr_assert_eq(wf(&out, "stop", "--workflow", "idle", "--state", "queued", "--dry-run", NULL), 0);
    cr_assert_eq(strncmp(out, "would stop 3 queued runs of idle:\n", 34), 0, "%s", out);
    for (int i = 0; i < 3; i++) cr_assert_not_null(strstr(out, q[i]), "%s", out);
    free(out);
    cr_assert_eq(
        wf(&out, "stop", "--workflow", "idle", "--state", "queued", "--dry-run", "--json", NULL),
        0);
    json_t *doc = parse(out);
    cr_assert_eq(ifield(doc, "count"), 3);
    cr_assert_eq(json_array_size(json_object_get(doc, "ids")), 3);
    cr_assert(json_is_true(json_object_get(doc, "dryRun")));
    json_decref(doc);
    cr_assert_eq(count_in(ids, 3, "queued"), 3);

    /* Not a terminal and no --yes: refused, nothing stopped. */
    cr_assert_eq(sh(&out, "$WF stop --workflow idle --state queued </dev/null 2>&1"), 1);
    cr_assert_not_null(strstr(out, "give --yes to confirm"), "%s", out);
    free(out);
    cr_assert_eq(count_in(ids, 3, "queued"), 3);

    /* On a terminal: asked; "n" does nothing, "y" stops the three and says so. */
    cr_assert_eq(on_tty(&out, "n\n", "stop --workflow idle --state queued"), 1, "%s", out);
    cr_assert_not_null(strstr(out, "Stop 3 queued runs of idle? [y/N]"), "%s", out);
    cr_assert_not_null(strstr(out, "nothing done"), "%s", out);
    free(out);
    cr_assert_eq(count_in(ids, 3, "queued"), 3);
    cr_assert_eq(on_tty(&out, "y\n", "stop --workflow idle --state queued"), 0, "%s", out);
    cr_assert_not_null(strstr(out, "stopped 3 of 3 queued runs of idle"), "%s", out);
    free(out);
    cr_assert_eq(count_in(ids, 3, "cancelled"), 3);
    cr_assert_str_eq(state_of(other), "waiting", "another workflow's run is left alone");

    /* Nothing left to select: no question, 0. */
    cr_assert_eq(wf(&out, "stop", "--workflow", "idle", "--state", "queued", NULL), 0);
    cr_assert_str_eq(out, "no queued runs of idle to stop\n");
    free(out);

    /* Refusals: a final state, both an id and a selection, no --state, --dry-run with --yes. */
    cr_assert_eq(wf(&out, "stop", "--workflow", "idle", "--state", "completed", "--yes", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "stop", other, "--state", "waiting", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "stop", "--workflow", "idle", "--yes", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "stop", "--state", "waiting", "--dry-run", "--yes", NULL), 1);
    free(out);
    cr_assert_str_eq(state_of(other), "waiting");
    for (int i = 0; i < 3; i++) free(q[i]);
    free(other);
}

Test(cli_ops, retry_by_selection_acts_on_each_run_in_the_state)
{
    char *f1 = start_run("fatal", "{}", "--wait", NULL, NULL);
    char *f2 = start_run("fatal", "{}", "--wait", NULL, NULL);
    char *cancelled = start_run("fatal", "{}", "--delay", "10m", NULL);
    char *out;
    cr_assert_eq(wf(&out, "stop", cancelled, NULL), 0);
    free(out);
    cr_assert_eq(
        wf(&out, "retry", "--workflow", "fatal", "--state", "failed", "--yes", "--json", NULL), 0,
        "%s", out);
    json_t *doc = parse(out);
    cr_assert_eq(ifield(doc, "count"), 2);
    cr_assert_eq(ifield(doc, "acted"), 2);
    cr_assert_eq(json_array_size(json_object_get(doc, "skipped")), 0);
    cr_assert_eq(json_array_size(json_object_get(doc, "failed")), 0);
    json_decref(doc);
    const char *ids[] = {f1, f2};
    for (int i = 0; i < 2; i++) {
        wait_state(ids[i], "failed"); /* fatal fails every attempt: this is the second */
        wf_run *run = wf_get_workflow_run(env.client, ids[i], NULL);
        wf_status st = {0};
        cr_assert_eq(wf_run_status(run, &st, NULL), WF_OK);
        cr_assert_eq(st.attempt, 2, "%s was retried once", ids[i]);
        wf_status_clear(&st);
        wf_run_free(run);
    }
    cr_assert_str_eq(state_of(cancelled), "cancelled", "only the selected state");
    cr_assert_eq(wf(&out, "retry", "--workflow", "fatal", "--state", "queued", "--yes", NULL), 1);
    free(out);
    free(f1);
    free(f2);
    free(cancelled);
}

Test(cli_ops, stop_by_selection_pages_through_more_than_one_page)
{
    redisReply *r = redisCommand(env.rc, "HSET wf:workflows idle {}");
    freeReplyObject(r);
    enum { N = 1203 }; /* three pages of 500, the last one short */
    for (int i = 0; i < N; i++) {
        wf_error err = {0};
        wf_run *run = wf_run_workflow(env.client, "idle", NULL, 0, &err);
        cr_assert_not_null(run, "start %d: %s", i, err.message);
        wf_run_free(run);
    }
    char *out;
    cr_assert_eq(
        wf(&out, "stop", "--workflow", "idle", "--state", "queued", "--yes", "--json", NULL), 0);
    json_t *doc = parse(out);
    cr_assert_eq(ifield(doc, "count"), N);
    cr_assert_eq(ifield(doc, "acted"), N);
    json_decref(doc);
    wf_stats *stats = NULL;
    size_t n = 0;
    cr_assert_eq(wf_workflow_stats(env.client, "idle", &stats, &n, NULL), WF_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(stats[0].count[WF_STATE_QUEUED], 0);
    cr_assert_eq(stats[0].count[WF_STATE_CANCELLED], N);
    wf_stats_free(stats, n);
}

/* ---- workflow names no worker registered ---------------------------------------------------- */

Test(cli_ops, a_workflow_no_worker_registered_is_refused_unless_forced)
{
    char *out;
    /* limit: refused with the close match named, and nothing stored. */
    cr_assert_eq(sh(&out, "$WF limit publsh-draft --max-running 2 2>&1"), 6, "%s", out);
    cr_assert_not_null(strstr(out, "no worker ever registered workflow 'publsh-draft'"), "%s", out);
    cr_assert_not_null(strstr(out, "did you mean 'publish-draft'?"), "%s", out);
    cr_assert_not_null(strstr(out, "--force"), "%s", out);
    free(out);
    redisReply *keys = redisCommand(env.rc, "KEYS *publsh*");
    cr_assert(keys && keys->type == REDIS_REPLY_ARRAY && keys->elements == 0, "a key was stored");
    freeReplyObject(keys);
    /* With --force it is stored (and read back). */
    cr_assert_eq(wf(&out, "limit", "publsh-draft", "--max-running", "2", "--force", "--json", NULL),
                 0);
    json_t *doc = parse(out);
    cr_assert_eq(ifield(doc, "maxRunning"), 2);
    json_decref(doc);
    cr_assert_eq(wf(&out, "limit", "publish-draft", "--max-running", "3", NULL), 0, "registered");
    free(out);

    /* stats, list, purge, schedule list, stop/retry by selection: the same check (schedule add
     * refuses such a workflow in the library, --force or not). */
    static const char *const cmds[] = {
        "stats --workflow slwo",
        "list --workflow slwo",
        "purge --older-than 1d --workflow slwo",
        "schedule list --workflow slwo",
        "stop --workflow slwo --state queued --dry-run",
        "retry --workflow slwo --state failed --dry-run",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cr_assert_eq(sh(&out, "$WF %s 2>&1", cmds[i]), 6, "%s: %s", cmds[i], out);
        cr_assert_not_null(strstr(out, "did you mean 'slow'?"), "%s: %s", cmds[i], out);
        free(out);
        cr_assert_eq(sh(&out, "$WF %s --force 2>&1", cmds[i]), 0, "%s --force: %s", cmds[i], out);
        free(out);
    }
    /* No close name: the message points to `wf workflows`. */
    cr_assert_eq(sh(&out, "$WF stats --workflow zzzzzzzzzz 2>&1"), 6, "%s", out);
    cr_assert_not_null(strstr(out, "`wf workflows` lists the"), "%s", out);
    cr_assert_null(strstr(out, "did you mean"), "%s", out);
    free(out);
}

/* ---- wf web's default address --------------------------------------------------------------- */

typedef struct web_wait {
    pid_t pid;
    const char *log;
    int status, exited;
} web_wait;

static int web_ready_or_gone(void *arg)
{
    web_wait *w = arg;
    if (waitpid(w->pid, &w->status, WNOHANG) == w->pid) return w->exited = 1;
    char *text = wf_test_slurp(w->log);
    int ready = strstr(text, "listening on") != NULL;
    free(text);
    return ready;
}

Test(cli_ops, web_without_listen_uses_the_documented_default)
{
    char *bin = wf_test_path("wf"), log[400];
    snprintf(log, sizeof log, "%s/web.log", env.redis.dir);
    const char *argv[] = {bin, "--redis", env.redis.url, "web", NULL};
    const char *envp[] = {"WF_WEB_TOKEN=", NULL};
    web_wait w = {wf_test_spawn(argv, envp, log), log, 0, 0};
    free(bin);
    cr_assert_gt(w.pid, 0);
    cr_assert(wf_test_wait(web_ready_or_gone, &w, 15000), "wf web neither listened nor exited");
    char *text = wf_test_slurp(log);
    if (w.exited) {
        /* Port 8080 is taken on this machine: still, the default is what it tried. */
        cr_assert(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 9, "%#x: %s", w.status, text);
        cr_assert_not_null(strstr(text, "cannot listen on 127.0.0.1:8080"), "%s", text);
    } else {
        cr_assert_not_null(strstr(text, "listening on http://127.0.0.1:8080/"), "%s", text);
        int st = wf_test_kill(w.pid, SIGTERM, 15000);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x", st);
    }
    free(text);
}

/* ---- colour --------------------------------------------------------------------------------- */

/* Like sh() but on a terminal (script(1)), with NO_COLOR and TERM set as a user's shell might. */
static int tty_sh(char **out, const char *fmt, ...)
{
    char *bin = wf_test_path("wf"), cmd[2048];
    int n =
        snprintf(cmd, sizeof cmd, "unset NO_COLOR; TERM=xterm; export TERM; WF='%s --redis %s'; ",
                 bin, env.redis.url);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    const char *argv[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};
    int rc = wf_test_run(argv, NULL, NULL, out, 30000);
    free(bin);
    return rc;
}

Test(cli_ops, states_are_coloured_on_a_terminal_unless_no_color)
{
    char *done = start_run("slow", "10", "--wait", NULL, NULL);
    char *failed = start_run("fatal", "{}", "--wait", NULL, NULL);
    char *out;
    /* On a terminal: completed green, failed red, the table still aligned. */
    cr_assert_eq(tty_sh(&out, "$WF list"), 0, "%s", out);
    cr_assert_not_null(strstr(out, "\033[32mcompleted\033[0m  "), "%s", out);
    cr_assert_not_null(strstr(out, "\033[31mfailed\033[0m     "), "%s", out);
    free(out);
    cr_assert_eq(tty_sh(&out, "$WF status %s --text", failed), 0, "%s", out);
    cr_assert_not_null(strstr(out, "State      \033[31mfailed\033[0m"), "%s", out);
    free(out);
    cr_assert_eq(tty_sh(&out, "$WF wait %s", done), 0, "%s", out);
    cr_assert_not_null(strstr(out, ": \033[32mcompleted\033[0m"), "%s", out);
    free(out);
    cr_assert_eq(tty_sh(&out, "NO_COLOR= $WF list"), 0, "%s", out);
    cr_assert_not_null(strstr(out, "\033[32mcompleted"), "an empty NO_COLOR is unset: %s", out);
    free(out);

    /* NO_COLOR, --no-color (before or after the command), TERM=dumb, or a pipe: none. */
    static const char *const plain[] = {"NO_COLOR=1 $WF list", "$WF --no-color list",
                                        "$WF list --no-color", "TERM=dumb $WF list",
                                        "$WF list | cat"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        cr_assert_eq(tty_sh(&out, "%s", plain[i]), 0, "%s: %s", plain[i], out);
        cr_assert_not_null(strstr(out, "completed"), "%s: %s", plain[i], out);
        cr_assert_null(strstr(out, "\033["), "%s: %s", plain[i], out);
        free(out);
    }
    free(done);
    free(failed);
}
