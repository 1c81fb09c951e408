/* cmd_status.c - `wf status ID` (getWorkflowRun + status(), with steps and timeline), `wf steps ID`
 * (the recorded steps alone) and `wf stop ID` (stop()). */
#include <stdio.h>

#include "cli.h"
#include "run_view.h"
#include "status_json.h"

static const char STATUS_USAGE[] =
    "Usage: wf status ID [--text] [--follow [--timeout DUR]]\n"
    "\n"
    "Prints run ID (e.g. publish-draft:01JD3M5S0RM3Y6ZC2W7D8X9A1B) as JSON: the status (see\n"
    "`wf --help`) plus \"step\" (the step it is on), \"pausedFrom\", \"reclaims\", \"priority\"\n"
    "(high, normal or low), \"input\", \"steps\" (each recorded step: name, kind, status,\n"
    "attempts, startedAt, finishedAt, durationMs, until, error, event, eventKey, result) and\n"
    "\"timeline\" ([{at, event, detail}]).\n"
    "\n"
    "Options:\n"
    "  --text         the same for people: state with the waiting reason and wake time,\n"
    "                 priority (when not normal), attempt, worker, last error, times, output,\n"
    "                 then a table of the steps\n"
    "  --follow       keep watching until the run is final: print the run again each time it\n"
    "                 changes (one JSON document per change; one line each when piped), or\n"
    "                 with --text each new line of its timeline (TIME EVENT DETAIL) and the\n"
    "                 whole text view at the end. Exits as `wf wait` does: 0 completed,\n"
    "                 4 failed, 10 cancelled, 11 terminated, 7 timed out\n"
    "  --timeout DUR  with --follow: stop watching after DUR (e.g. 30s, 10m; a bare number is\n"
    "                 seconds); exit 7\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n"
    "Exits 2 when there is no such run or ID is malformed.\n";

static const char STEPS_USAGE[] =
    "Usage: wf steps ID\n"
    "\n"
    "Prints the steps run ID has recorded, oldest first: a table (STEP, KIND, STATUS, ATTEMPTS,\n"
    "STARTED, DURATION, UNTIL, ERROR), or with --json the \"steps\" array of `wf status`.\n"
    "Exits 2 when there is no such run or ID is malformed.\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char STOP_USAGE[] =
    "Usage: wf stop ID\n"
    "       wf stop --state S [--workflow W] [--since T] [--until T] [--dry-run | --yes]\n"
    "\n"
    "Cancels run ID: a queued, waiting or paused run never starts; a running one is told to stop\n"
    "and whatever it returns afterwards is dropped. Prints the run's status afterwards.\n"
    "Exits 5 when the run had already finished (nothing changes), 2 when there is no such run.\n"
    "\n"
    "With --state instead of an id, cancels every run in state S (queued, running, waiting or\n"
    "paused) of workflow W (default: every registered workflow) whose last state change is in\n"
    "[--since, --until] (as for `wf list`), one run at a time; a run that left S meanwhile is\n"
    "skipped. Prints a line per run and \"stopped N of M ...\" (with --json one object:\n"
    "action, workflow, state, dryRun, count, ids, acted, skipped, failed).\n"
    "  --dry-run      print how many runs and which would be stopped; stop none\n"
    "  --yes          do not ask: required when stdin is not a terminal (on a terminal,\n"
    "                 stop asks \"Stop N queued runs of W? [y/N]\" first)\n"
    "  --force        accept a --workflow that no worker registered\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

/* Prints the status of an attached run. Returns an exit code. */
static int print_status(wf_run *run, const wf_status *st)
{
    return wf__cli_print_json(wf__cli_status_json(wf_run_id(run), wf_run_workflow_name(run), st));
}

int wf__cli_cmd_status(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_TEXT = 1, OPT_FOLLOW, OPT_TIMEOUT };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"text", no_argument, NULL, OPT_TEXT},
        {"follow", no_argument, NULL, OPT_FOLLOW},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {NULL, 0, NULL, 0},
    };
    int text = 0, follow = 0, has_timeout = 0, c;
    int64_t timeout_ms = 0;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c == OPT_TEXT) {
            text = 1;
        } else if (c == OPT_FOLLOW) {
            follow = 1;
        } else if (c == OPT_TIMEOUT) {
            if (wf__cli_duration_arg("status", "--timeout", optarg, 1000, &timeout_ms) != WF_CLI_OK)
                return WF_CLI_USAGE;
            has_timeout = 1;
        } else {
            return WF_CLI_USAGE;
        }
    }
    int done;
    if (wf__cli_args(cli, argc, "status", STATUS_USAGE, 1, 1, "status wants one run id", &done))
        return done;
    if (text && cli->json)
        return wf__cli_usage_error("status", "--text and --json exclude each other");
    if (has_timeout && !follow)
        return wf__cli_usage_error("status", "--timeout only goes with --follow");
    if (follow) return wf__cli_follow(cli, argv[optind], text, timeout_ms);
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    wf_run *run;
    wf_status st;
    wf_step_info *steps;
    size_t n;
    wf_error err = {0};
    if (wf__cli_fetch_detail(cli->client, argv[optind], &run, &st, &steps, &n, &err) != WF_OK)
        return wf__cli_fail(&err);
    if (text)
        wf__cli_print_run_text(stdout, wf_run_id(run), wf_run_workflow_name(run), &st, steps, n,
                               wf__cli_color(cli));
    else
        rc = wf__cli_print_json(
            wf__cli_run_detail_json(wf_run_id(run), wf_run_workflow_name(run), &st, steps, n));
    wf_steps_free(steps, n);
    wf_status_clear(&st);
    wf_run_free(run);
    return rc;
}

int wf__cli_cmd_steps(wf__cli *cli, int argc, char **argv)
{
    const char *id = NULL;
    int rc = wf__cli_parse_id(cli, argc, argv, STEPS_USAGE, &id);
    if (rc != WF_CLI_OK) return rc < 0 ? WF_CLI_OK : rc;
    if ((rc = wf__cli_connect(cli)) != WF_CLI_OK) return rc;
    wf_error err = {0};
    wf_run *run = wf_get_workflow_run(cli->client, id, &err);
    if (!run) return wf__cli_fail(&err);
    wf_step_info *steps = NULL;
    size_t n = 0;
    if (wf_run_steps(run, &steps, &n, &err) != WF_OK)
        rc = wf__cli_fail(&err);
    else if (cli->json)
        rc = wf__cli_print_json(wf__cli_steps_json(steps, n));
    else
        wf__cli_print_steps_table(stdout, steps, n, wf__cli_color(cli));
    wf_steps_free(steps, n);
    wf_run_free(run);
    return rc;
}

int wf__cli_cmd_stop(wf__cli *cli, int argc, char **argv)
{
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        WF__CLI_BULK_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    wf__cli_bulk bulk = {0};
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1)
        if (wf__cli_bulk_option(&bulk, "stop", c, optarg) != 1) return WF_CLI_USAGE;
    if (cli->help) return fputs(STOP_USAGE, stdout) == EOF ? WF_CLI_USAGE : WF_CLI_OK;
    if (bulk.given && argc != optind)
        return wf__cli_usage_error("stop", "give a run id or select runs with --state, not both");
    if (bulk.given || argc == optind) return wf__cli_bulk_run(cli, "stop", WF__BULK_STOP, &bulk);
    if (argc - optind != 1) return wf__cli_usage_error("stop", "stop wants one run id");
    const char *id = argv[optind];
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    wf_error err = {0};
    wf_run *run = wf_get_workflow_run(cli->client, id, &err);
    if (!run) return wf__cli_fail(&err);
    wf_status st = {0};
    if (wf_run_stop(run, &err) != WF_OK || wf_run_status(run, &st, &err) != WF_OK)
        rc = wf__cli_fail(&err);
    else
        rc = print_status(run, &st);
    wf_status_clear(&st);
    wf_run_free(run);
    return rc;
}
