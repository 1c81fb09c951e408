/* output.c - printing: JSON documents on stdout, and the pieces of the human-readable table. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int wf__cli_print_json(json_t *value)
{
    if (!value) {
        fputs("wf: out of memory\n", stderr);
        return WF_CLI_USAGE;
    }
    /* Indented for a person at a terminal; one line for pipes, so each document is one line. */
    size_t flags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER;
    flags |= isatty(fileno(stdout)) ? JSON_INDENT(2) : JSON_COMPACT;
    int rc = json_dumpf(value, stdout, flags);
    json_decref(value);
    if (rc != 0 || putchar('\n') == EOF) {
        perror("wf: writing output");
        return WF_CLI_USAGE;
    }
    return WF_CLI_OK;
}

const char *wf__cli_format_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0) return "-";
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0) return "?";
    return buf;
}
