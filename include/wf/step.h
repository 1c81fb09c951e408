/* wf/step.h - durable steps: checkpoints, sleeps, event waits (the original's ctx.step).
 *
 * wf executes a handler by deterministic replay. A step's result is recorded in Redis, atomically
 * with the check that this worker still holds the run; when the handler runs again (after a
 * retry, a sleep, an event, a crash) every finished step returns its recorded result without
 * running again. Sleeps and event waits do not park a thread: they record what the run waits for,
 * return WF_SUSPEND, and the handler returns it at once (`if (rc) return rc;`). The run then holds
 * no worker slot until Redis queues it again.
 *
 * wf_step_invoke() starts a child workflow run and waits for its result the same way.
 *
 * Rules for handler authors (docs/durable-execution.md has more):
 * - Step names are unique within a run; reusing one with another kind is WF_ERR_STEP. Inside
 *   loops use wf_step_name(ctx, "charge", i) -> "charge#3".
 * - Code outside steps runs again on every replay: keep it deterministic and free of side effects.
 * - A step's side effect happens at least once (a worker may die after the effect and before the
 *   record); its recorded result is used exactly once.
 */
#ifndef WF_STEP_H
#define WF_STEP_H

#include <stdint.h>

#include <msgpack.h>

#include "api.h"
#include "error.h"
#include "workflow.h"

WF_BEGIN_DECLS

/* The body of a step: does the side effect and packs its result (one msgpack value; nothing
 * packed means nil) into `result`. Returns WF_OK, WF_ERR_FATAL (no retry: the run fails), or any
 * other negative code to be retried per the step's policy. Use wf_ctx_fail() for the message and
 * wf_ctx_retry_after() to choose the delay. */
typedef int (*wf_step_fn)(wf_ctx *ctx, void *arg, msgpack_packer *result);

typedef enum wf_backoff {
    WF_BACKOFF_EXPONENTIAL = 0, /* base * factor^(n-1) */
    WF_BACKOFF_LINEAR,          /* base * n */
} wf_backoff;

/* A step's retry policy and timeout. Zero fields take the defaults shown. */
typedef struct wf_step_options {
    int max_attempts;      /* default 3 */
    int64_t base_delay_ms; /* default 1000 */
    double factor;         /* exponential backoff constant, default 2.0 */
    wf_backoff backoff;    /* default exponential */
    int jitter_pct;        /* +/- this percent of random jitter, default 0 */
    int64_t max_delay_ms;  /* cap, default 300000 */
    int64_t timeout_ms;    /* an attempt longer than this counts as failed; wf_ctx_cancelled()
                              turns true at the deadline so `fn` can stop; default 0: none */
} wf_step_options;

/* Runs `fn(ctx, arg, packer)` once for this run and records its result under `name`; on replay
 * returns the recorded result without calling `fn`. On WF_OK, `*result` (if not NULL) points to
 * the result, borrowed: valid until the handler returns.
 * Returns WF_OK; WF_SUSPEND when a failed attempt was scheduled for a durable retry (return it);
 * WF_ERR_FATAL (or the step's last error after its attempts ran out: return it, the run fails);
 * WF_ERR_CANCELLED when the run was stopped; WF_ERR_STEP for a name reused with another kind;
 * WF_ERR_STALE when this worker lost the run. */
int wf_step_run(wf_ctx *ctx, const char *name, wf_step_fn fn, void *arg,
                const msgpack_object **result);

/* wf_step_run() with a retry policy and timeout (NULL: defaults). */
int wf_step_run_ex(wf_ctx *ctx, const char *name, wf_step_fn fn, void *arg,
                   const wf_step_options *options, const msgpack_object **result);

/* Sleeps durably for `ms` from the moment the step is first reached. Returns WF_SUSPEND the first
 * time (return it: the run waits with no worker slot) and WF_OK once the time has passed. */
int wf_step_sleep(wf_ctx *ctx, const char *name, int64_t ms);

/* Sleeps durably until `epoch_ms` (ms since the epoch, Redis time). Same returns. */
int wf_step_sleep_until(wf_ctx *ctx, const char *name, int64_t epoch_ms);

/* Waits durably for the event `event` (optionally only one whose key equals `key`; NULL: any),
 * for at most timeout_ms (0: forever). Events sent up to the look-back window (60 s) before the
 * wait was first reached count, so an event sent a moment before the wait is not lost.
 * Returns WF_SUSPEND while waiting (return it); WF_OK with `*payload` (borrowed until the handler
 * returns; nil when the event had none) once the event arrived; WF_ERR_TIMEOUT when the timeout
 * passed first (the handler may act on it). */
int wf_step_wait_for_event(wf_ctx *ctx, const char *name, const char *event, const char *key,
                           int64_t timeout_ms, const msgpack_object **payload);

/* ---- Child workflows ------------------------------------------------------------------------ */

/* Options of wf_step_invoke_ex(). Zero-initialise; zero fields take the defaults shown. */
typedef struct wf_invoke_options {
    int64_t timeout_ms; /* give up waiting after this long (WF_ERR_TIMEOUT; the child keeps
                           running); default 0: wait until the child ends */
    int keep_running;   /* 1: stopping the parent leaves this child running; default 0: stopping
                           the parent (wf_run_stop) stops the children it waits for */
} wf_invoke_options;

/* Starts a run of workflow `workflow` with input `payload` (`len` msgpack bytes; NULL/0: none) as
 * the child of this run, and waits durably for it to end, holding no worker slot meanwhile (like
 * wf_step_wait_for_event: the run suspends and is queued again when the child ends).
 *
 * Exactly one child per step: its run id is derived from this run's id and `name` (see `wf status`
 * or wf_run_steps(): the step's `event` field holds it), so a replay, a retry or a worker killed
 * mid-step finds the child it started instead of starting another. The child's end (completed,
 * failed, cancelled, terminated) is recorded in Redis by the script that ends it and delivered to
 * this run at least once by any worker of the child's workflow, also when a worker dies in
 * between; a child that ends before this run waits is not missed.
 *
 * Returns WF_SUSPEND while the child runs (return it); WF_OK once it completed, with `*output`
 * (if not NULL) pointing to its msgpack output (nil when it had none), borrowed until the handler
 * returns; WF_ERR_CHILD when it failed, was cancelled or terminated (wf_ctx_fail's message, which
 * the run records if the handler returns the code, names the child, its state and its error: the
 * handler decides what to do); WF_ERR_TIMEOUT after options->timeout_ms; WF_ERR_BAD_NAME (bad
 * workflow name), WF_ERR_UNKNOWN_WORKFLOW (no worker registered it), WF_ERR_BAD_PAYLOAD /
 * WF_ERR_TOO_LARGE; and what every step returns (WF_ERR_CANCELLED, WF_ERR_STALE, WF_ERR_STEP).
 * The payload is copied; nothing is kept after the call. */
int wf_step_invoke(wf_ctx *ctx, const char *name, const char *workflow, const void *payload,
                   size_t len, const msgpack_object **output);

/* wf_step_invoke() with options (NULL: defaults). */
int wf_step_invoke_ex(wf_ctx *ctx, const char *name, const char *workflow, const void *payload,
                      size_t len, const wf_invoke_options *options, const msgpack_object **output);

/* Inside a step body: the attempt of that step, 1 for its first execution (across replays and
 * workers). It counts every execution of the body that may have started before: recorded
 * failures, and executions lost with their worker (killed mid-step, its lease reclaimed) since
 * the run's last step record. A worker that died between two steps therefore makes the next
 * step see 2 although its body never ran: more than 1 means "an earlier execution may have had
 * effects". Outside a step body: 0. */
int wf_step_attempt(const wf_ctx *ctx);

/* Returns "base#i", a stable step name for loops. Borrowed: valid until the handler returns. */
const char *wf_step_name(wf_ctx *ctx, const char *base, int i);

/* ---- HTTP calls as durable steps ------------------------------------------------------------ */

/* An HTTP request for wf_step_http(). Zero-initialise; only `url` is required. Nothing is kept
 * after the call (the request is made, at most once per attempt, inside the call). */
typedef struct wf_http_request {
    const char *method;         /* "GET" (the default when NULL), "POST", "PUT", "DELETE"... */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value" strings, NULL-terminated; NULL: none */
    const void *body;           /* request body, `body_len` bytes; NULL: none */
    size_t body_len;
    int64_t timeout_ms;           /* one attempt, connecting included; default 30000 */
    size_t max_response;          /* response bodies larger than this fail the attempt;
                                     default 1048576 (the body is recorded in Redis) */
    const wf_step_options *retry; /* the step's attempts and backoff; NULL: wf_step_run's */
} wf_http_request;

/* What wf_step_http() answers: the recorded response, replayed as is. */
typedef struct wf_http_response {
    int status;       /* the HTTP status, 100-599 */
    const char *body; /* the response body (`body_len` bytes, then a NUL byte for
                         convenience); borrowed: valid until the handler returns */
    size_t body_len;
    const char *content_type; /* the Content-Type header, NUL-terminated; "" when absent;
                                 borrowed like `body` */
} wf_http_response;

/* Makes the HTTP request `request` as the durable step `name` (curl, on the executor thread):
 * the first time, the request is sent and its response recorded; on replay the recorded response
 * is returned without sending anything. A response with any status is a result, except that
 * connection errors, timeouts, 429 and 5xx count as failed attempts, retried durably per
 * `request->retry` (a Retry-After header in seconds is honoured). Since a worker can die after
 * the request and before the record, the request may be sent more than once: make it idempotent
 * (e.g. an Idempotency-Key header built from wf_ctx_event_id()).
 * Fills `*response` on WF_OK. Returns what wf_step_run() returns; WF_ERR_INVALID for a missing
 * URL or a URL that is not http(s). */
int wf_step_http(wf_ctx *ctx, const char *name, const wf_http_request *request,
                 wf_http_response *response);

WF_END_DECLS
#endif
