/* cmd_workflow.c - holding a whole workflow: `wf pause-workflow W` (workers stop claiming its
 * queued runs; running ones go on, new ones are still queued) and `wf resume-workflow W`
 * (wf_workflow_pause / wf_workflow_resume). Each prints the workflow's state afterwards: one line
 * for people, or with --json {"workflow", "paused", "queued", "running"}. */
#include <stdio.h>

#include "cli.h"

static const char PAUSE_USAGE[] =
    "Usage: wf pause-workflow WORKFLOW [--force]\n"
    "\n"
    "Pauses WORKFLOW: workers stop claiming its queued runs until `wf resume-workflow`. Runs\n"
    "already running go on; new runs are still queued (and wait). Pausing a paused workflow\n"
    "changes nothing. `wf stats` shows which workflows are paused.\n"
    "\n"
    "Options:\n"
    "  --force        accept a WORKFLOW that no worker registered (refused otherwise, exit 6)\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char RESUME_USAGE[] =
    "Usage: wf resume-workflow WORKFLOW [--force]\n"
    "\n"
    "Lifts `wf pause-workflow`: workers claim WORKFLOW's queued runs again, within about a\n"
    "second. Resuming a workflow that is not paused changes nothing.\n"
    "\n"
    "Options:\n"
    "  --force        accept a WORKFLOW that no worker registered (refused otherwise, exit 6)\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static int pause_or_resume(wf__cli *cli, int argc, char **argv, int pause)
{
    const char *cmd = pause ? "pause-workflow" : "resume-workflow";
    int force;
    if (wf__cli_force_only(cli, argc, argv, &force) != WF_CLI_OK) return WF_CLI_USAGE;
    if (cli->help)
        return fputs(pause ? PAUSE_USAGE : RESUME_USAGE, stdout) == EOF ? WF_CLI_USAGE : WF_CLI_OK;
    if (argc - optind != 1) return wf__cli_usage_error(cmd, "%s wants one WORKFLOW", cmd);
    const char *workflow = argv[optind];
    int rc = wf__cli_connect(cli);
    if (rc == WF_CLI_OK) rc = wf__cli_check_workflow(cli, cmd, workflow, force);
    if (rc != WF_CLI_OK) return rc;
    wf_error err = {0};
    wf_stats *s = NULL;
    size_t n = 0;
    if ((pause ? wf_workflow_pause : wf_workflow_resume)(cli->client, workflow, &err) != WF_OK ||
        wf_workflow_stats(cli->client, workflow, &s, &n, &err) != WF_OK)
        return wf__cli_fail(&err);
    if (cli->json)
        rc =
            wf__cli_print_json(json_pack("{s:s, s:b, s:I, s:I}", "workflow", workflow, "paused",
                                         s->paused, "queued", (json_int_t)s->count[WF_STATE_QUEUED],
                                         "running", (json_int_t)s->count[WF_STATE_RUNNING]));
    else
        printf("%s: %s, %lld queued, %lld running\n", workflow,
               s->paused ? "paused (queued runs wait)" : "not paused", s->count[WF_STATE_QUEUED],
               s->count[WF_STATE_RUNNING]);
    wf_stats_free(s, n);
    return rc;
}

int wf__cli_cmd_pause_workflow(wf__cli *cli, int argc, char **argv)
{
    return pause_or_resume(cli, argc, argv, 1);
}

int wf__cli_cmd_resume_workflow(wf__cli *cli, int argc, char **argv)
{
    return pause_or_resume(cli, argc, argv, 0);
}
