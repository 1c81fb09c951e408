/* cmd_limit.c - `wf limit WORKFLOW [...]`: show or set a workflow's flow limits (wf_flow_get /
 * wf_flow_set): how many of its runs may run at once, in all and per key of their input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "Usage: wf limit WORKFLOW [--max-running N] [--key FIELD] [--per-key K]\n"
    "                         [--rate N --per DUR [--rate-per-key]] [--singleton|--no-singleton]\n"
    "                         [--debounce DUR] [--clear] [--force]\n"
    "\n"
    "Shows, or sets, how many runs of WORKFLOW may run at once across all workers. Runs over a\n"
    "limit wait (state waiting, waitReason \"concurrency limit: ...\" or \"key limit: ...\")\n"
    "without holding a worker slot, and start oldest first as running ones end.\n"
    "\n"
    "  --max-running N  at most N runs of WORKFLOW running (0: no limit)\n"
    "  --key FIELD      group runs by the value of FIELD in their input object\n"
    "  --per-key K      at most K running runs per value of --key (0: no limit)\n"
    "  --rate N         at most N starts per --per DUR, spread evenly (one every DUR/N;\n"
    "                   0: no rate limit)\n"
    "  --per DUR        the rate's period: a duration (1s, 10m; a bare number is ms)\n"
    "  --rate-per-key   the rate applies to each value of --key on its own\n"
    "  --singleton      at most one run per value of --key (or of WORKFLOW) queued, running,\n"
    "                   waiting or paused: `wf run` then answers with the one that stands\n"
    "  --no-singleton   turn that off\n"
    "  --debounce DUR   a run starts DUR after the last start request for its key (0: off;\n"
    "                   500ms, 10s; a bare number is ms)\n"
    "  --clear          remove every limit\n"
    "  --force          accept a WORKFLOW that no worker registered (refused otherwise, exit 6,\n"
    "                   naming the registered names closest to it: a typo would store a limit\n"
    "                   that nothing reads)\n"
    "Options not given keep their current value. Prints the limits and how many runs are held.\n";

/* Option `option`'s value `s` as a count (0 to 1,000,000) in *out: returns WF_CLI_OK, or
 * WF_CLI_USAGE after saying why. */
static int parse_count(const char *option, const char *s, int *out)
{
    long long v;
    if (wf__cli_parse_long(s, &v) != 0 || v > 1000000)
        return wf__cli_usage_error("limit", "%s wants a count, not '%s'", option, s);
    *out = (int)v;
    return WF_CLI_OK;
}

int wf__cli_cmd_limit(wf__cli *cli, int argc, char **argv)
{
    enum {
        OPT_MAX = 1,
        OPT_KEY,
        OPT_PER_KEY,
        OPT_CLEAR,
        OPT_RATE,
        OPT_PER,
        OPT_RATE_PER_KEY,
        OPT_SINGLETON,
        OPT_NO_SINGLETON,
        OPT_DEBOUNCE,
        OPT_FORCE
    };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"max-running", required_argument, NULL, OPT_MAX},
        {"key", required_argument, NULL, OPT_KEY},
        {"per-key", required_argument, NULL, OPT_PER_KEY},
        {"clear", no_argument, NULL, OPT_CLEAR},
        {"rate", required_argument, NULL, OPT_RATE},
        {"per", required_argument, NULL, OPT_PER},
        {"rate-per-key", no_argument, NULL, OPT_RATE_PER_KEY},
        {"singleton", no_argument, NULL, OPT_SINGLETON},
        {"no-singleton", no_argument, NULL, OPT_NO_SINGLETON},
        {"debounce", required_argument, NULL, OPT_DEBOUNCE},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    int max = -1, per_key = -1, clear = 0, rate = -1, rate_per_key = 0, c, singleton = -1;
    int force = 0;
    int64_t per = -1, debounce = -1;
    const char *key = NULL;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_MAX:
            if (parse_count("--max-running", optarg, &max) != WF_CLI_OK) return WF_CLI_USAGE;
            break;
        case OPT_PER_KEY:
            if (parse_count("--per-key", optarg, &per_key) != WF_CLI_OK) return WF_CLI_USAGE;
            break;
        case OPT_KEY:
            key = optarg;
            break;
        case OPT_CLEAR:
            clear = 1;
            break;
        case OPT_RATE:
            if (parse_count("--rate", optarg, &rate) != WF_CLI_OK) return WF_CLI_USAGE;
            break;
        case OPT_PER:
            if (wf__cli_duration_arg("limit", "--per", optarg, 1, &per) != WF_CLI_OK)
                return WF_CLI_USAGE;
            if (per == 0) return wf__cli_usage_error("limit", "--per wants a period > 0");
            break;
        case OPT_RATE_PER_KEY:
            rate_per_key = 1;
            break;
        case OPT_FORCE:
            force = 1;
            break;
        case OPT_SINGLETON:
        case OPT_NO_SINGLETON:
            singleton = c == OPT_SINGLETON;
            break;
        case OPT_DEBOUNCE:
            if (wf__cli_duration_arg("limit", "--debounce", optarg, 1, &debounce) != WF_CLI_OK)
                return WF_CLI_USAGE;
            break;
        default:
            return WF_CLI_USAGE;
        }
    }
    int done;
    if (wf__cli_args(cli, argc, "limit", USAGE, 1, 1, "limit wants one WORKFLOW", &done))
        return done;
    const char *workflow = argv[optind];
    int rc = wf__cli_check_workflow(cli, "limit", workflow, force);
    if (rc != WF_CLI_OK) return rc;
    wf_error err = {0};
    wf_flow_limits l;
    char keybuf[128];
    long long held = 0;
    if (wf_flow_get(cli->client, workflow, &l, keybuf, sizeof keybuf, &held, &err) != WF_OK)
        return wf__cli_fail(&err);
    if (clear || max >= 0 || per_key >= 0 || key || rate >= 0 || per >= 0 || rate_per_key ||
        singleton >= 0 || debounce >= 0) {
        if (clear) memset(&l, 0, sizeof l);
        if (max >= 0) l.max_running = max;
        if (per_key >= 0) l.max_per_key = per_key;
        if (rate >= 0) l.rate = rate;
        if (per >= 0) l.rate_ms = per;
        if (rate_per_key) l.rate_per_key = 1;
        if (singleton >= 0) l.singleton = singleton;
        if (debounce >= 0) l.debounce_ms = debounce;
        if (key) l.key = *key ? key : NULL;
        if (wf_flow_set(cli->client, workflow, &l, &err) != WF_OK) {
            rc = wf__cli_fail(&err);
            return err.code == WF_ERR_INVALID ? WF_CLI_BAD_INPUT : rc;
        }
    }
    if (cli->json)
        return wf__cli_print_json(json_pack(
            "{s:s, s:i, s:s?, s:i, s:i, s:I, s:b, s:b, s:I, s:I}", "workflow", workflow,
            "maxRunning", l.max_running, "key", l.key, "maxPerKey", l.max_per_key, "rate", l.rate,
            "ratePerMs", (json_int_t)l.rate_ms, "ratePerKey", l.rate_per_key != 0, "singleton",
            l.singleton != 0, "debounceMs", (json_int_t)l.debounce_ms, "held", (json_int_t)held));
    printf("%s: max running %s", workflow, l.max_running ? "" : "unlimited");
    if (l.max_running) printf("%d", l.max_running);
    if (l.key && l.max_per_key) printf(", at most %d per %s", l.max_per_key, l.key);
    if (l.rate)
        printf(", at most %d start%s per %lld ms%s%s", l.rate, l.rate == 1 ? "" : "s", l.rate_ms,
               l.rate_per_key ? " per " : "", l.rate_per_key && l.key ? l.key : "");
    if (l.singleton) printf(", one at a time per %s", l.key ? l.key : "workflow");
    if (l.debounce_ms) printf(", debounced %lld ms", l.debounce_ms);
    printf("; %lld run%s held back now\n", held, held == 1 ? "" : "s");
    return WF_CLI_OK;
}
