/* cmd_wait.c - watching one run until it ends: `wf wait ID` (block, then print the outcome, the
 * exit code saying which) and `wf status ID --follow` (print the run again each time it changes,
 * or with --text each new line of its timeline). Both poll through wait.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_view.h"
#include "status_json.h"

static const char WAIT_USAGE[] =
    "Usage: wf wait ID [--timeout DUR]\n"
    "\n"
    "Blocks until run ID is final, then prints its final state (\"ID: completed\", or \"ID:\n"
    "failed: ERROR\"; with --json its status, see `wf --help`). Shows progress on stderr as\n"
    "`wf run --wait` does. The exit code says how the run ended:\n"
    "  0 completed, 4 failed, 10 cancelled, 11 terminated, 7 not final within --timeout\n"
    "  (the run goes on), 2 no such run.\n"
    "\n"
    "Options:\n"
    "  --timeout DUR  give up after DUR (e.g. 30s, 10m; a bare number is seconds); default or\n"
    "                 0: no limit\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

/* Parses --timeout DUR for `cmd`; returns WF_CLI_OK or a usage error. */
static int timeout_arg(const char *cmd, const char *arg, int64_t *timeout_ms)
{
    return wf__cli_duration_arg(cmd, "--timeout", arg, 1000, timeout_ms);
}

/* Prints the final (or last, after a timeout) state of the run for people or as JSON. */
static int print_outcome(wf__cli *cli, wf_run *run, const wf_status *st)
{
    if (cli->json)
        return wf__cli_print_json(
            wf__cli_status_json(wf_run_id(run), wf_run_workflow_name(run), st));
    char state[48];
    printf("%s: %s%s%s\n", wf_run_id(run),
           wf__cli_paint(wf__cli_color(cli), wf_state_name(st->state), 0, state, sizeof state),
           st->error ? ": " : "", st->error ? st->error : "");
    return WF_CLI_OK;
}

int wf__cli_cmd_wait(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_TIMEOUT = 1 };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {NULL, 0, NULL, 0},
    };
    int64_t timeout_ms = 0;
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c != OPT_TIMEOUT || timeout_arg("wait", optarg, &timeout_ms) != WF_CLI_OK)
            return WF_CLI_USAGE;
    }
    int done;
    if (wf__cli_args(cli, argc, "wait", WAIT_USAGE, 1, 1, "wait wants one run id", &done))
        return done;
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    wf_run *run;
    wf_status st;
    wf_error err = {0};
    if (wf__cli_fetch(cli, argv[optind], &run, &st, &err) != WF_OK) return wf__cli_fail(&err);
    if (!wf_state_is_final(st.state)) wf__cli_warn_unserved(cli, wf_run_workflow_name(run), 0);
    wf__cli_progress p;
    wf__cli_progress_init(&p);
    rc = wf__cli_poll_final(run, &st, timeout_ms, wf__cli_progress_show, &p);
    wf__cli_progress_end(&p);
    if (rc == WF_CLI_OK || rc == WF_CLI_TIMEOUT) {
        int prc = print_outcome(cli, run, &st);
        rc = prc != WF_CLI_OK ? prc : wf__cli_wait_outcome(run, &st, rc, timeout_ms, 1);
    }
    wf_status_clear(&st);
    wf_run_free(run);
    return rc;
}

/* ---- status --follow -------------------------------------------------------------------------
 */

typedef struct follow {
    wf__cli *cli;
    int text;
    char *last;    /* JSON: the document printed last (compact), to print only changes */
    char **shown;  /* text: the timeline lines printed so far */
    size_t nshown; /* of shown */
} follow;

static int shown_before(follow *f, const char *line)
{
    for (size_t i = 0; i < f->nshown; i++)
        if (strcmp(f->shown[i], line) == 0) return 1;
    return 0;
}

/* Text: prints each line of the timeline not printed before, "TIME  EVENT  DETAIL". */
static int print_new_events(follow *f, json_t *timeline)
{
    size_t i;
    json_t *e;
    json_array_foreach(timeline, i, e)
    {
        char when[32], line[700];
        const char *detail = json_string_value(json_object_get(e, "detail"));
        const char *event = json_string_value(json_object_get(e, "event"));
        const char *at =
            wf__cli_format_time(json_integer_value(json_object_get(e, "at")), when, sizeof when);
        if (detail && *detail)
            snprintf(line, sizeof line, "%s  %-13s %s", at, event, detail);
        else
            snprintf(line, sizeof line, "%s  %s", at, event);
        if (shown_before(f, line)) continue;
        char **grown = realloc(f->shown, (f->nshown + 1) * sizeof *grown);
        if (!grown || !(grown[f->nshown] = strdup(line))) {
            if (grown) f->shown = grown;
            fputs("wf: out of memory\n", stderr);
            return WF_CLI_USAGE;
        }
        f->shown = grown;
        f->nshown++;
        puts(line);
    }
    return fflush(stdout) == 0 ? WF_CLI_OK : WF_CLI_USAGE;
}

/* A wf__cli_poll_fn: reads the steps, builds the detailed view and prints what changed. */
static int follow_poll(wf_run *run, const wf_status *st, void *arg)
{
    follow *f = arg;
    wf_step_info *steps = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_run_steps(run, &steps, &n, &err) != WF_OK) return wf__cli_fail(&err);
    json_t *doc = wf__cli_run_detail_json(wf_run_id(run), wf_run_workflow_name(run), st, steps, n);
    wf_steps_free(steps, n);
    if (!doc) return wf__cli_print_json(NULL);
    int rc = WF_CLI_OK;
    if (f->text) {
        rc = print_new_events(f, json_object_get(doc, "timeline"));
        json_decref(doc);
        return rc;
    }
    char *now = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!now) {
        json_decref(doc);
        return wf__cli_print_json(NULL);
    }
    if (!f->last || strcmp(now, f->last) != 0) {
        rc = wf__cli_print_json(doc); /* steals doc */
        doc = NULL;
        fflush(stdout);
    }
    json_decref(doc);
    free(f->last);
    f->last = now;
    return rc;
}

int wf__cli_follow(wf__cli *cli, const char *id, int text, int64_t timeout_ms)
{
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    wf_run *run;
    wf_status st;
    wf_error err = {0};
    if (wf__cli_fetch(cli, id, &run, &st, &err) != WF_OK) return wf__cli_fail(&err);
    if (!wf_state_is_final(st.state)) wf__cli_warn_unserved(cli, wf_run_workflow_name(run), 0);
    follow f = {cli, text, NULL, NULL, 0};
    rc = wf__cli_poll_final(run, &st, timeout_ms, follow_poll, &f);
    if (text && (rc == WF_CLI_OK || rc == WF_CLI_TIMEOUT)) {
        /* The whole view once the run ended (or the wait did): the summary after the log. */
        wf_step_info *steps = NULL;
        size_t n = 0;
        if (wf_run_steps(run, &steps, &n, &err) == WF_OK) {
            putchar('\n');
            wf__cli_print_run_text(stdout, wf_run_id(run), wf_run_workflow_name(run), &st, steps, n,
                                   wf__cli_color(cli));
            wf_steps_free(steps, n);
        }
    }
    rc = wf__cli_wait_outcome(run, &st, rc, timeout_ms, 1);
    for (size_t i = 0; i < f.nshown; i++) free(f.shown[i]);
    free(f.shown);
    free(f.last);
    wf_status_clear(&st);
    wf_run_free(run);
    return rc;
}
