/* cmd_run.c - `wf run NAME [JSON|-]`: start a run (runWorkflow), optionally wait for its end. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "run_view.h"
#include "status_json.h"

static const char USAGE[] =
    "Usage: wf run NAME [JSON|-] [--wait [--timeout DUR]] [--id SUFFIX] [--delay DUR]\n"
    "              [--priority high|normal|low]\n"
    "\n"
    "Starts a run of workflow NAME and prints {\"runId\": ..., \"status\": {...}}. The input\n"
    "is the JSON argument, JSON read from stdin when it is \"-\", or nothing when it is omitted.\n"
    "\n"
    "Options:\n"
    "  --wait             poll the run until it is final, then print the final status; exits 0\n"
    "                     if it completed, 4 if it failed, was terminated or cancelled (`wf wait`\n"
    "                     tells those apart). Shows\n"
    "                     progress on stderr: a live line (state, step, time) on a terminal,\n"
    "                     a line per change otherwise\n"
    "  --timeout DUR      with --wait: give up after DUR (e.g. 30s, 2m; a bare number is\n"
    "                     seconds), print the last status and exit 7 (the run goes on);\n"
    "                     default or 0: no limit\n"
    "  --id SUFFIX        the run's id becomes NAME:SUFFIX ([A-Za-z0-9._-]); starting an id that\n"
    "                     exists returns that run instead of a new one\n"
    "  --delay DUR        start no earlier than DUR from now (e.g. 500ms, 10m, 2h; a bare\n"
    "                     number is milliseconds)\n"
    "  --priority P       high, normal (the default) or low: a worker with a free slot takes\n"
    "                     ready runs of high before normal before low; kept for the run's\n"
    "                     retries and restarts\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n"
    "Durations: NUMBER UNIT with ms, s, m, h or d (500ms, 1.5h, 1h30m).\n";

/* Waits for the run to be final (or `timeout_ms`, 0: no limit), showing progress on stderr.
 * Leaves the last status read in `st`. Returns 0 completed, 4 failed, terminated or cancelled, 7
 * timed out, or another exit code. */
static int wait_final(wf__cli *cli, wf_run *run, wf_status *st, int64_t timeout_ms)
{
    if (!wf_state_is_final(st->state)) wf__cli_warn_unserved(cli, wf_run_workflow_name(run), 0);
    wf__cli_progress p;
    wf__cli_progress_init(&p);
    int rc = wf__cli_poll_final(run, st, timeout_ms, wf__cli_progress_show, &p);
    wf__cli_progress_end(&p);
    if (rc == WF_CLI_OK && st->state != WF_STATE_COMPLETED)
        fprintf(stderr, "wf: run '%s' ended %s%s%s\n", wf_run_id(run), wf_state_name(st->state),
                st->error ? ": " : "", st->error ? st->error : "");
    return wf__cli_wait_outcome(run, st, rc, timeout_ms, 0);
}

int wf__cli_cmd_run(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_WAIT = 1, OPT_TIMEOUT, OPT_ID, OPT_DELAY, OPT_PRIORITY };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"wait", no_argument, NULL, OPT_WAIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"id", required_argument, NULL, OPT_ID},
        {"delay", required_argument, NULL, OPT_DELAY},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {NULL, 0, NULL, 0},
    };
    int wait = 0, has_timeout = 0;
    int64_t timeout_ms = 0;
    wf_run_options run_opts = {0};
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_WAIT:
            wait = 1;
            break;
        case OPT_TIMEOUT:
            if (wf__cli_duration_arg("run", "--timeout", optarg, 1000, &timeout_ms) != WF_CLI_OK)
                return WF_CLI_USAGE;
            has_timeout = 1;
            break;
        case OPT_ID:
            run_opts.id = optarg;
            break;
        case OPT_DELAY:
            if (wf__cli_duration_arg("run", "--delay", optarg, 1, &run_opts.delay_ms) != WF_CLI_OK)
                return WF_CLI_USAGE;
            break;
        case OPT_PRIORITY: {
            wf_priority p;
            if (wf_priority_from_name(optarg, &p, NULL) != WF_OK)
                return wf__cli_usage_error("run", "--priority wants high, normal or low, not '%s'",
                                           optarg);
            run_opts.priority = p;
            break;
        }
        default:
            return WF_CLI_USAGE;
        }
    }
    int done;
    if (wf__cli_args(cli, argc, "run", USAGE, 1, 2,
                     "run wants a workflow name and at most one JSON input", &done))
        return done;
    int npos = argc - optind;
    if (has_timeout && !wait) return wf__cli_usage_error("run", "--timeout only goes with --wait");
    const char *name = argv[optind];
    const char *json = npos == 2 ? argv[optind + 1] : NULL;

    msgpack_sbuffer input;
    int rc = wf__cli_input_and_connect(cli, json, &input);
    wf_run *run = NULL;
    wf_status st = {0};
    wf_error err = {0};
    if (rc == WF_CLI_OK) {
        run = wf_run_workflow_ex(cli->client, name, input.data, input.size, &run_opts, &err);
        if (!run || wf_run_status(run, &st, &err) != WF_OK) rc = wf__cli_fail(&err);
    }
    msgpack_sbuffer_destroy(&input);
    if (rc == WF_CLI_OK && wait) rc = wait_final(cli, run, &st, timeout_ms);
    /* Print the run whenever it exists, also when --wait ended in failure or timed out. */
    if (run && (rc == WF_CLI_OK || rc == WF_CLI_RUN_FAILED || rc == WF_CLI_TIMEOUT)) {
        int prc = wf__cli_print_json(wf__cli_run_json(run, &st));
        if (prc != WF_CLI_OK) rc = prc;
    }
    wf_status_clear(&st);
    wf_run_free(run);
    return rc;
}
