/* test_layout_v1_fixture.c - the upgrade from schema 1 (issue #15): the data schema 1 workers
 * wrote, loaded into a real Redis: tests/fixtures/layout-v1.dump, captured from real v1 workers by
 * scripts/capture-v1-fixture, with its manifest of runs (RUN_ID STATE WORKFLOW SHAPE). A client
 * and a worker of this wf refuse that data with a clear error until `wf migrate` (wf_migrate) has
 * run, which is idempotent. After it, every run reads back through the public API as the capture
 * made it, and a worker started on that data finishes the ready runs, takes over the killed
 * worker's orphaned lease and finishes that run once, without re-running a recorded step; new
 * (lean) runs of schema 2 run beside the old ones. docs/upgrading.md is the procedure. Fixture:
 * pool_env.h. */
#include "fixture_load.h"
#include "pool_env.h"

#define DUMP_PATH     WF_SOURCE_DIR "/tests/fixtures/layout-v1.dump"
#define MANIFEST_PATH WF_SOURCE_DIR "/tests/fixtures/layout-v1.manifest"
#define YEAR_MS       (365LL * 24 * 3600 * 1000)

static wf_test_fixture_run *runs;
static long nruns;

static void setup(void)
{
    pool_env_setup("v1fixture");
    long keys = wf_test_load_fixture(rc, DUMP_PATH);
    cr_assert_gt(keys, 50, "the fixture %s did not load (%ld keys)", DUMP_PATH, keys);
    nruns = wf_test_fixture_manifest(MANIFEST_PATH, &runs);
    cr_assert_gt(nruns, 20, "the manifest %s did not load", MANIFEST_PATH);
}

/* The upgrade step of docs/upgrading.md, as an operator runs it: the schema 1 indexes go, the
 * schema key says 2, and every workflow was visited. */
static void migrate(void)
{
    cr_assert_str_eq(wf_test_cmd_str(rc, "GET wf:schema"), "1", "the fixture is schema 1 data");
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{echo}:state:queued"), 1);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{stepper}:state:running"), 1);
    wf_migrate_result res = {0};
    wf_error err = {0};
    cr_assert_eq(wf_migrate(srv.url, 0, &res, &err), WF_OK, "%s", err.message);
    cr_assert_eq(res.from, 1);
    cr_assert_eq(res.to, 2);
    cr_assert_geq(res.workflows, 8);
    cr_assert_gt(res.queued_index, 5);
    cr_assert_geq(res.running_index, 1, "the orphaned run's schema 1 index entry");
    char *v = wf_test_cmd_str(rc, "GET wf:schema");
    cr_assert_str_eq(v, "2");
    free(v);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{echo}:state:queued"), 0);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{stepper}:state:running"), 0);
}

static void teardown(void)
{
    free(runs);
    pool_env_teardown();
}

TestSuite(layout_v1_fixture, .init = setup, .fini = teardown, .timeout = 120);

/* Until `wf migrate`, this wf refuses the data and says what to do; the command migrates once
 * and is a no-op after; it refuses while a worker looks alive unless forced. */
Test(layout_v1_fixture, schema_1_is_refused_until_wf_migrate)
{
    wf_error err = {0};
    wf_client *c2 = wf_client_connect(srv.url, &err);
    cr_assert_null(c2);
    cr_assert_eq(err.code, WF_ERR_SCHEMA);
    cr_assert(strstr(err.message, "wf migrate"), "the error names the fix: %s", err.message);
    /* A live worker (a fresh heartbeat in wf:workers, as an old worker leaves it) blocks it. */
    long long now = wf_test_redis_ms(rc);
    cr_assert_geq(wf_test_cmd_int(rc,
                                  "HSET wf:workers old:1 {\"host\":\"h\",\"pid\":1,"
                                  "\"last_seen\":%lld}",
                                  now),
                  0);
    char *wf = wf_test_path("wf");
    char *out = NULL;
    const char *cmd[] = {wf, "--redis", srv.url, "migrate", NULL};
    cr_assert_neq(wf_test_run(cmd, NULL, NULL, &out, 10000), 0, "refused while a worker is alive");
    free(out);
    char *v = wf_test_cmd_str(rc, "GET wf:schema");
    cr_assert_str_eq(v, "1", "a refused migration changes nothing");
    free(v);
    cr_assert_eq(wf_test_cmd_int(rc, "HDEL wf:workers old:1"), 1);
    migrate();
    const char *again[] = {wf, "--redis", srv.url, "--json", "migrate", NULL};
    cr_assert_eq(wf_test_run(again, NULL, NULL, &out, 10000), 0);
    cr_assert(strstr(out, "\"from\":2") && strstr(out, "\"to\":2"), "a second run: %s", out);
    free(out);
    free(wf);
    c2 = wf_client_connect(srv.url, &err);
    cr_assert_not_null(c2, "%s", err.message);
    wf_client_free(c2);
}

/* The manifest's one run of `shape` (fails the test when there is none). */
static const wf_test_fixture_run *shape(const char *name)
{
    for (long i = 0; i < nruns; i++)
        if (strcmp(runs[i].shape, name) == 0) return &runs[i];
    cr_assert_fail("the manifest has no run of shape %s", name);
    return NULL;
}

static wf_run *open_run(const char *id)
{
    wf_error err = {0};
    wf_run *run = wf_get_workflow_run(cl, id, &err);
    cr_assert_not_null(run, "run %s of the fixture: %s", id, err.message);
    return run;
}

/* The raw field `name` of the run's hash, or NULL (borrowed from st). */
static const char *raw(const wf_status *st, const char *name)
{
    for (size_t i = 0; i < st->raw_len; i++)
        if (strcmp(st->raw[i].name, name) == 0) return st->raw[i].value;
    return NULL;
}

/* The run's steps; the caller frees them with wf_steps_free. */
static wf_step_info *steps_of(const char *id, size_t *n)
{
    wf_run *run = open_run(id);
    wf_step_info *steps = NULL;
    cr_assert_eq(wf_run_steps(run, &steps, n, NULL), WF_OK, "steps of %s", id);
    wf_run_free(run);
    return steps;
}

static const wf_step_info *step_named(const wf_step_info *steps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(steps[i].name, name) == 0) return &steps[i];
    cr_assert_fail("no step %s", name);
    return NULL;
}

Test(layout_v1_fixture, every_run_reads_back_in_its_state)
{
    migrate();
    for (long i = 0; i < nruns; i++) {
        wf_run *run = open_run(runs[i].id);
        cr_assert_str_eq(wf_run_workflow_name(run), runs[i].workflow, "%s", runs[i].id);
        wf_status st;
        cr_assert_eq(wf_run_status(run, &st, NULL), WF_OK, "status of %s", runs[i].id);
        cr_assert_str_eq(wf_state_name(st.state), runs[i].state, "run %s (%s)", runs[i].id,
                         runs[i].shape);
        cr_assert_gt(st.created_at_ms, 0, "%s", runs[i].id);
        cr_assert_eq(wf_state_is_final(st.state), st.finished_at_ms > 0, "%s", runs[i].id);
        wf_status_clear(&st);
        wf_run_free(run);
    }
}

Test(layout_v1_fixture, finished_runs_keep_outputs_errors_and_steps)
{
    migrate();
    wf_status st;
    wf_test_status_of(cl, shape("caller-id")->id, &st);
    cr_assert_str_eq(shape("caller-id")->id, "echo:custom-id-1");
    char *json = output_json(&st);
    cr_assert_str_eq(json, "{\"hello\":\"v1\"}");
    free(json);
    wf_status_clear(&st);

    wf_test_status_of(cl, shape("fatal")->id, &st);
    cr_assert(st.error && strstr(st.error, "card declined"), "fatal's error: %s", st.error);
    wf_status_clear(&st);

    wf_test_status_of(cl, shape("steps")->id, &st);
    json = output_json(&st);
    cr_assert_str_eq(json, "{\"sum\":30,\"event\":null}");
    free(json);
    wf_status_clear(&st);
    size_t n;
    wf_step_info *steps = steps_of(shape("steps")->id, &n);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) cr_assert_str_eq(steps[i].status, "done", "%s", steps[i].name);
    wf_steps_free(steps, n);
}

Test(layout_v1_fixture, children_name_their_parents)
{
    migrate();
    const char *pairs[][2] = {{"parent", "child"}, {"parent-waiting", "child-queued"}};
    for (size_t i = 0; i < 2; i++) {
        const wf_test_fixture_run *parent = shape(pairs[i][0]), *child = shape(pairs[i][1]);
        wf_status st;
        wf_test_status_of(cl, child->id, &st);
        cr_assert_str_eq(raw(&st, "parent") ? raw(&st, "parent") : "(none)", parent->id);
        wf_status_clear(&st);
        size_t n;
        wf_step_info *steps = steps_of(parent->id, &n);
        const wf_step_info *invoke = step_named(steps, n, "child");
        cr_assert_str_eq(invoke->kind, "invoke");
        cr_assert_str_eq(invoke->event, child->id, "the invoke step names its child");
        cr_assert_str_eq(invoke->status, i == 0 ? "done" : "waiting");
        wf_steps_free(steps, n);
    }
}

/* Sleeps, event waits and delays of ten years: still ahead whenever the test runs. */
Test(layout_v1_fixture, waiting_runs_wait_for_what_they_waited_for)
{
    migrate();
    const char *long_waits[] = {"sleep", "delayed", "event-timeout"};
    for (size_t i = 0; i < 3; i++) {
        wf_status st;
        wf_test_status_of(cl, shape(long_waits[i])->id, &st);
        cr_assert_gt(st.wake_at_ms, st.created_at_ms + 9 * YEAR_MS, "%s", long_waits[i]);
        wf_status_clear(&st);
    }
    wf_status st;
    wf_test_status_of(cl, shape("delayed")->id, &st);
    cr_assert_str_eq(st.wait_reason ? st.wait_reason : "(none)", "delayed start");
    wf_status_clear(&st);
    wf_test_status_of(cl, shape("retry")->id, &st);
    cr_assert_str_eq(st.wait_reason ? st.wait_reason : "(none)", "retry");
    cr_assert_eq(st.attempt, 2);
    cr_assert(st.error && strstr(st.error, "first attempt fails"), "retry's error: %s", st.error);
    wf_status_clear(&st);

    size_t n;
    wf_step_info *steps = steps_of(shape("event")->id, &n);
    const wf_step_info *ev = step_named(steps, n, "ev");
    cr_assert_str_eq(ev->kind, "event");
    cr_assert_str_eq(ev->status, "waiting");
    cr_assert_str_eq(ev->event, "fixture-approved");
    cr_assert_str_eq(ev->event_key ? ev->event_key : "(none)", "k1");
    wf_steps_free(steps, n);
    steps = steps_of(shape("sleep")->id, &n);
    cr_assert_str_eq(step_named(steps, n, "nap")->status, "waiting");
    wf_steps_free(steps, n);
}

Test(layout_v1_fixture, priorities_pauses_and_the_orphaned_lease)
{
    migrate();
    const char *lanes[][2] = {{"queued-high", "high"}, {"queued-low", "low"}, {"queued", "normal"}};
    wf_priority want[] = {WF_PRIORITY_HIGH, WF_PRIORITY_LOW, WF_PRIORITY_NORMAL};
    for (size_t i = 0; i < 3; i++) {
        wf_status st;
        wf_test_status_of(cl, shape(lanes[i][0])->id, &st);
        cr_assert_eq(wf_status_priority(&st), want[i], "%s is not %s", lanes[i][0], lanes[i][1]);
        wf_status_clear(&st);
    }
    wf_status st;
    wf_test_status_of(cl, shape("paused-waiting")->id, &st);
    cr_assert_str_eq(raw(&st, "paused_from") ? raw(&st, "paused_from") : "(none)", "waiting");
    wf_status_clear(&st);
    wf_test_status_of(cl, shape("paused-queued")->id, &st);
    cr_assert_str_eq(raw(&st, "paused_from") ? raw(&st, "paused_from") : "(none)", "queued");
    wf_status_clear(&st);

    const char *orphan = shape("lease-orphaned")->id;
    char *score = wf_test_cmd_str(rc, "ZSCORE wf:{stepper}:leases %s", orphan);
    cr_assert_not_null(score, "the killed worker's lease of %s is not in wf:{stepper}:leases",
                       orphan);
    free(score);
    size_t n;
    wf_step_info *steps = steps_of(orphan, &n);
    cr_assert_eq(n, 3, "the orphaned run recorded s#0..s#2 before its worker was killed");
    wf_steps_free(steps, n);
}

/* wf stats and wf list agree with the manifest, run for run. */
Test(layout_v1_fixture, stats_and_lists_count_every_run)
{
    migrate();
    wf_stats *stats = NULL;
    size_t nw = 0;
    cr_assert_eq(wf_workflow_stats(cl, NULL, &stats, &nw, NULL), WF_OK);
    cr_assert_geq(nw, 8);
    for (size_t w = 0; w < nw; w++)
        for (int s = WF_STATE_QUEUED; s <= WF_STATE_TERMINATED; s++) {
            long long want = 0;
            for (long i = 0; i < nruns; i++)
                want += strcmp(runs[i].workflow, stats[w].workflow) == 0 &&
                        wf_state_from_name(runs[i].state) == (wf_state)s;
            cr_assert_eq(stats[w].count[s], want, "%s has %lld %s runs, the manifest %lld",
                         stats[w].workflow, stats[w].count[s], wf_state_name(s), want);
        }
    for (size_t w = 0; w < nw; w++)
        if (strcmp(stats[w].workflow, "echo") == 0)
            cr_assert_geq(stats[w].dead, 1, "the dead letter of echo");
    wf_stats_free(stats, nw);

    wf_list_options o = {.limit = 1000};
    char **ids = NULL;
    size_t nids = 0;
    cr_assert_eq(wf_list_runs(cl, &o, &ids, &nids, NULL), WF_OK);
    cr_assert_eq((long)nids, nruns, "wf list: %zu runs, the manifest %ld", nids, nruns);
    wf_list_free(ids, nids);
    o = (wf_list_options){.workflow = "idle", .state = WF_STATE_QUEUED};
    cr_assert_eq(wf_list_runs(cl, &o, &ids, &nids, NULL), WF_OK);
    for (long i = 0; i < nruns; i++) {
        int listed = 0;
        for (size_t j = 0; j < nids; j++) listed |= strcmp(ids[j], runs[i].id) == 0;
        int want = strcmp(runs[i].workflow, "idle") == 0 && strcmp(runs[i].state, "queued") == 0;
        cr_assert_eq(listed, want, "wf list --workflow idle --state queued and %s", runs[i].id);
    }
    wf_list_free(ids, nids);
}

Test(layout_v1_fixture, schedules_and_limits_read_back)
{
    migrate();
    wf_schedule_info *sch = NULL;
    size_t n = 0;
    cr_assert_eq(wf_schedule_list(cl, NULL, &sch, &n, NULL), WF_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(sch[0].workflow, "echo");
    cr_assert_str_eq(sch[0].id, "often");
    cr_assert_str_eq(sch[0].spec, "@every 1h");
    cr_assert_eq(sch[0].catch_up, WF_CATCH_UP_NONE);
    cr_assert_str_eq(sch[1].workflow, "idle");
    cr_assert_str_eq(sch[1].id, "nightly");
    cr_assert_str_eq(sch[1].spec, "0 3 * * *");
    cr_assert_gt(sch[1].next_at_ms, sch[1].created_at_ms);
    wf_schedules_free(sch, n);

    wf_flow_limits lim;
    char key[80];
    long long held = -1;
    cr_assert_eq(wf_flow_get(cl, "idle", &lim, key, sizeof key, &held, NULL), WF_OK);
    cr_assert_eq(lim.max_running, 2);
    cr_assert_str_eq(lim.key ? lim.key : "(none)", "customer");
    cr_assert_eq(lim.max_per_key, 1);
    cr_assert_eq(lim.rate, 10);
    cr_assert_eq(lim.rate_ms, 60000);
    cr_assert(lim.singleton);
    cr_assert_eq(held, 0);
    cr_assert_eq(wf_flow_get(cl, "echo", &lim, key, sizeof key, NULL, NULL), WF_OK);
    cr_assert_eq(lim.max_running, 50);
    cr_assert_eq(wf_flow_get(cl, "sender", &lim, key, sizeof key, &held, NULL), WF_OK);
    cr_assert_eq(lim.rate, 1);
    cr_assert_eq(lim.rate_ms, 3650 * 24 * 3600 * 1000LL);
    cr_assert_eq(held, 1, "the run the rate limit holds back");

    wf_status st;
    wf_test_status_of(cl, shape("held-rate")->id, &st);
    cr_assert(st.wait_reason && strncmp(st.wait_reason, "rate limit", 10) == 0,
              "the held run waits for %s", st.wait_reason);
    wf_status_clear(&st);
}

/* How often `what` occurs in the exec log (0 when there is no log yet). */
static int exec_count(const char *what)
{
    char *log = wf_test_slurp(exec_path);
    int n = wf_test_count(log, what);
    free(log);
    return n;
}

static void expect_done(const char *shape_name, const char *want)
{
    wf_run *run = open_run(shape(shape_name)->id);
    expect_output(run, 30000, want);
    wf_run_free(run);
}

/* A worker on v1 data: ready runs (every lane), the retry that came due and the killed worker's
 * run all end, the orphan once and from its recorded steps; what waits on the future still
 * waits. */
Test(layout_v1_fixture, a_worker_takes_over_the_v1_runs)
{
    migrate();
    const char *env[] = {exec_env, port_env, NULL};
    const char *extra[] = {"--processes", "0", "--lease-ms", "2000", NULL};
    const char *served[] = {"echo", "stepper", "slow", NULL};
    worker_pid = wf_test_worker_start(&(wf_test_worker){.redis_url = srv.url,
                                                        .extra = extra,
                                                        .env = env,
                                                        .log_path = log_path,
                                                        .rc = rc,
                                                        .workflows = served});
    /* A run of schema 2 (lean: one entry) queued beside the old ones runs as well. */
    wf_run *fresh = wf_test_start_json(cl, "echo", "{\"q\":\"v2\"}", NULL);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS %s", wf_run_native(fresh)), 0, "lean while queued");
    expect_output(fresh, 30000, "{\"q\":\"v2\"}");
    wf_run_free(fresh);
    expect_done("served-queued-high", "{\"q\":\"high\"}");
    expect_done("served-queued-low", "{\"q\":\"low\"}");
    expect_done("retry", "\"slept\"");
    for (long i = 0; i < nruns; i++)
        if (strcmp(runs[i].shape, "served-queued") == 0) {
            wf_run *run = open_run(runs[i].id);
            expect_output(run, 30000,
                          strcmp(runs[i].workflow, "echo") == 0 ? "{\"q\":\"normal\"}"
                                                                : "{\"sum\":10,\"event\":null}");
            wf_run_free(run);
        }

    const char *orphan = shape("lease-orphaned")->id;
    expect_done("lease-orphaned", "{\"sum\":30,\"event\":null}");
    wf_status st;
    wf_test_status_of(cl, orphan, &st);
    cr_assert_eq(wf_test_raw_field(&st, "reclaims"), 1, "the orphan was reclaimed once");
    wf_status_clear(&st);
    char prefix[340];
    snprintf(prefix, sizeof prefix, "STEP %s ", orphan);
    cr_assert_eq(exec_count(prefix), 1, "the orphan ran only its unrecorded step, hold");
    snprintf(prefix, sizeof prefix, "STEP %s hold", orphan);
    cr_assert_eq(exec_count(prefix), 1, "the orphan's hold step ran once");
    cr_assert_eq(exec_count("VIOLATION"), 0, "a recorded step ran again");
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{stepper}:leases"), 0);

    const char *still[][2] = {{"sleep", "waiting"},     {"event", "waiting"},
                              {"queued", "queued"},     {"paused-queued", "paused"},
                              {"held-rate", "waiting"}, {"delayed", "waiting"}};
    for (size_t i = 0; i < sizeof still / sizeof still[0]; i++) {
        wf_test_status_of(cl, shape(still[i][0])->id, &st);
        cr_assert_str_eq(wf_state_name(st.state), still[i][1], "%s", still[i][0]);
        wf_status_clear(&st);
    }
}
