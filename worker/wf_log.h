/* wf_log.h - the worker's log lines (log.c, log_json.c): one line per event on stderr, logfmt or
 * JSON, written with one write(2) so that lines of concurrent threads and processes never mix.
 */
#ifndef WF_LOG_H
#define WF_LOG_H

#include <stddef.h>

/* ---- Logging (log.c) ------------------------------------------------------------------------ */

typedef enum wf__log_level {
    WF__LOG_ERROR = 0,
    WF__LOG_WARN,
    WF__LOG_INFO,
    WF__LOG_DEBUG,
} wf__log_level;

/* Sets the process-wide level (default info, or $WF_LOG_LEVEL). */
void wf__log_set_level(wf__log_level level);
/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int wf__log_parse_level(const char *name);
/* Writes one logfmt line to stderr with one write(2): ts=... level=... pid=... msg="..." and, when
 * `run` is not NULL, run= workflow= attempt=. Thread-safe. */
void wf__log_run(wf__log_level level, const char *run, const char *workflow, int attempt,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define wf__log(level, ...) wf__log_run((level), NULL, NULL, 0, __VA_ARGS__)
/* The same for a line about step `step` of a run: adds step=NAME ("step" in JSON). */
void wf__log_step(wf__log_level level, const char *run, const char *workflow, int attempt,
                  const char *step, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

typedef enum wf__log_format {
    WF__LOG_LOGFMT = 0, /* key=value (default) */
    WF__LOG_JSON,       /* one JSON object per line (log_json.c) */
} wf__log_format;
/* Sets the process-wide format; parses "logfmt" / "json" (-1 for anything else). */
void wf__log_set_format(wf__log_format format);
int wf__log_parse_format(const char *name);
/* log_json.c: formats one JSON line (newline included) into `line`; returns its length. */
size_t wf__log_json_line(char *line, size_t cap, const char *ts, const char *level, long pid,
                         const char *msg, const char *run, const char *workflow, int attempt,
                         const char *step);

#endif
