/* main.c - the `wf` command line: global options, the command table, `wf --help` (with the exit
 * code table) and `wf --version`. Each command is in its own cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "Usage: wf [--redis URL] [--json] [--no-color] COMMAND [ARGS...]\n"
    "\n"
    "Starts, inspects and stops durable workflow runs kept in Redis.\n"
    "\n"
    "Commands:\n"
    "  run NAME [JSON|-]         start a run of workflow NAME (input: the JSON argument, or stdin\n"
    "                            with -); --wait to wait for its result, --priority high|low\n"
    "  status ID                 print a run's status, steps and timeline (--text for people;\n"
    "                            --follow: again at each change until it ends)\n"
    "  wait ID                   block until the run is final; the exit code says how it ended\n"
    "                            (--timeout DUR)\n"
    "  steps ID                  print the steps a run has recorded\n"
    "  stop ID                   cancel a run that has not finished\n"
    "  pause ID / resume ID      hold a run / let it go on\n"
    "  restart ID                run a run again from the start (--clear-steps)\n"
    "  retry ID                  run a failed, terminated or cancelled run again\n"
    "  list                      list recent runs (--state, --workflow, --since, --until,\n"
    "                            --limit, --offset)\n"
    "  workflows                 list the workflows that workers have registered\n"
    "  stats                     runs per state, throughput and queue age per workflow\n"
    "  workers                   the worker processes, their load and last heartbeat\n"
    "  purge --older-than D      delete finished runs older than D (e.g. 7d)\n"
    "  migrate                   move an older wf's data in Redis to this wf's schema (upgrades)\n"
    "  retention WORKFLOW        show or set how long its finished runs are kept (a time, the\n"
    "                            last N, or none)\n"
    "  send-event NAME [JSON|-]  record an event that waiting runs can receive\n"
    "  schedule add|list|remove  runs on a cron expression or an interval (@every 30s)\n"
    "  limit WORKFLOW            show or set how many of its runs may run at once\n"
    "  pause-workflow W / resume-workflow W\n"
    "                            stop claiming workflow W's queued runs (running ones go on) /\n"
    "                            claim them again\n"
    "  web [--listen ADDR:PORT]  serve the dashboard (default 127.0.0.1:8080; --token T:\n"
    "                            required off loopback)\n"
    "  help [COMMAND]            this text, or a command's options\n"
    "\n"
    "Global options (accepted before or after the command):\n"
    "  --redis URL    Redis to use (default: $WF_REDIS_URL, else redis://127.0.0.1:6379; an\n"
    "                 empty URL is a usage error, not the default):\n"
    "                 redis://[user[:pass]@]host[:port][/db][?prefix=P&timeout_ms=N]\n"
    "                 or unix:///path/to/redis.sock\n"
    "  --json         JSON output for every command (run, status and stop always print JSON;\n"
    "                 the others print text for people unless --json is given)\n"
    "  --no-color     no colours: states are coloured (completed green, failed red, ...) only\n"
    "                 when stdout is a terminal and $NO_COLOR is unset or empty\n"
    "  -h, --help     help; `wf COMMAND --help` for a command\n"
    "  -V, --version  print the version\n"
    "\n"
    "Durations (--delay, --timeout, --since, --older-than, --per, --debounce): NUMBER UNIT\n"
    "with the unit ms, s, m, h or d: 500ms, 10s, 10m, 2h, 7d, 1h30m. A bare number keeps the\n"
    "option's old unit: milliseconds, but seconds for --timeout and ms since the epoch for\n"
    "--since/--until.\n"
    "\n"
    "A status is {\"id\", \"workflow\", \"state\", \"attempt\", \"output\", \"error\",\n"
    "\"createdAt\", \"updatedAt\", \"startedAt\", \"finishedAt\", \"waitReason\", \"wakeAt\",\n"
    "\"worker\"}; times are ms since the epoch (null when unset). JSON is indented on a terminal\n"
    "and one line otherwise.\n"
    "\n"
    "Exit codes:\n"
    "  0  success; with --wait, wait, status --follow: the run completed\n"
    "  1  usage error (or an internal error such as out of memory)\n"
    "  2  no such run, or a malformed run id\n"
    "  3  cannot connect to Redis, bad Redis URL, or Redis answered with an error\n"
    "  4  with --wait: the run ended failed, terminated or cancelled; wait and\n"
    "     status --follow: the run failed\n"
    "  5  stop, pause, resume: the run had already finished\n"
    "  6  bad input: malformed JSON, payload too large, unknown or invalid workflow name\n"
    "  7  with --wait, wait, status --follow: the run was not final within --timeout\n"
    "  8  the run's state does not allow it: pause a paused run, resume a run that is not\n"
    "     paused, retry a run that has not ended or that completed\n"
    "  9  web: cannot listen on the address\n"
    "  10 wait, status --follow: the run ended cancelled\n"
    "  11 wait, status --follow: the run ended terminated\n"
    "Errors are printed to stderr as \"wf: <message>\".\n";

typedef struct command {
    const char *name;
    wf__cli_cmd_fn fn;
} command;

static const command COMMANDS[] = {
    {"run", wf__cli_cmd_run},
    {"status", wf__cli_cmd_status},
    {"stop", wf__cli_cmd_stop},
    {"list", wf__cli_cmd_list},
    {"workflows", wf__cli_cmd_workflows},
    {"send-event", wf__cli_cmd_send_event},
    {"steps", wf__cli_cmd_steps},
    {"pause", wf__cli_cmd_pause},
    {"resume", wf__cli_cmd_resume},
    {"restart", wf__cli_cmd_restart},
    {"retry", wf__cli_cmd_retry},
    {"stats", wf__cli_cmd_stats},
    {"workers", wf__cli_cmd_workers},
    {"purge", wf__cli_cmd_purge},
    {"migrate", wf__cli_cmd_migrate},
    {"retention", wf__cli_cmd_retention},
    {"web", wf__cli_cmd_web},
    {"schedule", wf__cli_cmd_schedule},
    {"limit", wf__cli_cmd_limit},
    {"wait", wf__cli_cmd_wait},
    {"pause-workflow", wf__cli_cmd_pause_workflow},
    {"resume-workflow", wf__cli_cmd_resume_workflow},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
    return NULL;
}

/* Runs `cmd` with argv starting at its name, getopt reset for it. */
static int dispatch(wf__cli *cli, const command *cmd, int argc, char **argv)
{
    optind = 0; /* glibc: full re-initialisation, so the command's getopt starts at argv[1] */
    return cmd->fn(cli, argc, argv);
}

/* `wf help [COMMAND]`: the global help, or the command's own (as `wf COMMAND --help`). */
static int help(wf__cli *cli, int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stdout);
        return WF_CLI_OK;
    }
    const command *cmd = find_command(argv[1]);
    if (!cmd) return wf__cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    static char help_flag[] = "--help";
    char *args[] = {argv[1], help_flag, NULL};
    return dispatch(cli, cmd, 2, args);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"redis", required_argument, NULL, WF__OPT_REDIS},
        {"json", no_argument, NULL, WF__OPT_JSON},
        {"no-color", no_argument, NULL, WF__OPT_NO_COLOR},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    wf__cli cli = {0};
    opterr = 0;
    int c;
    /* "+": stop at the command's name; what follows is the command's to parse. */
    while ((c = getopt_long(argc, argv, "+:hV", options, NULL)) != -1) {
        switch (c) {
        case WF__OPT_REDIS:
            if (wf__cli_redis_option(&cli, optarg, NULL) != WF_CLI_OK) return WF_CLI_USAGE;
            break;
        case WF__OPT_JSON:
            cli.json = 1;
            break;
        case WF__OPT_NO_COLOR:
            cli.no_color = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return WF_CLI_OK;
        case 'V':
            printf("wf %s\n", WF_VERSION);
            return WF_CLI_OK;
        case ':':
            return wf__cli_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
        default:
            return wf__cli_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        fputs(USAGE, stderr);
        return WF_CLI_USAGE;
    }
    const char *name = argv[optind];
    int rc;
    if (strcmp(name, "help") == 0) {
        rc = help(&cli, argc - optind, argv + optind);
    } else {
        const command *cmd = find_command(name);
        if (!cmd) return wf__cli_usage_error(NULL, "unknown command '%s'", name);
        rc = dispatch(&cli, cmd, argc - optind, argv + optind);
    }
    wf_client_free(cli.client);
    if (fflush(stdout) != 0 && rc == WF_CLI_OK) {
        perror("wf: writing output");
        rc = WF_CLI_USAGE;
    }
    return rc;
}
