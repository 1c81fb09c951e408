/* test_cli_ops_selection.c - which runs and workflows a `wf` verb acts on, against a real Redis
 * and a real wf-worker (cli_ops_env.h): stop and retry by selection (dry run, confirmation on a
 * terminal, counts, more than one page), and workflow names no worker registered, refused
 * unless forced. */
#include <criterion/criterion.h>

#include "cli_ops_env.h"

TestSuite(cli_ops, .init = cli_ops_setup, .fini = cli_ops_teardown, .timeout = 120);

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
    redisReply *r = wf_test_command(env.rc, "HSET wf:workflows idle {}");
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
    redisReply *keys = wf_test_command(env.rc, "KEYS *publsh*");
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
