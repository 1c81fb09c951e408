/* cmd_retention.c - `wf retention WORKFLOW [--completed P] [--failed P]`: show or set how long a
 * workflow's finished runs are kept (wf_workflow_retention_set): for a time, the last N, or none.
 * A policy P is `default`, `none`, a duration (`7d`), `last:N`, or a duration and a count
 * (`7d,last:1000`). Prints the policies afterwards, or with --json
 * {"workflow", "completed": {"keepMs", "keepLast", "keepNone"}, "failed": {...}}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "Usage: wf retention WORKFLOW [--completed POLICY] [--failed POLICY] [--force]\n"
    "\n"
    "Shows, or sets, how long WORKFLOW's finished runs are kept in Redis: --completed for\n"
    "completed runs, --failed for failed, cancelled and terminated ones. It holds for every\n"
    "worker at once, for the runs that end from then on. POLICY is one of:\n"
    "  default         the connection's retention (?retention= in the URL; 7 days unless set)\n"
    "  none            remove each run as it ends (its end still counts in the history chart)\n"
    "  DURATION        keep each run that long after it ended (30m, 12h, 7d)\n"
    "  last:N          keep the newest N runs of each final state\n"
    "  DURATION,last:N both: a run goes when either says so\n"
    "\n"
    "Options:\n"
    "  --force        accept a WORKFLOW that no worker registered (refused otherwise, exit 6)\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

/* Parses POLICY `s` of option `opt` into `p`. WF_CLI_OK or WF_CLI_USAGE (said why). */
static int parse_policy(const char *opt, const char *s, wf_retention *p)
{
    memset(p, 0, sizeof *p);
    if (strcmp(s, "default") == 0) return WF_CLI_OK;
    if (strcmp(s, "none") == 0) {
        p->keep_none = 1;
        return WF_CLI_OK;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *part = strtok_r(buf, ",", &save); part;
         part = strtok_r(NULL, ",", &save)) {
        long long n = 0;
        if (strncmp(part, "last:", 5) == 0) {
            if (wf__cli_parse_long(part + 5, &n) != 0 || n <= 0 || p->keep_last)
                return wf__cli_usage_error("retention", "%s: '%s' wants last:N with N > 0", opt, s);
            p->keep_last = (long)n;
        } else if (p->keep_ms ||
                   wf__cli_duration_arg("retention", opt, part, 1, &p->keep_ms) != WF_CLI_OK) {
            return WF_CLI_USAGE;
        }
    }
    if (!p->keep_ms && !p->keep_last)
        return wf__cli_usage_error("retention", "%s: '%s' is not a policy (see --help)", opt, s);
    return WF_CLI_OK;
}

static json_t *policy_json(const wf_retention *p)
{
    return json_pack("{s:I, s:I, s:b}", "keepMs", (json_int_t)p->keep_ms, "keepLast",
                     (json_int_t)p->keep_last, "keepNone", p->keep_none);
}

static void policy_print(const char *kind, const wf_retention *p)
{
    char d[32];
    wf__cli_format_duration(p->keep_ms, d, sizeof d);
    printf("%-10s ", kind);
    if (p->keep_none)
        printf("none: removed as they end\n");
    else if (!p->keep_ms && !p->keep_last)
        printf("default: the connection's retention\n");
    else if (p->keep_ms && p->keep_last)
        printf("%s after they end, at most the last %ld\n", d, p->keep_last);
    else if (p->keep_ms)
        printf("%s after they end\n", d);
    else
        printf("the last %ld\n", p->keep_last);
}

int wf__cli_cmd_retention(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_COMPLETED = 1, OPT_FAILED, OPT_FORCE };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"completed", required_argument, NULL, OPT_COMPLETED},
        {"failed", required_argument, NULL, OPT_FAILED},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    wf_retention set[2];
    int given[2] = {0, 0}, force = 0, c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c == OPT_FORCE) {
            force = 1;
        } else if (c == OPT_COMPLETED || c == OPT_FAILED) {
            int k = c == OPT_FAILED;
            if (parse_policy(k ? "--failed" : "--completed", optarg, &set[k]) != WF_CLI_OK)
                return WF_CLI_USAGE;
            given[k] = 1;
        } else {
            return WF_CLI_USAGE;
        }
    }
    if (cli->help) return fputs(USAGE, stdout) == EOF ? WF_CLI_USAGE : WF_CLI_OK;
    if (argc - optind != 1) return wf__cli_usage_error("retention", "retention wants one WORKFLOW");
    const char *workflow = argv[optind];
    int rc = wf__cli_connect(cli);
    if (rc == WF_CLI_OK) rc = wf__cli_check_workflow(cli, "retention", workflow, force);
    if (rc != WF_CLI_OK) return rc;
    wf_error err = {0};
    wf_retention now[2];
    if (wf_workflow_retention_get(cli->client, workflow, &now[0], &now[1], &err) != WF_OK)
        return wf__cli_fail(&err);
    if (given[0] || given[1]) {
        for (int k = 0; k < 2; k++)
            if (given[k]) now[k] = set[k];
        if (wf_workflow_retention_set(cli->client, workflow, &now[0], &now[1], &err) != WF_OK)
            return wf__cli_fail(&err);
    }
    if (cli->json)
        return wf__cli_print_json(json_pack("{s:s, s:o, s:o}", "workflow", workflow, "completed",
                                            policy_json(&now[0]), "failed", policy_json(&now[1])));
    printf("%s\n", workflow);
    policy_print("completed", &now[0]);
    policy_print("failed", &now[1]);
    return WF_CLI_OK;
}
