/* input.c - a command's JSON input (an argument, or stdin for "-") turned into msgpack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The largest JSON text accepted. The client still applies its own limit (max_payload in the
 * Redis URL) to the msgpack it becomes. */
#define MAX_JSON_BYTES ((size_t)64 * 1024 * 1024)

/* Reads all of stdin into a malloc'd buffer. Returns WF_OK, WF_ERR_TOO_LARGE or WF_ERR_SYSTEM. */
static int read_stdin(char **text, size_t *len, wf_error *err)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_JSON_BYTES) {
                free(buf);
                return wf_error_set(err, WF_ERR_TOO_LARGE,
                                    "input on stdin is larger than %zu bytes", MAX_JSON_BYTES);
            }
            cap *= 2;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return wf_error_set(err, WF_ERR_SYSTEM, "cannot read stdin");
    }
    *text = buf;
    *len = n;
    return WF_OK;
}

int wf__cli_read_input(const char *arg, msgpack_sbuffer *out)
{
    if (!arg) return WF_CLI_OK;
    wf_error err = {0};
    char *owned = NULL;
    const char *text = arg;
    size_t len = strlen(arg);
    if (strcmp(arg, "-") == 0) {
        if (read_stdin(&owned, &len, &err) != WF_OK) return wf__cli_fail(&err);
        text = owned;
    }
    wf_payload_limits limits = {MAX_JSON_BYTES, 0};
    int rc = wf_json_to_msgpack(text, len, &limits, out, &err);
    free(owned);
    if (rc == WF_ERR_BAD_PAYLOAD) {
        fprintf(stderr, "wf: input is not valid JSON: %s\n", err.message);
        return WF_CLI_BAD_INPUT;
    }
    if (rc != WF_OK) return wf__cli_fail(&err);
    return WF_CLI_OK;
}
