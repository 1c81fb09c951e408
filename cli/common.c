/* common.c - what every `wf` command uses: option parsing with the global options, the Redis
 * connection, mapping wf errors to exit codes and messages, and reading a run by id. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int wf__cli_getopt(wf__cli *cli, int argc, char **argv, const struct option *options)
{
    opterr = 0;
    for (;;) {
        /* ":" first: a missing value returns ':' instead of '?'. */
        int c = getopt_long(argc, argv, ":h", options, NULL);
        switch (c) {
        case WF__OPT_REDIS:
            if (wf__cli_redis_option(cli, optarg, argv[0]) != WF_CLI_OK) return '?';
            break;
        case WF__OPT_JSON:
            cli->json = 1;
            break;
        case WF__OPT_NO_COLOR:
            cli->no_color = 1;
            break;
        case WF__OPT_HELP:
        case 'h':
            cli->help = 1;
            break;
        case ':':
            wf__cli_usage_error(argv[0], "option '%s' needs a value", argv[optind - 1]);
            return '?';
        case '?':
            wf__cli_usage_error(argv[0], "unknown option '%s'", argv[optind - 1]);
            return '?';
        default:
            return c;
        }
    }
}

int wf__cli_force_only(wf__cli *cli, int argc, char **argv, int *force)
{
    enum { OPT_FORCE = 1 };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    int c;
    *force = 0;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c != OPT_FORCE) return WF_CLI_USAGE;
        *force = 1;
    }
    return WF_CLI_OK;
}

int wf__cli_redis_option(wf__cli *cli, const char *url, const char *cmd)
{
    /* An empty URL used to mean "not given" (so $WF_REDIS_URL, else localhost): a script whose
     * variable was unset would then act on whatever Redis the environment names. */
    if (!*url)
        return wf__cli_usage_error(cmd, "--redis: the URL is empty; give one such as "
                                        "redis://127.0.0.1:6379, or leave --redis out to use "
                                        "$WF_REDIS_URL");
    cli->redis_url = url;
    return WF_CLI_OK;
}

int wf__cli_parse_long(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

/* Reads "DIGITS[.DIGITS]" at *s (no sign, no exponent, no spaces: strtod would take "0x1p3",
 * "inf" and " 5"). Returns 0 with *s moved past it, or -1. */
static int scan_number(const char **s, double *out)
{
    const char *p = *s;
    double v = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    if (*p == '.') {
        double scale = 0.1;
        if (p[1] < '0' || p[1] > '9') return -1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) v += (*p - '0') * scale;
    }
    *s = p;
    *out = v;
    return 0;
}

int wf__cli_parse_duration(const char *s, int64_t bare_ms, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const double max = 9.0e15; /* well inside int64_t, and exact in a double */
    double total = 0, v;
    const char *p = s;
    if (scan_number(&p, &v) != 0) return -1;
    if (!*p) { /* a bare number: the option's historical unit */
        if (bare_ms <= 0 || v * (double)bare_ms > max) return -1;
        *ms = (int64_t)(v * (double)bare_ms);
        return 0;
    }
    for (;;) { /* NUMBER UNIT, repeated: "10s", "1h30m", "1.5d" */
        size_t i, len = 0;
        for (i = 0; i < sizeof units / sizeof units[0]; i++) {
            len = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, len) == 0 && (p[len] < 'a' || p[len] > 'z')) break;
        }
        if (i == sizeof units / sizeof units[0]) return -1;
        total += v * units[i].ms;
        if (total > max) return -1;
        p += len;
        if (!*p) break;
        if (scan_number(&p, &v) != 0) return -1;
        if (!*p) return -1; /* "1h30": a unit on one part but not the next */
    }
    *ms = (int64_t)total;
    return 0;
}

int wf__cli_duration_arg(const char *cmd, const char *option, const char *arg, int64_t bare_ms,
                         int64_t *ms)
{
    if (wf__cli_parse_duration(arg, bare_ms, ms) == 0) return WF_CLI_OK;
    return wf__cli_usage_error(cmd, "%s: '%s' is not a duration; use e.g. 500ms, 10s, 10m, 7d%s",
                               option, arg,
                               bare_ms == 1      ? " (a bare number is milliseconds)"
                               : bare_ms == 1000 ? " (a bare number is seconds)"
                                                 : "");
}

int wf__cli_parse_time(const char *s, int64_t now_ms, int64_t *out)
{
    long long epoch;
    if (wf__cli_parse_long(s, &epoch) == 0) {
        *out = epoch;
        return 0;
    }
    int64_t ago;
    if (wf__cli_parse_duration(s, 0, &ago) != 0) return -1;
    *out = now_ms > ago ? now_ms - ago : 1;
    return 0;
}

int wf__cli_workflow_args(wf__cli *cli, int argc, char **argv, const char *cmd, const char *usage,
                          int nargs, const char *why, const char **workflow, int *code)
{
    enum { OPT_WORKFLOW = 1, OPT_FORCE };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"workflow", required_argument, NULL, OPT_WORKFLOW},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    *workflow = NULL;
    int force = 0, c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c == OPT_WORKFLOW) {
            *workflow = optarg;
        } else if (c == OPT_FORCE) {
            force = 1;
        } else {
            *code = WF_CLI_USAGE;
            return 1;
        }
    }
    if (wf__cli_args(cli, argc, cmd, usage, nargs, nargs, why, code)) return 1;
    *code = wf__cli_check_workflow(cli, cmd, *workflow, force);
    return *code != WF_CLI_OK;
}

int wf__cli_args(wf__cli *cli, int argc, const char *cmd, const char *usage, int min, int max,
                 const char *why, int *code)
{
    if (cli->help)
        *code = fputs(usage, stdout) == EOF ? WF_CLI_USAGE : WF_CLI_OK;
    else if (argc - optind < min || argc - optind > max)
        *code = wf__cli_usage_error(cmd, "%s", why);
    else
        return 0;
    return 1;
}

int wf__cli_parse_id(wf__cli *cli, int argc, char **argv, const char *usage, const char **id)
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

int wf__cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wf: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\n(see `wf %s --help`)\n", cmd);
    else
        fputs("\n(see `wf --help`)\n", stderr);
    return WF_CLI_USAGE;
}

int wf__cli_exit_code(int code)
{
    switch (code) {
    case WF_OK:
        return WF_CLI_OK;
    case WF_ERR_BAD_ID:
    case WF_ERR_NOT_FOUND:
        return WF_CLI_NOT_FOUND;
    case WF_ERR_CONNECT:
    case WF_ERR_IO:
    case WF_ERR_REDIS:
    case WF_ERR_PROTOCOL:
    case WF_ERR_URL:
    case WF_ERR_SCHEMA:
    case WF_ERR_TIMEOUT:
    case WF_ERR_CLOSED:
        return WF_CLI_CONNECT;
    case WF_ERR_FINAL:
        return WF_CLI_FINISHED;
    case WF_ERR_STATE:
        return WF_CLI_STATE;
    case WF_ERR_INVALID:
    case WF_ERR_BAD_NAME:
    case WF_ERR_BAD_PAYLOAD:
    case WF_ERR_TOO_LARGE:
    case WF_ERR_VALIDATION:
    case WF_ERR_UNKNOWN_WORKFLOW:
        return WF_CLI_BAD_INPUT;
    default:
        return WF_CLI_USAGE;
    }
}

const char *wf__cli_error_text(const wf_error *err)
{
    /* Script refusals keep their marker word ("BADSTATE run ... is already paused"): drop it. */
    static const char *const markers[] = {"BADSTATE ", "NOTFOUND ", "STALE ", "FINAL "};
    const char *m = err->message[0] ? err->message : wf_strerror(err->code);
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (strncmp(m, markers[i], strlen(markers[i])) == 0) return m + strlen(markers[i]);
    return m;
}

int wf__cli_fail(const wf_error *err)
{
    fprintf(stderr, "wf: %s\n", wf__cli_error_text(err));
    return wf__cli_exit_code(err->code);
}

int wf__cli_connect(wf__cli *cli)
{
    if (cli->client) return WF_CLI_OK;
    wf_error err = {0};
    cli->client = wf_client_connect(cli->redis_url, &err);
    if (!cli->client) return wf__cli_fail(&err);
    return WF_CLI_OK;
}

/* Here rather than in input.c, which the fuzzer links alone (fuzz/run): it knows no connection. */
int wf__cli_input_and_connect(wf__cli *cli, const char *arg, msgpack_sbuffer *out)
{
    msgpack_sbuffer_init(out);
    int rc = wf__cli_read_input(arg, out);
    return rc == WF_CLI_OK ? wf__cli_connect(cli) : rc;
}

int wf__cli_fetch(wf__cli *cli, const char *id, wf_run **run, wf_status *status, wf_error *err)
{
    *run = wf_get_workflow_run(cli->client, id, err);
    if (!*run) return err->code;
    int rc = wf_run_status(*run, status, err);
    if (rc != WF_OK) {
        wf_run_free(*run);
        *run = NULL;
    }
    return rc;
}
