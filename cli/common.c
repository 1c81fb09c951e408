/* common.c - what every `wf` command uses: option parsing with the global options, the Redis
 * connection, mapping wf errors to exit codes and messages, and reading a run by id. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int wf__cli_getopt(wf__cli *cli, int argc, char **argv, const struct option *options)
{
    opterr = 0;
    for (;;) {
        /* ":" first: a missing value returns ':' instead of '?'. */
        int c = getopt_long(argc, argv, ":h", options, NULL);
        switch (c) {
        case WF__OPT_REDIS:
            cli->redis_url = optarg;
            break;
        case WF__OPT_JSON:
            cli->json = 1;
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

int wf__cli_parse_long(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

int wf__cli_parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0) return -1;
    *out = v;
    return 0;
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

int wf__cli_fail(const wf_error *err)
{
    fprintf(stderr, "wf: %s\n", err->message[0] ? err->message : wf_strerror(err->code));
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
