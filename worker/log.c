/* log.c - the worker's log: one line per event on stderr, written with a single write(2) so
 * lines from executor threads and from sibling worker processes never interleave. logfmt by
 * default, JSON lines with --log-format json (the same fields; log_json.c):
 *
 *   ts=2024-05-01T12:00:00.123Z level=info pid=4242 msg="run completed" run=echo:01J... \
 *   workflow=echo attempt=1
 *   {"ts":"2024-05-01T12:00:00.123Z","level":"info","pid":4242,"msg":"run completed",
 *    "run":"echo:01J...","workflow":"echo","attempt":1}
 *
 * A line about a step also carries step=NAME ("step":"NAME").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "wf_log.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static atomic_int log_level = -1; /* -1: not yet read from $WF_LOG_LEVEL */
static atomic_int log_format;     /* wf__log_format */

int wf__log_parse_format(const char *name)
{
    if (name && strcasecmp(name, "logfmt") == 0) return WF__LOG_LOGFMT;
    if (name && strcasecmp(name, "json") == 0) return WF__LOG_JSON;
    return -1;
}

void wf__log_set_format(wf__log_format format)
{
    atomic_store(&log_format, (int)format);
}

int wf__log_parse_level(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0) return i;
    if (strcasecmp(name, "warning") == 0) return WF__LOG_WARN;
    return -1;
}

void wf__log_set_level(wf__log_level level)
{
    atomic_store(&log_level, (int)level);
}

static int current_level(void)
{
    int l = atomic_load(&log_level);
    if (l >= 0) return l;
    l = wf__log_parse_level(getenv("WF_LOG_LEVEL"));
    if (l < 0) l = WF__LOG_INFO;
    atomic_store(&log_level, l);
    return l;
}

/* Appends `s` as a logfmt value: bare when it has no space, quote, '=' or control byte, else
 * quoted with \" \\ \n escapes. */
static size_t put_value(char *buf, size_t off, size_t cap, const char *s)
{
    int quote = *s == '\0';
    for (const char *p = s; *p && !quote; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20) quote = 1;
    if (!quote) {
        size_t n = strlen(s);
        if (off + n >= cap) n = cap > off + 1 ? cap - off - 1 : 0;
        memcpy(buf + off, s, n);
        return off + n;
    }
    if (off + 1 < cap) buf[off++] = '"';
    for (const char *p = s; *p && off + 3 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            buf[off++] = '\\';
            buf[off++] = (char)c;
        } else if (c == '\n') {
            buf[off++] = '\\';
            buf[off++] = 'n';
        } else if (c < 0x20) {
            buf[off++] = ' ';
        } else {
            buf[off++] = (char)c;
        }
    }
    if (off + 1 < cap) buf[off++] = '"';
    return off;
}

/* Writes one line for a formatted message. */
static void emit(wf__log_level level, const char *run, const char *workflow, int attempt,
                 const char *step, const char *msg)
{
    int saved_errno = errno;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    size_t off;
    if (atomic_load(&log_format) == WF__LOG_JSON) {
        off = wf__log_json_line(line, sizeof line, when, level_names[level], (long)getpid(), msg,
                                run, workflow, attempt, step);
        goto write_out;
    }
    off = (size_t)snprintf(line, sizeof line, "ts=%s level=%s pid=%ld msg=", when,
                           level_names[level], (long)getpid());
    /* Always quote the message so it reads as one field. */
    if (off + 1 < sizeof line) line[off++] = '"';
    for (const char *p = msg; *p && off + 3 < sizeof line; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') line[off++] = '\\';
        line[off++] = c == '\n' ? ' ' : (char)c;
    }
    if (off + 1 < sizeof line) line[off++] = '"';
    if (run) {
        const char *keys[2] = {" run=", " workflow="};
        const char *vals[2] = {run, workflow ? workflow : ""};
        for (int i = 0; i < 2; i++) {
            size_t kl = strlen(keys[i]);
            if (off + kl >= sizeof line) break;
            memcpy(line + off, keys[i], kl);
            off = put_value(line, off + kl, sizeof line, vals[i]);
        }
        if (off < sizeof line)
            off += (size_t)snprintf(line + off, sizeof line - off, " attempt=%d", attempt);
    }
    if (step && off + 6 < sizeof line) {
        memcpy(line + off, " step=", 6);
        off = put_value(line, off + 6, sizeof line, step);
    }
    if (off >= sizeof line - 1) off = sizeof line - 2;
    line[off++] = '\n';
write_out:;
    size_t done = 0;
    while (done < off) {
        ssize_t n = write(STDERR_FILENO, line + done, off - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    errno = saved_errno;
}

/* Formats and emits one line about a run (and a step of it, when `step` is not NULL). */
__attribute__((format(printf, 6, 0))) static void vlog_run(wf__log_level level, const char *run,
                                                           const char *workflow, int attempt,
                                                           const char *step, const char *fmt,
                                                           va_list ap)
{
    int saved_errno = errno;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(level, run, workflow, attempt, step, msg);
    errno = saved_errno;
}

void wf__log_run(wf__log_level level, const char *run, const char *workflow, int attempt,
                 const char *fmt, ...)
{
    if ((int)level > current_level()) return;
    va_list ap;
    va_start(ap, fmt);
    vlog_run(level, run, workflow, attempt, NULL, fmt, ap);
    va_end(ap);
}

void wf__log_step(wf__log_level level, const char *run, const char *workflow, int attempt,
                  const char *step, const char *fmt, ...)
{
    if ((int)level > current_level()) return;
    va_list ap;
    va_start(ap, fmt);
    vlog_run(level, run, workflow, attempt, step, fmt, ap);
    va_end(ap);
}
