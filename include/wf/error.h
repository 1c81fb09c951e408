/* wf/error.h - error codes and the error report every fallible wf call fills.
 *
 * Every fallible call returns 0 (WF_OK) or a negative wf_err, or a pointer / NULL, and takes an
 * optional `wf_error *err` as its last argument. When the call fails and `err` is not NULL, it is
 * filled with the code and a message saying what went wrong and what to do about it. There is no
 * hidden global error state, so wf_error is safe to use from any thread.
 *
 * Codes are part of the ABI: they are never renumbered and new ones are added at the end.
 */
#ifndef WF_ERROR_H
#define WF_ERROR_H

#include "api.h"

WF_BEGIN_DECLS

/* X(NAME, value, default message). The single list behind both the enum and wf_strerror(). */
#define WF_ERRNO_MAP(X)                                                                            \
    X(INVALID, -1, "invalid argument")                                                             \
    X(NOMEM, -2, "out of memory")                                                                  \
    X(CONNECT, -3, "cannot connect to Redis")                                                      \
    X(IO, -4, "connection to Redis lost")                                                          \
    X(REDIS, -5, "Redis answered with an error")                                                   \
    X(PROTOCOL, -6, "unexpected reply from Redis")                                                 \
    X(URL, -7, "malformed Redis URL")                                                              \
    X(BAD_NAME, -8, "invalid workflow name")                                                       \
    X(BAD_ID, -9, "malformed run id")                                                              \
    X(NOT_FOUND, -10, "no such run")                                                               \
    X(UNKNOWN_WORKFLOW, -11, "unknown workflow")                                                   \
    X(TOO_LARGE, -12, "payload too large")                                                         \
    X(BAD_PAYLOAD, -13, "malformed payload")                                                       \
    X(VALIDATION, -14, "payload failed validation")                                                \
    X(FINAL, -15, "run already finished")                                                          \
    X(STALE, -16, "lease lost: the run was taken over, stopped or timed out")                      \
    X(TIMEOUT, -17, "timed out")                                                                   \
    X(CANCELLED, -18, "run was stopped")                                                           \
    X(SCHEMA, -19, "Redis holds data of an incompatible wf schema version")                        \
    X(HANDLER, -20, "workflow handler failed")                                                     \
    X(FATAL, -21, "workflow handler failed and asked for no retry")                                \
    X(CLOSED, -22, "shutting down")                                                                \
    X(STATE, -23, "operation not allowed in the run's current state")                              \
    X(EXISTS, -24, "already exists")                                                               \
    X(STEP, -25, "step misuse")                                                                    \
    X(SYSTEM, -26, "system call failed")                                                           \
    X(CHILD, -27, "child run did not complete")

typedef enum wf_err {
    WF_OK = 0,
#define WF_X_(name, value, msg) WF_ERR_##name = value,
    WF_ERRNO_MAP(WF_X_)
#undef WF_X_
} wf_err;

/* A handler or step returns WF_SUSPEND (positive, not an error) after a step helper has recorded
 * that the run waits for a timer or an event: the worker hands the run back to Redis. */
#define WF_SUSPEND 1

/* Longest message kept in a wf_error, terminating NUL included. Longer messages are truncated. */
#define WF_ERROR_MSG_MAX 256

/* An error report. Zero-initialise it (`wf_error err = {0};`); wf calls fill it only on failure. */
typedef struct wf_error {
    int code;                       /* a wf_err value */
    char message[WF_ERROR_MSG_MAX]; /* NUL-terminated, human readable */
} wf_error;

/* Returns the default message for a code (a static string; never NULL, "unknown error" for codes
 * this version does not know). */
const char *wf_strerror(int code);

/* Returns the enum's short name for a code, e.g. "WF_ERR_NOT_FOUND" (static string, never NULL). */
const char *wf_errname(int code);

/* Fills `err` (may be NULL) with `code` and a printf-style message, and returns `code`, so that
 * `return wf_error_set(err, WF_ERR_INVALID, "...")` reads naturally. */
int wf_error_set(wf_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

WF_END_DECLS
#endif
