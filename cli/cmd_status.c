/* cmd_status.c - `wf status ID` (getWorkflowRun + status()) and `wf stop ID` (stop()). */
#include <stdio.h>

#include "cli.h"
#include "status_json.h"

static const char STATUS_USAGE[] =
    "Usage: wf status ID\n"
    "\n"
    "Prints the status of run ID (e.g. publish-draft:01JD3M5S0RM3Y6ZC2W7D8X9A1B) as JSON.\n"
    "Exits 2 when there is no such run or ID is malformed.\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char STOP_USAGE[] =
    "Usage: wf stop ID\n"
    "\n"
    "Cancels run ID: a queued, waiting or paused run never starts; a running one is told to stop\n"
    "and whatever it returns afterwards is dropped. Prints the run's status afterwards.\n"
    "Exits 5 when the run had already finished (nothing changes), 2 when there is no such run.\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

/* Parses `wf CMD ID`: returns WF_CLI_OK with *id set, an exit code for a usage error, or -1 after
 * printing the help. */
static int parse_id(wf__cli *cli, int argc, char **argv, const char *usage, const char **id)
{
    static const struct option options[] = {WF__CLI_GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    if (wf__cli_getopt(cli, argc, argv, options) != -1) return WF_CLI_USAGE;
    if (cli->help) {
        fputs(usage, stdout);
        return -1;
    }
    if (argc - optind != 1) return wf__cli_usage_error(argv[0], "%s wants one run id", argv[0]);
    *id = argv[optind];
    return WF_CLI_OK;
}

/* Prints the status of an attached run. Returns an exit code. */
static int print_status(wf_run *run, const wf_status *st)
{
    return wf__cli_print_json(wf__cli_status_json(wf_run_id(run), wf_run_workflow_name(run), st));
}

int wf__cli_cmd_status(wf__cli *cli, int argc, char **argv)
{
    const char *id = NULL;
    int rc = parse_id(cli, argc, argv, STATUS_USAGE, &id);
    if (rc != WF_CLI_OK) return rc < 0 ? WF_CLI_OK : rc;
    if ((rc = wf__cli_connect(cli)) != WF_CLI_OK) return rc;
    wf_run *run;
    wf_status st = {0};
    wf_error err = {0};
    if (wf__cli_fetch(cli, id, &run, &st, &err) != WF_OK) return wf__cli_fail(&err);
    rc = print_status(run, &st);
    wf_status_clear(&st);
    wf_run_free(run);
    return rc;
}

int wf__cli_cmd_stop(wf__cli *cli, int argc, char **argv)
{
    const char *id = NULL;
    int rc = parse_id(cli, argc, argv, STOP_USAGE, &id);
    if (rc != WF_CLI_OK) return rc < 0 ? WF_CLI_OK : rc;
    if ((rc = wf__cli_connect(cli)) != WF_CLI_OK) return rc;
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
