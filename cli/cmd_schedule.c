/* cmd_schedule.c - `wf schedule add|list|remove|pause|resume|trigger`: schedules that start runs
 * on a cron expression or a fixed interval (wf_schedule_add / _list / _remove / _pause / _resume
 * / _trigger). Workers of the workflow fire them; see docs/scaling.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "Usage: wf schedule add ID WORKFLOW SPEC [JSON|-] [--catch-up one|all|none]\n"
    "       wf schedule list [--workflow W]\n"
    "       wf schedule remove ID [--workflow W]\n"
    "       wf schedule pause|resume|trigger ID [--workflow W]\n"
    "\n"
    "Schedules start a run of WORKFLOW with the JSON input at every firing of SPEC (UTC):\n"
    "  a cron expression 'MIN HOUR DOM MONTH DOW' (*, N, N-M, lists with ',', steps with '/',\n"
    "  names jan..dec and sun..sat), @hourly, @daily, @weekly, @monthly, @yearly, or\n"
    "  '@every DUR' (a fixed interval, e.g. @every 30s, @every 1h30m; at least 1s).\n"
    "Every firing starts exactly one run, id WORKFLOW:sched-ID-FIREMS, however many workers run.\n"
    "Adding an existing ID replaces it. A paused schedule fires no more until resumed; on resume\n"
    "its next firing is the first one after now (missed firings are skipped, whatever its\n"
    "catch-up). trigger starts one run now (id WORKFLOW:sched-ID-now-MS) without moving the\n"
    "next firing.\n"
    "\n"
    "  --catch-up P    firings missed while no worker ran: one (default: one run for all of\n"
    "                  them), all (a run for each), none (skip them)\n"
    "  --workflow W    list: only W's schedules; remove, pause, resume, trigger: W's schedule\n"
    "                  ID (default: every registered workflow's; pause, resume and trigger\n"
    "                  want W when several workflows have a schedule ID)\n"
    "  --force         list, remove, pause, resume, trigger: accept a --workflow that no\n"
    "                  worker registered (refused otherwise, exit 6, naming the closest\n"
    "                  registered names); add always refuses one (exit 6)\n";

/* ---- add ------------------------------------------------------------------------------------- */

static int cmd_add(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_CATCH_UP = 1 };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"catch-up", required_argument, NULL, OPT_CATCH_UP},
        {NULL, 0, NULL, 0},
    };
    wf_schedule_options so = {0};
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c != OPT_CATCH_UP) return WF_CLI_USAGE;
        int p = wf_catch_up_from_name(optarg);
        if (p < 0)
            return wf__cli_usage_error("schedule", "--catch-up wants one, all or none, not '%s'",
                                       optarg);
        so.catch_up = (wf_catch_up)p;
    }
    int done;
    if (wf__cli_args(cli, argc, "schedule", USAGE, 3, 4,
                     "schedule add wants ID WORKFLOW SPEC [JSON|-]", &done))
        return done;
    int npos = argc - optind;
    const char *id = argv[optind], *workflow = argv[optind + 1], *spec = argv[optind + 2];
    msgpack_sbuffer input;
    int rc = wf__cli_input_and_connect(cli, npos == 4 ? argv[optind + 3] : NULL, &input);
    if (rc == WF_CLI_OK) {
        wf_error err = {0};
        if (wf_schedule_add_ex(cli->client, id, workflow, spec, input.data, input.size, &so,
                               &err) != WF_OK) {
            rc = wf__cli_fail(&err);
            if (err.code == WF_ERR_INVALID) rc = WF_CLI_BAD_INPUT; /* a bad id or spec */
        } else if (cli->json) {
            rc = wf__cli_print_json(json_pack("{s:s, s:s, s:s, s:s}", "id", id, "workflow",
                                              workflow, "spec", spec, "catchUp",
                                              wf_catch_up_name(so.catch_up)));
        } else {
            printf("schedule %s added: %s runs on '%s' (catch-up %s)\n", id, workflow, spec,
                   wf_catch_up_name(so.catch_up));
        }
    }
    msgpack_sbuffer_destroy(&input);
    return rc;
}

/* ---- list ------------------------------------------------------------------------------------ */

static json_t *schedule_json(const wf_schedule_info *s)
{
    json_t *payload = json_null();
    if (s->payload) {
        char *text = NULL;
        if (wf_msgpack_to_json(s->payload, s->payload_len, &text, NULL) == WF_OK) {
            json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
            if (v) payload = v;
        }
        free(text);
    }
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:o, s:I, s:o, s:b}", "id", s->id, "workflow",
        s->workflow, "spec", s->spec, "input", payload, "catchUp", wf_catch_up_name(s->catch_up),
        "createdAt", (json_int_t)s->created_at_ms, "nextAt", (json_int_t)s->next_at_ms, "lastAt",
        s->last_at_ms ? json_integer(s->last_at_ms) : json_null(), "fires", (json_int_t)s->fires,
        "lastRun", s->last_run ? json_string(s->last_run) : json_null(), "paused", s->paused);
}

static int cmd_list(wf__cli *cli, int argc, char **argv)
{
    const char *workflow;
    int rc;
    if (wf__cli_workflow_args(cli, argc, argv, "schedule", USAGE, 0,
                              "schedule list takes no arguments", &workflow, &rc))
        return rc;
    wf_schedule_info *s = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_schedule_list(cli->client, workflow, &s, &n, &err) != WF_OK) return wf__cli_fail(&err);
    if (cli->json) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++) json_array_append_new(a, schedule_json(&s[i]));
        rc = wf__cli_print_json(a);
    } else if (n == 0) {
        printf("no schedules\n");
    } else {
        printf("%-20s  %-20s  %-22s  %-5s  %-20s  %-20s  %s\n", "ID", "WORKFLOW", "SPEC", "CATCH",
               "NEXT", "LAST", "FIRES");
        for (size_t i = 0; i < n; i++) {
            char id[24], wf[24], spec[24], next[32], last[32];
            printf("%-20s  %-20s  %-22s  %-5s  %-20s  %-20s  %lld\n",
                   wf__cli_cell(s[i].id, 20, id, sizeof id),
                   wf__cli_cell(s[i].workflow, 20, wf, sizeof wf),
                   wf__cli_cell(s[i].spec, 22, spec, sizeof spec), wf_catch_up_name(s[i].catch_up),
                   s[i].paused ? "paused" : wf__cli_format_time(s[i].next_at_ms, next, sizeof next),
                   wf__cli_format_time(s[i].last_at_ms, last, sizeof last), s[i].fires);
        }
    }
    wf_schedules_free(s, n);
    return rc;
}

/* ---- remove ---------------------------------------------------------------------------------- */

static int cmd_remove(wf__cli *cli, int argc, char **argv)
{
    const char *workflow;
    int rc;
    if (wf__cli_workflow_args(cli, argc, argv, "schedule", USAGE, 1, "schedule remove wants ID",
                              &workflow, &rc))
        return rc;
    const char *id = argv[optind];
    wf_error err = {0};
    if (wf_schedule_remove(cli->client, workflow, id, &err) != WF_OK) return wf__cli_fail(&err);
    if (cli->json) return wf__cli_print_json(json_pack("{s:s, s:b}", "id", id, "removed", 1));
    printf("schedule %s removed\n", id);
    return WF_CLI_OK;
}

/* ---- pause, resume, trigger ----------------------------------------------------------------- */

/* The workflow of schedule `id`: `workflow` when given, else the one registered workflow that has
 * it. Returns WF_CLI_OK with `out` filled, or the exit code after printing why not. */
static int schedule_workflow(wf__cli *cli, const char *id, const char *workflow, char *out,
                             size_t size)
{
    if (workflow) {
        snprintf(out, size, "%s", workflow);
        return WF_CLI_OK;
    }
    wf_schedule_info *s = NULL;
    size_t n = 0, found = 0;
    wf_error err = {0};
    if (wf_schedule_list(cli->client, NULL, &s, &n, &err) != WF_OK) return wf__cli_fail(&err);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].id, id) == 0 && found++ == 0) snprintf(out, size, "%s", s[i].workflow);
    wf_schedules_free(s, n);
    if (found == 0) {
        fprintf(stderr, "wf: no schedule '%s'\n", id);
        return WF_CLI_NOT_FOUND;
    }
    if (found > 1)
        return wf__cli_usage_error(
            "schedule", "%zu workflows have a schedule '%s': give --workflow", found, id);
    return WF_CLI_OK;
}

static int cmd_control(wf__cli *cli, int argc, char **argv)
{
    const char *workflow, *sub = argv[0];
    char why[64];
    snprintf(why, sizeof why, "schedule %s wants ID", sub);
    int rc;
    if (wf__cli_workflow_args(cli, argc, argv, "schedule", USAGE, 1, why, &workflow, &rc))
        return rc;
    const char *id = argv[optind];
    char wf[WF_RUN_ID_MAX], run_id[WF_RUN_ID_MAX] = "";
    rc = schedule_workflow(cli, id, workflow, wf, sizeof wf);
    if (rc != WF_CLI_OK) return rc;
    wf_error err = {0};
    int code = strcmp(sub, "pause") == 0 ? wf_schedule_pause(cli->client, wf, id, &err)
               : strcmp(sub, "resume") == 0
                   ? wf_schedule_resume(cli->client, wf, id, &err)
                   : wf_schedule_trigger(cli->client, wf, id, run_id, &err);
    if (code != WF_OK) return wf__cli_fail(&err);
    if (cli->json)
        return wf__cli_print_json(json_pack("{s:s, s:s, s:s, s:s*}", "id", id, "workflow", wf,
                                            "action", sub, "runId", run_id[0] ? run_id : NULL));
    if (run_id[0])
        printf("schedule %s of %s triggered: run %s\n", id, wf, run_id);
    else
        printf("schedule %s of %s %s\n", id, wf, strcmp(sub, "pause") == 0 ? "paused" : "resumed");
    return WF_CLI_OK;
}

int wf__cli_cmd_schedule(wf__cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? WF_CLI_USAGE : WF_CLI_OK;
    }
    /* The subcommand's own argv starts at its name, as a command's does. */
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0) return cmd_add(cli, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
        return cmd_list(cli, argc - 1, argv + 1);
    if (strcmp(sub, "remove") == 0 || strcmp(sub, "rm") == 0)
        return cmd_remove(cli, argc - 1, argv + 1);
    if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0 || strcmp(sub, "trigger") == 0)
        return cmd_control(cli, argc - 1, argv + 1);
    return wf__cli_usage_error(
        "schedule", "unknown schedule command '%s' (add, list, remove, pause, resume, trigger)",
        sub);
}
