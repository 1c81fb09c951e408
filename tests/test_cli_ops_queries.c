/* test_cli_ops_queries.c - the `wf` verbs over many runs, against a real Redis and a real
 * wf-worker (cli_ops_env.h): list with time windows and paging, stats, workers (the registry and
 * its stale entries), purge of old finished runs. */
#include <criterion/criterion.h>

#include "cli_ops_env.h"
#include "wf_internal.h"

TestSuite(cli_ops, .init = cli_ops_setup, .fini = cli_ops_teardown, .timeout = 120);

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

/* The ids of `pages` pages of `limit` runs of `workflow` (and `state`), in order, into ids. */
static size_t page_through(const char *workflow, const char *state, int limit, int pages,
                           char ids[][WF__ID_MAX])
{
    size_t n = 0;
    for (int p = 0; p < pages; p++) {
        char lim[16], off[16], *out;
        snprintf(lim, sizeof lim, "%d", limit);
        snprintf(off, sizeof off, "%d", p * limit);
        cr_assert_eq(wf(&out, "list", "--json", "--workflow", workflow, "--state", state, "--limit",
                        lim, "--offset", off, NULL),
                     0);
        json_t *doc = parse(out);
        for (size_t i = 0; i < json_array_size(doc); i++)
            snprintf(ids[n++], WF__ID_MAX, "%s", sfield(json_array_get(doc, i), "id"));
        json_decref(doc);
    }
    return n;
}

static void assert_distinct(char ids[][WF__ID_MAX], size_t n, size_t want)
{
    cr_assert_eq(n, want, "the pages hold every run once: %zu of %zu", n, want);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert_str_neq(ids[i], ids[j], "page %zu and %zu both show %s", i, j, ids[i]);
}

/* Runs that ended in one millisecond tie in the index: each page must still give new ones (the
 * dashboard's bulk retry ends several runs in one loop turn, and its second page repeated one). */
Test(cli_ops, list_pages_runs_that_ended_in_one_millisecond)
{
    char *run[5];
    for (int i = 0; i < 5; i++) run[i] = start_run("publish-draft", "--wait", NULL, NULL, NULL);
    wf__wfkeys wk;
    cr_assert_eq(wf__wfkeys_init(&wk, "wf", "publish-draft"), WF_OK);
    for (int i = 0; i < 5; i++) {
        redisReply *r = wf_test_command(env.rc, "ZADD %s XX CH 1000 %s",
                                        wk.k[WF__K_STATE(WF_STATE_COMPLETED)], run[i]);
        cr_assert_eq(r->integer, 1, "%s is in the completed index", run[i]);
        freeReplyObject(r);
    }
    char ids[8][WF__ID_MAX];
    for (int limit = 1; limit <= 3; limit++)
        assert_distinct(ids, page_through("publish-draft", "completed", limit, 6 / limit, ids), 5);
    wf__wfkeys_free(&wk);
    for (int i = 0; i < 5; i++) free(run[i]);
}

/* Queued runs of one millisecond: a lane orders them by entry sequence, the pages by run id, so
 * a page that stops inside the millisecond must still read the rest of it. */
Test(cli_ops, list_pages_queued_runs_of_one_millisecond)
{
    wf__wfkeys wk;
    cr_assert_eq(wf__wfkeys_init(&wk, "wf", "idle"), WF_OK);
    const char *lane = wk.k[wf__lane_key(WF__LANE_NORMAL)];
    /* lean entries as enqueue_lean writes them (at their ULID's ms, 1700000000000), their ids
     * descending as the sequence rises */
    const char *suffix[] = {"01HF7YAT00AAAAAAAAAAAAAAAZ", "01HF7YAT00AAAAAAAAAAAAAAAM",
                            "01HF7YAT00AAAAAAAAAAAAAAAB"};
    for (int i = 0; i < 3; i++) {
        redisReply *r =
            wf_test_command(env.rc, "XADD %s 1700000000000-%d c %s p {}", lane, i + 1, suffix[i]);
        cr_assert_eq(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    free(queued_run()); /* registers `idle`, and one run queued now, the newest */
    char ids[8][WF__ID_MAX];
    size_t n = page_through("idle", "queued", 1, 5, ids);
    char first[WF__ID_MAX];
    snprintf(first, sizeof first, "idle:%s", suffix[0]);
    cr_assert_str_eq(ids[1], first, "after the run queued now, the newest id of the millisecond");
    assert_distinct(ids, n, 4);
    wf__wfkeys_free(&wk);
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
    freeReplyObject(wf_test_command(env.rc, "DEL wf:workers"));
    freeReplyObject(wf_test_command(env.rc,
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
    freeReplyObject(wf_test_command(env.rc, "DEL wf:workers"));
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
    freeReplyObject(wf_test_command(env.rc, "HSET %s updated_at %lld", key, then));
    freeReplyObject(
        wf_test_command(env.rc, "ZADD wf:{%s}:state:%s %lld %s", wfname, state, then, id));
    free(key);
}

static long long run_exists(const char *id)
{
    return run_key_exists(wf__key_run, id);
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
    freeReplyObject(wf_test_command(env.rc, "ZADD wf:{publish-draft}:state:completed %lld %s",
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
