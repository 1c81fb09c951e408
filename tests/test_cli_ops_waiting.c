/* test_cli_ops_waiting.c - the `wf` verbs that wait for runs, against a real Redis and a real
 * wf-worker (cli_ops_env.h): run --wait's progress on stderr, wait's exit code saying how a run
 * ended, status --follow printing each change until the run is final. */
#include <criterion/criterion.h>

#include "cli_ops_env.h"

TestSuite(cli_ops, .init = cli_ops_setup, .fini = cli_ops_teardown, .timeout = 120);

/* ---- run --wait progress -------------------------------------------------------------------- */

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

/* ---- a workflow no live worker serves ------------------------------------------------------- */

Test(cli_ops, runs_that_no_live_worker_serves_are_warned_about)
{
    char *id = queued_run(); /* "idle": registered, but no worker runs it */
    char *out;
    /* wf stats: the warning on stderr, liveWorkers in the JSON. */
    cr_assert_eq(sh(&out, "$WF stats --workflow idle 2>&1 >/dev/null"), 0);
    cr_assert_not_null(strstr(out, "no live worker serves 'idle': its 1 queued or waiting run"),
                       "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "$WF stats --json 2>/dev/null"), 0);
    json_t *doc = parse(out); /* frees out */
    int seen_idle = 0, seen_served = 0;
    size_t i;
    json_t *row;
    json_array_foreach(doc, i, row)
    {
        const char *w = sfield(row, "workflow");
        if (strcmp(w, "idle") == 0) {
            seen_idle = 1;
            cr_assert_eq(ifield(row, "liveWorkers"), 0);
        } else if (strcmp(w, "slow") == 0) {
            seen_served = 1;
            cr_assert_geq(ifield(row, "liveWorkers"), 1, "the suite's worker serves slow");
        }
    }
    cr_assert(seen_idle && seen_served, "both workflows listed");
    json_decref(doc);
    /* A served workflow with runs waiting gets no warning; wf wait and wf run --wait on an
     * unserved one say why the run does not move, then time out (7). */
    char *later = start_run("slow", "--delay", "10m", NULL, NULL);
    char wait_idle[128], wait_later[128];
    snprintf(wait_idle, sizeof wait_idle, "wait %s --timeout 1s", id);
    snprintf(wait_later, sizeof wait_later, "wait %s --timeout 1s", later);
    static const struct {
        const char *args;
        int rc;
        const char *want; /* NULL: no warning at all */
    } cases[] = {
        {"stats --workflow slow", 0, NULL},
        {NULL, 7, "no live worker serves 'idle': the run waits"}, /* wait_idle */
        {"run idle --wait --timeout 1s", 7, "no live worker serves 'idle'"},
        {NULL, 7, NULL}, /* wait_later */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *args = cases[k].args ? cases[k].args : k == 1 ? wait_idle : wait_later;
        cr_assert_eq(sh(&out, "$WF %s 2>&1 >/dev/null", args), cases[k].rc, "%s", args);
        if (cases[k].want)
            cr_assert_not_null(strstr(out, cases[k].want), "%s: %s", args, out);
        else
            cr_assert_null(strstr(out, "warning"), "%s: %s", args, out);
        free(out);
    }
    free(later);
    free(id);
}
