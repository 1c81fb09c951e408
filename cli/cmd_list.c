/* cmd_list.c - `wf list` (recent runs, as a table or JSON) and `wf workflows` (registered
 * workflow names). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "status_json.h"

static const char LIST_USAGE[] =
    "Usage: wf list [--state S] [--workflow W] [--since T] [--until T] [--limit N] [--offset N]\n"
    "\n"
    "Lists runs, newest first (by last state change): a table, or with --json an array of\n"
    "statuses (see `wf --help` for their fields).\n"
    "\n"
    "Options:\n"
    "  --state S      only runs in state S: queued, running, paused, waiting, completed,\n"
    "                 failed, cancelled or terminated\n"
    "  --workflow W   only runs of workflow W (default: every registered workflow); a name no\n"
    "                 worker registered is refused (exit 6) unless --force\n"
    "  --since T      only runs whose last state change is at or after T: ms since the epoch,\n"
    "                 or a duration before now (500ms, 30s, 10m, 2h, 7d, 1h30m; this\n"
    "                 machine's clock)\n"
    "  --until T      only runs whose last state change is at or before T (same forms)\n"
    "  --limit N      at most N runs (default 100)\n"
    "  --offset N     skip the N newest matching runs first (the next page: --offset 100)\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char WORKFLOWS_USAGE[] =
    "Usage: wf workflows\n"
    "\n"
    "Lists the workflow names that workers have registered with this Redis (and key prefix),\n"
    "one per line, or with --json as an array of strings.\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

#define ERROR_COLUMN 40

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One row of the table: ID, STATE, ATTEMPT, CREATED, FINISHED, ERROR (cut to one short line). */
static void print_row(const char *id, const wf_status *st, int id_width, int color)
{
    char created[32], finished[32], error[ERROR_COLUMN + 1] = "-", state[48];
    if (st->error) {
        snprintf(error, sizeof error, "%s", st->error);
        for (char *p = error; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    }
    printf("%-*s  %s  %7d  %-20s  %-20s  %s\n", id_width, id,
           wf__cli_paint(color, wf_state_name(st->state), 10, state, sizeof state), st->attempt,
           wf__cli_format_time(st->created_at_ms, created, sizeof created),
           wf__cli_format_time(st->finished_at_ms, finished, sizeof finished), error);
}

/* Reads each run's status and prints the table or the JSON array. Runs that expired between the
 * listing and the read are skipped. Returns an exit code. */
static int print_runs(wf__cli *cli, char **ids, size_t count)
{
    json_t *array = cli->json ? json_array() : NULL;
    if (cli->json && !array) return wf__cli_print_json(NULL);
    int id_width = 2;
    for (size_t i = 0; i < count; i++)
        if ((int)strlen(ids[i]) > id_width) id_width = (int)strlen(ids[i]);
    if (!cli->json && count > 0)
        printf("%-*s  %-10s  %7s  %-20s  %-20s  %s\n", id_width, "ID", "STATE", "ATTEMPT",
               "CREATED", "FINISHED", "ERROR");
    for (size_t i = 0; i < count; i++) {
        wf_run *run;
        wf_status st = {0};
        wf_error err = {0};
        int code = wf__cli_fetch(cli, ids[i], &run, &st, &err);
        if (code == WF_ERR_NOT_FOUND) continue;
        if (code != WF_OK) {
            json_decref(array);
            return wf__cli_fail(&err);
        }
        if (array)
            json_array_append_new(array,
                                  wf__cli_status_json(ids[i], wf_run_workflow_name(run), &st));
        else
            print_row(ids[i], &st, id_width, wf__cli_color(cli));
        wf_status_clear(&st);
        wf_run_free(run);
    }
    if (array) return wf__cli_print_json(array);
    if (count == 0) puts("no runs");
    return WF_CLI_OK;
}

int wf__cli_cmd_list(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_STATE = 1, OPT_WORKFLOW, OPT_LIMIT, OPT_OFFSET, OPT_SINCE, OPT_UNTIL, OPT_FORCE };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"state", required_argument, NULL, OPT_STATE},
        {"workflow", required_argument, NULL, OPT_WORKFLOW},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"offset", required_argument, NULL, OPT_OFFSET},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    wf_list_options lo = {0};
    int force = 0;
    long long limit;
    int64_t now = now_ms();
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_STATE:
            lo.state = wf_state_from_name(optarg);
            if (lo.state == WF_STATE_UNKNOWN)
                return wf__cli_usage_error("list", "no state '%s'", optarg);
            break;
        case OPT_WORKFLOW:
            lo.workflow = optarg;
            break;
        case OPT_FORCE:
            force = 1;
            break;
        case OPT_LIMIT:
            if (wf__cli_parse_long(optarg, &limit) != 0 || limit == 0)
                return wf__cli_usage_error("list", "--limit wants a count > 0, not '%s'", optarg);
            lo.limit = (size_t)limit;
            break;
        case OPT_OFFSET:
            if (wf__cli_parse_long(optarg, &limit) != 0)
                return wf__cli_usage_error("list", "--offset wants a count, not '%s'", optarg);
            lo.offset = (size_t)limit;
            break;
        case OPT_SINCE:
        case OPT_UNTIL:
            if (wf__cli_parse_time(optarg, now, c == OPT_SINCE ? &lo.since_ms : &lo.until_ms) != 0)
                return wf__cli_usage_error("list",
                                           "--%s: '%s' is not a time; use a duration before "
                                           "now (e.g. 500ms, 10s, 10m, 7d) or ms since the "
                                           "epoch",
                                           c == OPT_SINCE ? "since" : "until", optarg);
            break;
        default:
            return WF_CLI_USAGE;
        }
    }
    int done;
    if (wf__cli_args(cli, argc, "list", LIST_USAGE, 0, 0, "list takes no arguments", &done))
        return done;
    if (lo.since_ms && lo.until_ms && lo.since_ms > lo.until_ms)
        return wf__cli_usage_error("list", "--since is after --until");
    int rc = wf__cli_check_workflow(cli, "list", lo.workflow, force);
    if (rc != WF_CLI_OK) return rc;
    char **ids = NULL;
    size_t count = 0;
    wf_error err = {0};
    if (wf_list_runs(cli->client, &lo, &ids, &count, &err) != WF_OK) return wf__cli_fail(&err);
    rc = print_runs(cli, ids, count);
    wf_list_free(ids, count);
    return rc;
}

int wf__cli_cmd_workflows(wf__cli *cli, int argc, char **argv)
{
    static const struct option options[] = {WF__CLI_GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    if (wf__cli_getopt(cli, argc, argv, options) != -1) return WF_CLI_USAGE;
    int done;
    if (wf__cli_args(cli, argc, "workflows", WORKFLOWS_USAGE, 0, 0, "workflows takes no arguments",
                     &done))
        return done;
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    char **names = NULL;
    size_t count = 0;
    wf_error err = {0};
    if (wf_list_workflows(cli->client, &names, &count, &err) != WF_OK) return wf__cli_fail(&err);
    if (cli->json) {
        json_t *array = json_array();
        for (size_t i = 0; array && i < count; i++)
            json_array_append_new(array, json_string(names[i]));
        rc = wf__cli_print_json(array);
    } else {
        for (size_t i = 0; i < count; i++) puts(names[i]);
    }
    wf_list_free(names, count);
    return rc;
}
