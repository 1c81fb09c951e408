/* cmd_control.c - changing a run's course by hand: `wf pause ID`, `wf resume ID`,
 * `wf restart ID [--clear-steps]` and `wf retry ID` (a finished run that did not complete, as a
 * new attempt). Each prints the run's state afterwards: one line for people, or with --json the
 * status object of `wf status`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "status_json.h"

static const char PAUSE_USAGE[] =
    "Usage: wf pause ID\n"
    "\n"
    "Holds run ID (queued, waiting or running) until `wf resume`. A running run loses its\n"
    "worker, whose later results are dropped; on resume it replays from its last recorded step.\n"
    "Prints the run's new state (with --json its status). Exits 5 when the run had already\n"
    "finished, 8 when it is already paused, 2 when there is no such run.\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char RESUME_USAGE[] =
    "Usage: wf resume ID\n"
    "\n"
    "Lets a paused run go on: back to waiting if its timer is still ahead, else queued.\n"
    "Prints the run's new state (with --json its status). Exits 8 when the run is not paused,\n"
    "5 when it had already finished, 2 when there is no such run.\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char RESTART_USAGE[] =
    "Usage: wf restart ID [--clear-steps]\n"
    "\n"
    "Runs run ID again from the start as a new attempt, whatever its state (a running run loses\n"
    "its worker). Recorded steps replay from their records unless --clear-steps is given.\n"
    "Prints the run's new state (with --json its status). Exits 2 when there is no such run.\n"
    "\n"
    "Options:\n"
    "  --clear-steps  forget the recorded steps, so every step executes again\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char RETRY_USAGE[] =
    "Usage: wf retry ID\n"
    "       wf retry --state S [--workflow W] [--since T] [--until T] [--dry-run | --yes]\n"
    "\n"
    "Runs a failed, terminated or cancelled run again as a new attempt; steps that finished\n"
    "replay from their records (as `wf restart ID`). Refuses a run that has not ended, or that\n"
    "completed (use `wf restart` to run those again): exit 8. Exits 2 when there is no such run.\n"
    "\n"
    "With --state instead of an id, retries every run in state S (failed, cancelled or\n"
    "terminated) of workflow W (default: every registered workflow) whose last state change is\n"
    "in [--since, --until] (as for `wf list`), one run at a time; a run that left S meanwhile is\n"
    "skipped. Prints a line per run and \"retried N of M ...\" (with --json one object: action,\n"
    "workflow, state, dryRun, count, ids, acted, skipped, failed).\n"
    "  --dry-run      print how many runs and which would be retried; retry none\n"
    "  --yes          do not ask: required when stdin is not a terminal (on a terminal,\n"
    "                 retry asks \"Retry N failed runs of W? [y/N]\" first)\n"
    "  --force        accept a --workflow that no worker registered\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

/* Prints the run after `verb`: "ID: VERB, now STATE", or its status with --json. */
static int report(wf__cli *cli, wf_run *run, const char *verb)
{
    wf_status st = {0};
    wf_error err = {0};
    if (wf_run_status(run, &st, &err) != WF_OK) return wf__cli_fail(&err);
    int rc = WF_CLI_OK;
    if (cli->json) {
        rc =
            wf__cli_print_json(wf__cli_status_json(wf_run_id(run), wf_run_workflow_name(run), &st));
    } else {
        char when[32], state[48];
        printf("%s: %s, now %s", wf_run_id(run), verb,
               wf__cli_paint(wf__cli_color(cli), wf_state_name(st.state), 0, state, sizeof state));
        if (st.state == WF_STATE_WAITING && st.wake_at_ms > 0)
            printf(" (%s until %s)", st.wait_reason ? st.wait_reason : "timer",
                   wf__cli_format_time(st.wake_at_ms, when, sizeof when));
        if (strcmp(verb, "restarted") == 0 || strcmp(verb, "retried") == 0)
            printf(", attempt %d", st.attempt);
        putchar('\n');
    }
    wf_status_clear(&st);
    return rc;
}

typedef enum action { PAUSE, RESUME, RESTART, RETRY } action;

static int control(wf__cli *cli, int argc, char **argv, action what)
{
    enum { OPT_CLEAR = 1 };
    static const struct option plain[] = {WF__CLI_GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    static const struct option restart[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"clear-steps", no_argument, NULL, OPT_CLEAR},
        {NULL, 0, NULL, 0},
    };
    static const struct option retry[] = {
        WF__CLI_GLOBAL_OPTIONS,
        WF__CLI_BULK_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const usage[] = {PAUSE_USAGE, RESUME_USAGE, RESTART_USAGE, RETRY_USAGE};
    const struct option *options = what == RESTART ? restart : what == RETRY ? retry : plain;
    wf__cli_bulk bulk = {0};
    int clear = 0, c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c == OPT_CLEAR)
            clear = 1;
        else if (wf__cli_bulk_option(&bulk, argv[0], c, optarg) != 1)
            return WF_CLI_USAGE;
    }
    if (cli->help) return fputs(usage[what], stdout) == EOF ? WF_CLI_USAGE : WF_CLI_OK;
    if (what == RETRY && bulk.given && argc != optind)
        return wf__cli_usage_error("retry", "give a run id or select runs with --state, not both");
    if (what == RETRY && (bulk.given || argc == optind))
        return wf__cli_bulk_run(cli, "retry", WF__BULK_RETRY, &bulk);
    if (argc - optind != 1) return wf__cli_usage_error(argv[0], "%s wants one run id", argv[0]);
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    wf_error err = {0};
    wf_run *run = wf_get_workflow_run(cli->client, argv[optind], &err);
    if (!run) return wf__cli_fail(&err);
    int code = WF_OK;
    const char *verb = "";
    switch (what) {
    case PAUSE:
        code = wf_run_pause(run, &err);
        verb = "paused";
        break;
    case RESUME:
        code = wf_run_resume(run, &err);
        verb = "resumed";
        break;
    case RESTART:
        code = wf_run_restart(run, clear, &err);
        verb = "restarted";
        break;
    case RETRY: {
        wf_status st = {0};
        code = wf_run_status(run, &st, &err);
        if (code == WF_OK && (!wf_state_is_final(st.state) || st.state == WF_STATE_COMPLETED))
            code = wf_error_set(&err, WF_ERR_STATE,
                                "run '%s' is %s: retry is for runs that ended failed, terminated "
                                "or cancelled (`wf restart %s` runs it again anyway)",
                                wf_run_id(run), wf_state_name(st.state), wf_run_id(run));
        wf_status_clear(&st);
        if (code == WF_OK) code = wf_run_restart(run, 0, &err);
        verb = "retried";
        break;
    }
    }
    rc = code == WF_OK ? report(cli, run, verb) : wf__cli_fail(&err);
    wf_run_free(run);
    return rc;
}

int wf__cli_cmd_pause(wf__cli *cli, int argc, char **argv)
{
    return control(cli, argc, argv, PAUSE);
}

int wf__cli_cmd_resume(wf__cli *cli, int argc, char **argv)
{
    return control(cli, argc, argv, RESUME);
}

int wf__cli_cmd_restart(wf__cli *cli, int argc, char **argv)
{
    return control(cli, argc, argv, RESTART);
}

int wf__cli_cmd_retry(wf__cli *cli, int argc, char **argv)
{
    return control(cli, argc, argv, RETRY);
}
