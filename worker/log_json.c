/* log_json.c - the JSON-lines form of the worker's log (wf-worker --log-format json): one object
 * per line with the fields of the logfmt form, for log shippers that parse JSON.
 *
 *   {"ts":"2024-05-01T12:00:00.123Z","level":"warn","pid":4242,"msg":"...","run":"order:01J...",
 *    "workflow":"order","attempt":2,"step":"charge"}
 *
 * "run", "workflow" and "attempt" appear when the line concerns a run, "step" when it concerns a
 * step. Strings are escaped per RFC 8259 (bytes >= 0x80 pass through: messages are UTF-8 or
 * ASCII); a line that would overflow the buffer is cut inside the message, never mid-escape.
 */
#include <stdio.h>
#include <string.h>

#include "wf_internal.h"
#include "wf_log.h"

/* Appends `s` as a JSON string (quotes included); stops early rather than overflow. */
static size_t put_string(char *buf, size_t off, size_t cap, const char *s)
{
    if (off + 2 >= cap) return off;
    buf[off++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (*p == '\t') {
            memcpy(esc, "\\t", 2);
            n = 2;
        } else if (*p < 0x20) {
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            esc[0] = (char)*p;
            n = 1;
        }
        if (off + n + 2 >= cap) break; /* keep room for the closing quote */
        memcpy(buf + off, esc, n);
        off += n;
    }
    buf[off++] = '"';
    return off;
}

static size_t put_raw(char *buf, size_t off, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (off + n >= cap) return off;
    memcpy(buf + off, s, n);
    return off + n;
}

size_t wf__log_json_line(char *line, size_t cap, const char *ts, const char *level, long pid,
                         const char *msg, const char *run, const char *workflow, int attempt,
                         const char *step)
{
    /* Room reserved for the fields after the message, so a long message cannot push them out. */
    size_t tail = 64 + (run ? strlen(run) * 2 + 2 * WF__NAME_MAX : 0) + (step ? 300 : 0);
    if (tail > cap / 2) tail = cap / 2;
    size_t off = (size_t)snprintf(
        line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%ld,\"msg\":", ts, level, pid);
    if (off >= cap) off = cap - 1;
    off = put_string(line, off, cap - tail, msg);
    if (run) {
        off = put_raw(line, off, cap, ",\"run\":");
        off = put_string(line, off, cap, run);
        off = put_raw(line, off, cap, ",\"workflow\":");
        off = put_string(line, off, cap, workflow ? workflow : "");
        char a[32];
        snprintf(a, sizeof a, ",\"attempt\":%d", attempt);
        off = put_raw(line, off, cap, a);
    }
    if (step) {
        off = put_raw(line, off, cap, ",\"step\":");
        off = put_string(line, off, cap, step);
    }
    off = put_raw(line, off, cap - 1, "}");
    line[off++] = '\n';
    return off;
}
