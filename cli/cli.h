/* cli.h - what the files of the `wf` command line share: exit codes, global options, the
 * connection, reading JSON input, and printing.
 *
 * Each command lives in its own cmd_*.c and has the signature of wf__cli_cmd_fn: it gets argv
 * starting at the command's name, parses its own options (the global ones are accepted anywhere),
 * and returns the process exit code.
 */
#ifndef WF_CLI_H
#define WF_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "wf/wf.h"

/* Exit codes: part of the command line's interface (wf --help prints this table). */
enum {
    WF_CLI_OK = 0,          /* success; with --wait: the run completed */
    WF_CLI_USAGE = 1,       /* bad command line */
    WF_CLI_NOT_FOUND = 2,   /* no such run, or a malformed run id */
    WF_CLI_CONNECT = 3,     /* cannot reach Redis, bad Redis URL, Redis error */
    WF_CLI_RUN_FAILED = 4,  /* with --wait: the run ended failed, terminated or cancelled */
    WF_CLI_FINISHED = 5,    /* stop: the run had already finished */
    WF_CLI_BAD_INPUT = 6,   /* bad JSON, payload too large, unknown or invalid workflow name */
    WF_CLI_TIMEOUT = 7,     /* with --wait: the run was not final within --timeout */
    WF_CLI_STATE = 8,       /* the run's state does not allow it (pause a paused run, resume one
                               that is not paused, retry one that has not ended) */
    WF_CLI_LISTEN = 9,      /* web: cannot listen on the address */
    WF_CLI_CANCELLED = 10,  /* wait, status --follow: the run ended cancelled */
    WF_CLI_TERMINATED = 11, /* wait, status --follow: the run ended terminated */
};

/* Global settings and the lazily opened connection. */
typedef struct wf__cli {
    const char *redis_url; /* --redis; NULL: $WF_REDIS_URL, else localhost */
    int json;              /* --json: machine-readable output for every command */
    int help;              /* --help seen: the command prints its usage and exits 0 */
    int no_color;          /* --no-color: never colour states (see wf__cli_color()) */
    wf_client *client;     /* opened by wf__cli_connect(), freed by main */
} wf__cli;

typedef int (*wf__cli_cmd_fn)(wf__cli *cli, int argc, char **argv);

/* ---- Option parsing -------------------------------------------------------------------------- */

/* Long options every command accepts; put WF__CLI_GLOBAL_OPTIONS first in a command's table. */
enum { WF__OPT_REDIS = 1000, WF__OPT_JSON, WF__OPT_HELP, WF__OPT_NO_COLOR };
#define WF__CLI_GLOBAL_OPTIONS                                                                     \
    {"redis", required_argument, NULL, WF__OPT_REDIS}, {"json", no_argument, NULL, WF__OPT_JSON},  \
        {"no-color", no_argument, NULL, WF__OPT_NO_COLOR},                                         \
    {                                                                                              \
        "help", no_argument, NULL, WF__OPT_HELP                                                    \
    }

/* Parses the next option of a command (getopt_long on `argv` from argv[1], positional arguments
 * permuted to the end). Handles the global options itself and never returns them. Returns the
 * option's value, -1 at the end, or '?' after printing a usage error. */
int wf__cli_getopt(wf__cli *cli, int argc, char **argv, const struct option *options);

/* The options of a command whose only own option is --force (*force 1 when given): WF_CLI_OK, or
 * WF_CLI_USAGE after wf__cli_getopt printed why. */
int wf__cli_force_only(wf__cli *cli, int argc, char **argv, int *force);

/* The start of a command whose only own options are --workflow W (*workflow, NULL when absent:
 * every workflow) and --force: parses its options (the global ones as wf__cli_getopt does), checks
 * them as wf__cli_args does with `nargs` arguments, then connects and refuses an unregistered W
 * (wf__cli_check_workflow). Returns 1 when the command is done, its exit code in *code, or 0 to
 * go on, connected. */
int wf__cli_workflow_args(wf__cli *cli, int argc, char **argv, const char *cmd, const char *usage,
                          int nargs, const char *why, const char **workflow, int *code);

/* Takes --redis URL (the global option, `cmd` NULL before the command's name): returns WF_CLI_OK,
 * or WF_CLI_USAGE after printing why an empty URL is refused. */
int wf__cli_redis_option(wf__cli *cli, const char *url, const char *cmd);

/* What every command checks after its options: with --help, prints `usage` (exit code 0, or 1
 * when stdout fails); otherwise `min` to `max` positional arguments must remain, else "wf: <why>"
 * is a usage error of `cmd`. Returns 1 when the command is done, its exit code in *code, or 0 to
 * go on. */
int wf__cli_args(wf__cli *cli, int argc, const char *cmd, const char *usage, int min, int max,
                 const char *why, int *code);

/* Parses a non-negative integer. Returns 0 or -1. */
int wf__cli_parse_long(const char *s, long long *out);

/* Parses a duration, the one syntax of every time option: NUMBER UNIT with the unit ms, s, m,
 * h or d ("500ms", "10s", "1.5h", "7d"), several of them in a row ("1h30m"), or a bare number
 * meaning `bare_ms` ms each (the option's unit from before units existed: 1 for --delay, 1000
 * for --timeout; 0: a bare number is refused). No sign, exponent or spaces. Returns 0 with *ms
 * set, or -1. */
int wf__cli_parse_duration(const char *s, int64_t bare_ms, int64_t *ms);

/* wf__cli_parse_duration() for option `option` ("--delay") of command `cmd`: returns WF_CLI_OK,
 * or WF_CLI_USAGE after printing "wf: --delay: '10x' is not a duration; use e.g. 500ms, 10s,
 * 10m, 7d ...". */
int wf__cli_duration_arg(const char *cmd, const char *option, const char *arg, int64_t bare_ms,
                         int64_t *ms);

/* Parses a point in time: milliseconds since the epoch (a bare number), or a duration with a unit
 * meaning that long before `now_ms` ("10m" = ten minutes ago). Returns 0 or -1. */
int wf__cli_parse_time(const char *s, int64_t now_ms, int64_t *out);

/* Prints "wf: <message>" plus, for usage errors, a hint to run `wf CMD --help`. Returns `code`. */
int wf__cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- Connection and errors ------------------------------------------------------------------- */

/* Opens the connection if not open yet. Returns WF_CLI_OK or, after printing the error,
 * WF_CLI_CONNECT. */
int wf__cli_connect(wf__cli *cli);

/* Maps a wf_err to an exit code (see the table above). */
int wf__cli_exit_code(int wf_code);

/* The error's message for people (a script's marker word such as "BADSTATE" removed). Borrowed
 * from `err`. */
const char *wf__cli_error_text(const wf_error *err);

/* Prints "wf: <err->message>" to stderr and returns wf__cli_exit_code(err->code). */
int wf__cli_fail(const wf_error *err);

/* ---- Acting on a selection (bulk.c) --------------------------------------------------------- */

/* The options that select runs for `wf stop` / `wf retry` without an id; put
 * WF__CLI_BULK_OPTIONS in the command's table and hand each option to wf__cli_bulk_option(). */
enum {
    WF__OPT_BULK_WORKFLOW = 1100,
    WF__OPT_BULK_STATE,
    WF__OPT_BULK_SINCE,
    WF__OPT_BULK_UNTIL,
    WF__OPT_BULK_DRY_RUN,
    WF__OPT_BULK_YES,
    WF__OPT_BULK_FORCE
};
#define WF__CLI_BULK_OPTIONS                                                                       \
    {"workflow", required_argument, NULL, WF__OPT_BULK_WORKFLOW},                                  \
        {"state", required_argument, NULL, WF__OPT_BULK_STATE},                                    \
        {"since", required_argument, NULL, WF__OPT_BULK_SINCE},                                    \
        {"until", required_argument, NULL, WF__OPT_BULK_UNTIL},                                    \
        {"dry-run", no_argument, NULL, WF__OPT_BULK_DRY_RUN},                                      \
        {"yes", no_argument, NULL, WF__OPT_BULK_YES},                                              \
    {                                                                                              \
        "force", no_argument, NULL, WF__OPT_BULK_FORCE                                             \
    }

typedef struct wf__cli_bulk {
    const char *workflow; /* --workflow; NULL: every registered workflow */
    wf_state state;       /* --state; WF_STATE_UNKNOWN: not given */
    int64_t since_ms;     /* --since, as for wf list; 0: none */
    int64_t until_ms;     /* --until; 0: none (Redis's time at the start bounds it anyway) */
    int dry_run;          /* --dry-run: print the count and the ids, act on none */
    int yes;              /* --yes: no confirmation (required when stdin is not a terminal) */
    int force;            /* --force: a workflow name no worker registered */
    int given;            /* any of these options was given */
} wf__cli_bulk;

typedef enum wf__cli_bulk_action { WF__BULK_STOP, WF__BULK_RETRY } wf__cli_bulk_action;

/* Takes option `c` with value `arg` if it is one of WF__CLI_BULK_OPTIONS. Returns 1 taken, 0 not
 * a bulk option, -1 after printing a usage error. */
int wf__cli_bulk_option(wf__cli_bulk *b, const char *cmd, int c, const char *arg);

/* Stops or retries every run `b` selects: prints the count and ids with --dry-run, asks on a
 * terminal unless --yes (refuses without --yes when stdin is not one), then acts per run and
 * prints a line per run and a summary (or with --json one object: action, workflow, state,
 * dryRun, count, ids, acted, skipped [{id, why}], failed [{id, error}]). Returns 0, 1 for a
 * usage error or a declined confirmation, 6 for an unregistered workflow, or the exit code of
 * the first run that could not be acted on. */
int wf__cli_bulk_run(wf__cli *cli, const char *cmd, wf__cli_bulk_action what,
                     const wf__cli_bulk *b);

/* ---- Workflow names (registry.c) ------------------------------------------------------------ */

/* Connects if not connected yet, then refuses `workflow` unless a worker registered it (`wf
 * workflows`), `force` is set, or it is NULL (every workflow). Returns WF_CLI_OK, or after
 * printing "wf: CMD: no worker ever registered workflow 'X'; did you mean 'Y'? Give --force ..."
 * WF_CLI_BAD_INPUT (or the connection's exit code). */
int wf__cli_check_workflow(wf__cli *cli, const char *cmd, const char *workflow, int force);

/* ---- Input ----------------------------------------------------------------------------------- */

/* Turns the command's JSON argument into msgpack in `out` (initialised by the caller): `arg` NULL
 * means no input (out stays empty), "-" means read JSON from stdin. Returns WF_CLI_OK, or prints
 * the error and returns WF_CLI_BAD_INPUT. */
int wf__cli_read_input(const char *arg, msgpack_sbuffer *out);

/* What a command that sends input does first: initialises `out` (the caller destroys it, also on
 * failure), reads `arg` into it as wf__cli_read_input() does, then connects. Returns WF_CLI_OK or
 * the exit code of the step that failed (its error printed). */
int wf__cli_input_and_connect(wf__cli *cli, const char *arg, msgpack_sbuffer *out);

/* ---- Output ---------------------------------------------------------------------------------- */

/* Prints `value` to stdout as JSON (indented on a terminal, one line otherwise) and steals the
 * reference (NULL is taken as "out of memory"). Returns WF_CLI_OK, or 1 if it could not print. */
int wf__cli_print_json(json_t *value);

/* Formats a Redis timestamp (ms since the epoch) as "2024-05-01 12:00:03Z" in `buf`; returns buf,
 * or "-" for a time that was never set. */
const char *wf__cli_format_time(int64_t ms, char *buf, size_t size);

/* Formats a duration in ms for people ("850ms", "12.3s", "4m05s", "2h10m", "3d04h") in `buf`;
 * returns buf. */
const char *wf__cli_format_duration(int64_t ms, char *buf, size_t size);

/* Whether to colour states on stdout: it is a terminal, $NO_COLOR is unset or empty
 * (no-color.org), $TERM is not "dumb", and --no-color was not given. */
int wf__cli_color(const wf__cli *cli);

/* `word` (a run state or a step status: completed/done green, failed red, terminated bold red,
 * cancelled grey, running blue, queued cyan, waiting yellow, paused magenta) left-justified in
 * `width` columns (0: as is), wrapped in its colour's escape codes when `color` is set and the
 * word has one. Written to `buf`; returns buf. */
const char *wf__cli_paint(int color, const char *word, int width, char *buf, size_t size);

/* Copies `s` into `buf` cut to `width` bytes (then ending in "..."), control characters turned
 * into spaces, for one table cell. NULL or "" gives "-". Returns buf. */
const char *wf__cli_cell(const char *s, size_t width, char *buf, size_t size);

/* A workflow's numbers as `wf stats --json` prints them, and a worker as `wf workers --json` does
 * (also the dashboard's API). New references; NULL when out of memory. */
json_t *wf__cli_stats_json(const wf_stats *stats);

/* served.c: counts[i] = live worker processes serving workflows[i] (P:workers); 0, or -1 when
 * Redis could not be read (counts are then 0). */
int wf__cli_live_workers(wf__cli *cli, const char *const *workflows, size_t n, long long *counts);
/* Warns on stderr when no live worker serves `workflow` (`waiting`: how many runs wait for it;
 * 0: one run). Says nothing when one does, or when P:workers cannot be read. */
void wf__cli_warn_unserved(wf__cli *cli, const char *workflow, long long waiting);
json_t *wf__cli_worker_json(const wf_worker_info *worker);

/* ---- Waiting for a run (wait.c) -------------------------------------------------------------- */

/* Milliseconds of the monotonic clock (for deadlines and elapsed times). */
int64_t wf__cli_mono_ms(void);

/* Called by wf__cli_poll_final() with each status read, the first included; returns WF_CLI_OK to
 * go on, or an exit code to stop waiting with. */
typedef int (*wf__cli_poll_fn)(wf_run *run, const wf_status *st, void *arg);

/* Polls run's status, `st` holding the one read already, until it is final or `timeout_ms` (0: no
 * limit) passed: every 50 ms at first, growing to 250 ms. Leaves the last status read in `st`.
 * Returns WF_CLI_OK once final (whatever the outcome), WF_CLI_TIMEOUT, on_poll's code, or the
 * exit code of a read that failed (its error printed). */
int wf__cli_poll_final(wf_run *run, wf_status *st, int64_t timeout_ms, wf__cli_poll_fn on_poll,
                       void *arg);

/* Progress while waiting, on stderr (stdout keeps the result): on a terminal one line rewritten
 * in place with the state, the step the run is on and the time waited so far; otherwise a plain
 * line each time the state or the step changes. */
typedef struct wf__cli_progress {
    int tty;          /* stderr is a terminal */
    int64_t start_ms; /* wf__cli_mono_ms() when the wait began */
    wf_state state;   /* last shown */
    char step[160];   /* last shown */
} wf__cli_progress;

void wf__cli_progress_init(wf__cli_progress *p);
int wf__cli_progress_show(wf_run *run, const wf_status *st, void *arg); /* a wf__cli_poll_fn */
void wf__cli_progress_end(wf__cli_progress *p); /* clears the live line on a terminal */

/* The exit code of a final state: 0 completed; else 4 (RUN_FAILED), or with `distinct` 10 for
 * cancelled and 11 for terminated. */
int wf__cli_outcome_code(wf_state state, int distinct);
/* The exit code at the end of wf__cli_poll_final() (which returned `rc`, `st` its last status):
 * for a timeout, after saying on stderr how long it waited; else wf__cli_outcome_code(). */
int wf__cli_wait_outcome(wf_run *run, const wf_status *st, int rc, int64_t timeout_ms,
                         int distinct);

/* ---- Commands -------------------------------------------------------------------------------- */

int wf__cli_cmd_run(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_status(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_stop(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_list(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_workflows(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_send_event(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_steps(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_pause(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_resume(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_restart(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_retry(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_stats(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_workers(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_purge(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_migrate(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_retention(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_web(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_schedule(wf__cli *cli, int argc, char **argv); /* cmd_schedule.c */
int wf__cli_cmd_limit(wf__cli *cli, int argc, char **argv);    /* cmd_limit.c */
int wf__cli_cmd_wait(wf__cli *cli, int argc, char **argv);     /* cmd_wait.c */
/* cmd_workflow.c */
int wf__cli_cmd_pause_workflow(wf__cli *cli, int argc, char **argv);
int wf__cli_cmd_resume_workflow(wf__cli *cli, int argc, char **argv);

/* `wf status ID --follow [--text] [--timeout DUR]` (cmd_wait.c): prints run `id` again each time
 * it changes (with `text`: each new timeline line, then the whole view at the end) until it is
 * final or `timeout_ms` (0: no limit) passed. Returns the exit code of `wf wait`. */
int wf__cli_follow(wf__cli *cli, const char *id, int text, int64_t timeout_ms);

/* Reattaches to run `id` and reads its status. On success returns WF_OK with `*run` (caller frees
 * with wf_run_free()) and `*status` (caller clears with wf_status_clear()) filled; else returns
 * the error with `err` filled and nothing to free. */
int wf__cli_fetch(wf__cli *cli, const char *id, wf_run **run, wf_status *status, wf_error *err);

/* Parses `wf CMD ID` with no other options than the global ones: returns WF_CLI_OK with *id set,
 * an exit code for a usage error, or -1 after printing `usage` for --help. */
int wf__cli_parse_id(wf__cli *cli, int argc, char **argv, const char *usage, const char **id);

#endif
