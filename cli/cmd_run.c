/* cmd_run.c - `wf run NAME [JSON|-]`: start a run (runWorkflow), optionally wait for its end. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "run_view.h"
#include "status_json.h"

static const char USAGE[] =
    "Usage: wf run NAME [JSON|-] [--wait [--timeout SECONDS]] [--id SUFFIX] [--delay MS]\n"
    "              [--priority high|normal|low]\n"
    "\n"
    "Starts a run of workflow NAME and prints {\"runId\": ..., \"status\": {...}}. The input\n"
    "is the JSON argument, JSON read from stdin when it is \"-\", or nothing when it is omitted.\n"
    "\n"
    "Options:\n"
    "  --wait             poll the run until it is final, then print the final status; exits 0\n"
    "                     if it completed, 4 if it failed, was terminated or cancelled. Shows\n"
    "                     progress on stderr: a live line (state, step, time) on a terminal,\n"
    "                     a line per change otherwise\n"
    "  --timeout SECONDS  with --wait: give up after SECONDS (fractions allowed), print the last\n"
    "                     status and exit 7 (the run goes on); default or 0: no limit\n"
    "  --id SUFFIX        the run's id becomes NAME:SUFFIX ([A-Za-z0-9._-]); starting an id that\n"
    "                     exists returns that run instead of a new one\n"
    "  --delay MS         start no earlier than MS milliseconds from now\n"
    "  --priority P       high, normal (the default) or low: a worker with a free slot takes\n"
    "                     ready runs of high before normal before low; kept for the run's\n"
    "                     retries and restarts\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

#define POLL_FIRST_MS 50
#define POLL_MAX_MS   250

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) continue;
}

/* Progress while waiting, on stderr (stdout keeps the one JSON document): on a terminal one line
 * rewritten in place ("\r"), with the state, the step the run is on and the time waited so far;
 * otherwise a plain line each time the state or the step changes. */
typedef struct progress {
    int tty;
    double start;
    wf_state state; /* last shown */
    char step[160];
} progress;

static void show_progress(progress *p, const wf_run *run, const wf_status *st, int last)
{
    size_t len;
    const char *field = wf__cli_status_field(st, "step", &len);
    char step[160] = "";
    if (field) snprintf(step, sizeof step, "%.*s", (int)len, field);
    char elapsed[32];
    wf__cli_format_duration((int64_t)((mono_seconds() - p->start) * 1000), elapsed, sizeof elapsed);
    if (p->tty) {
        if (last) {
            fputs("\r\033[K", stderr);
        } else {
            fprintf(stderr, "\r\033[K%s  %-10s  %s%s%s  %s", wf_run_id(run),
                    wf_state_name(st->state), step[0] ? "step " : "", step, step[0] ? "  " : "",
                    elapsed);
        }
        fflush(stderr);
    } else if (st->state != p->state || strcmp(step, p->step) != 0) {
        fprintf(stderr, "wf: %s %s%s%s after %s\n", wf_run_id(run), wf_state_name(st->state),
                step[0] ? ", step " : "", step, elapsed);
    }
    p->state = st->state;
    snprintf(p->step, sizeof p->step, "%s", step);
}

/* The polling of wait_final(): returns WF_CLI_OK once the run is final, or an exit code. */
static int wait_loop(wf_run *run, wf_status *st, double timeout_s, progress *p)
{
    double deadline = timeout_s > 0 ? mono_seconds() + timeout_s : 0;
    int interval = POLL_FIRST_MS;
    while (!wf_state_is_final(st->state)) {
        show_progress(p, run, st, 0);
        if (deadline > 0 && mono_seconds() >= deadline) {
            show_progress(p, run, st, 1);
            fprintf(stderr, "wf: run '%s' is still %s after %g s\n", wf_run_id(run),
                    wf_state_name(st->state), timeout_s);
            return WF_CLI_TIMEOUT;
        }
        int nap = interval;
        if (deadline > 0) {
            double left_ms = (deadline - mono_seconds()) * 1000.0;
            if (left_ms < nap) nap = left_ms > 1 ? (int)left_ms : 1;
        }
        nap_ms(nap);
        interval = interval * 3 / 2 > POLL_MAX_MS ? POLL_MAX_MS : interval * 3 / 2;
        wf_status next;
        wf_error err = {0};
        if (wf_run_status(run, &next, &err) != WF_OK) {
            show_progress(p, run, st, 1);
            return wf__cli_fail(&err);
        }
        wf_status_clear(st);
        *st = next;
    }
    return WF_CLI_OK;
}

/* Polls the run's status (every 50 ms, growing to 250 ms) until it is final or `timeout_s` (0: no
 * limit) passed, showing progress on stderr. Leaves the last status read in `st`. Returns an exit
 * code. */
static int wait_final(wf_run *run, wf_status *st, double timeout_s)
{
    progress p = {isatty(fileno(stderr)), mono_seconds(), WF_STATE_UNKNOWN, ""};
    int rc = wait_loop(run, st, timeout_s, &p);
    show_progress(&p, run, st, 1);
    if (rc != WF_CLI_OK) return rc;
    if (st->state == WF_STATE_COMPLETED) return WF_CLI_OK;
    fprintf(stderr, "wf: run '%s' ended %s%s%s\n", wf_run_id(run), wf_state_name(st->state),
            st->error ? ": " : "", st->error ? st->error : "");
    return WF_CLI_RUN_FAILED;
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
    double timeout_s = 0;
    long long delay = 0;
    wf_run_options run_opts = {0};
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_WAIT:
            wait = 1;
            break;
        case OPT_TIMEOUT:
            if (wf__cli_parse_seconds(optarg, &timeout_s) != 0)
                return wf__cli_usage_error("run", "--timeout wants seconds, not '%s'", optarg);
            has_timeout = 1;
            break;
        case OPT_ID:
            run_opts.id = optarg;
            break;
        case OPT_DELAY:
            if (wf__cli_parse_long(optarg, &delay) != 0)
                return wf__cli_usage_error("run", "--delay wants milliseconds, not '%s'", optarg);
            run_opts.delay_ms = delay;
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
    if (cli->help) return fputs(USAGE, stdout) == EOF ? WF_CLI_USAGE : WF_CLI_OK;
    int npos = argc - optind;
    if (npos < 1 || npos > 2)
        return wf__cli_usage_error("run", "run wants a workflow name and at most one JSON input");
    if (has_timeout && !wait) return wf__cli_usage_error("run", "--timeout only goes with --wait");
    const char *name = argv[optind];
    const char *json = npos == 2 ? argv[optind + 1] : NULL;

    msgpack_sbuffer input;
    msgpack_sbuffer_init(&input);
    int rc = wf__cli_read_input(json, &input);
    if (rc == WF_CLI_OK) rc = wf__cli_connect(cli);
    wf_run *run = NULL;
    wf_status st = {0};
    wf_error err = {0};
    if (rc == WF_CLI_OK) {
        run = wf_run_workflow_ex(cli->client, name, input.data, input.size, &run_opts, &err);
        if (!run || wf_run_status(run, &st, &err) != WF_OK) rc = wf__cli_fail(&err);
    }
    msgpack_sbuffer_destroy(&input);
    if (rc == WF_CLI_OK && wait) rc = wait_final(run, &st, timeout_s);
    /* Print the run whenever it exists, also when --wait ended in failure or timed out. */
    if (run && (rc == WF_CLI_OK || rc == WF_CLI_RUN_FAILED || rc == WF_CLI_TIMEOUT)) {
        int prc = wf__cli_print_json(wf__cli_run_json(run, &st));
        if (prc != WF_CLI_OK) rc = prc;
    }
    wf_status_clear(&st);
    wf_run_free(run);
    return rc;
}
