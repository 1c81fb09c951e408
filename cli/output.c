/* output.c - printing: JSON documents on stdout, and the pieces of the human-readable table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

const char *wf__cli_format_duration(int64_t ms, char *buf, size_t size)
{
    if (ms < 0) ms = 0;
    long long s = (long long)(ms / 1000);
    if (ms < 1000)
        snprintf(buf, size, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(buf, size, "%lldd%02lldh", s / 86400, s / 3600 % 24);
    return buf;
}

int wf__cli_color(const wf__cli *cli)
{
    const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
    return !cli->no_color && !(no && *no) && !(term && strcmp(term, "dumb") == 0) &&
           isatty(fileno(stdout));
}

const char *wf__cli_paint(int color, const char *word, int width, char *buf, size_t size)
{
    static const struct {
        const char *word, *sgr;
    } colors[] = {
        {"completed", "32"},    {"done", "32"},      {"failed", "31"},
        {"terminated", "1;31"}, {"cancelled", "90"}, {"running", "34"},
        {"queued", "36"},       {"waiting", "33"},   {"paused", "35"},
    };
    const char *sgr = NULL;
    for (size_t i = 0; color && i < sizeof colors / sizeof colors[0]; i++)
        if (strcmp(colors[i].word, word) == 0) sgr = colors[i].sgr;
    /* The padding goes inside the codes' reach but is counted on the word alone, so columns
     * line up whether or not there is colour. */
    if (sgr)
        snprintf(buf, size, "\033[%sm%s\033[0m%*s", sgr, word,
                 width > (int)strlen(word) ? width - (int)strlen(word) : 0, "");
    else
        snprintf(buf, size, "%-*s", width, word);
    return buf;
}

const char *wf__cli_cell(const char *s, size_t width, char *buf, size_t size)
{
    if (!s || !*s) return "-";
    if (width + 1 > size) width = size - 1;
    size_t n = strlen(s);
    if (n <= width) {
        memcpy(buf, s, n + 1);
    } else {
        size_t keep = width > 3 ? width - 3 : width;
        memcpy(buf, s, keep);
        memcpy(buf + keep, "...", width - keep);
        buf[width] = '\0';
    }
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f) *p = ' ';
    return buf;
}
