/* wf/workflow.h - defining a workflow: the handler, its options, and its execution context.
 *
 * defineWorkflow(handler, options) becomes a file `workflows/NAME.c` that ends with
 *
 *     WF_WORKFLOW(handler, .timeout_ms = 30000);
 *
 * The build (wf_add_workflows() in CMake) compiles each such file with WF_WORKFLOW_NAME set from
 * the file's name, as a module that `wf-worker --workflows DIR` loads, or into a program that
 * embeds the worker. A program can also register handlers explicitly with wf_worker_define().
 */
#ifndef WF_WORKFLOW_H
#define WF_WORKFLOW_H

#include <stdint.h>

#include <msgpack.h>

#include "api.h"
#include "error.h"

WF_BEGIN_DECLS

/* The execution context of one attempt of one run. Borrowed by the handler for the duration of
 * the call; never keep it. */
typedef struct wf_ctx wf_ctx;

/* A workflow handler: plain synchronous C, run on a worker's executor thread.
 *
 * `input` is the run's payload (a nil object when the run has none), borrowed for the call. The
 * handler packs its result (one msgpack value) into `output` and returns WF_OK; or returns a
 * negative code after wf_ctx_fail() said why (WF_ERR_FATAL: fail without retry); or returns
 * WF_SUSPEND when a step helper asked it to (the run waits, then the handler runs again from the
 * top with finished steps replayed). */
typedef int (*wf_handler_fn)(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output);

/* Options of one workflow definition (defineWorkflow's options). Zero fields take defaults. */
typedef struct wf_workflow_options {
    int64_t timeout_ms;     /* maximum execution time of one attempt; 0: no limit. An attempt that
                               overruns it ends the run as `terminated` with a timeout error. */
    int max_attempts;       /* attempts before a failing run is `failed`; default 3 */
    int64_t backoff_ms;     /* delay before the first retry, doubled each time; default 1000 */
    int64_t max_backoff_ms; /* cap on the retry delay; default 60000 */
} wf_workflow_options;

/* A definition as the build registers it. */
typedef struct wf_workflow_def {
    const char *name;
    wf_handler_fn handler;
    wf_workflow_options options;
} wf_workflow_def;

/* Adds a definition to the process-wide table that wf_worker_new() picks up. Called by the
 * WF_WORKFLOW macro when the file is loaded; copies nothing: `def` must stay valid (it is static).
 * Returns WF_OK, or WF_ERR_EXISTS if that name is already registered. */
int wf_workflow_register(const wf_workflow_def *def);

/* Number of definitions registered so far, and the i-th one (borrowed, static). */
int wf_workflow_count(void);
const wf_workflow_def *wf_workflow_at(int i);

#ifndef WF_WORKFLOW_NAME
#define WF_WORKFLOW_NAME "" /* set by wf_add_workflows() from the file name */
#endif

/* Declares the workflow of this file: WF_WORKFLOW(handler) or WF_WORKFLOW(handler, .timeout_ms =
 * 5000, .max_attempts = 5). Registers it when the program or module is loaded. */
/* (The leading 0 lets the option list be empty; a designated option that sets the first field
 * again would trip -Woverride-init, which -Wextra enables, so that warning is off for the line.) */
#define WF_WORKFLOW(handler_fn, ...)                                                               \
    _Pragma("GCC diagnostic push")                                                                 \
        _Pragma("GCC diagnostic ignored \"-Woverride-init\"") static const wf_workflow_def         \
            wf_workflow_def_ = {WF_WORKFLOW_NAME, handler_fn, {0, __VA_ARGS__}};                   \
    _Pragma("GCC diagnostic pop") __attribute__((constructor)) static void wf_workflow_ctor_(void) \
    {                                                                                              \
        (void)wf_workflow_register(&wf_workflow_def_);                                             \
    }                                                                                              \
    typedef int wf_workflow_dummy_

/* ---- The execution context (WorkflowExecutionContext) ------------------------------------- */

/* "redis". Static string. */
const char *wf_ctx_provider(const wf_ctx *ctx);

/* The run id (the original's eventId). Borrowed: valid during the handler call. */
const char *wf_ctx_event_id(const wf_ctx *ctx);

/* The workflow's name. Borrowed: valid during the handler call. */
const char *wf_ctx_workflow(const wf_ctx *ctx);

/* The attempt number, 1 for the first execution. */
int wf_ctx_attempt(const wf_ctx *ctx);

/* 1 once the run was stopped or its timeout passed: the handler should return soon (its result
 * will be dropped). Thread-safe. */
int wf_ctx_cancelled(const wf_ctx *ctx);

/* Records why the handler fails (printf-style); the text becomes the run's error. Returns `code`,
 * so `return wf_ctx_fail(ctx, WF_ERR_FATAL, "card %s declined", id);` reads naturally.
 * WF_ERR_FATAL fails the run at once; any other negative code is retried while attempts remain. */
int wf_ctx_fail(wf_ctx *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The text of the last wf_ctx_fail() of this execution (step helpers set it too when they return
 * an error, e.g. the child's error after wf_step_invoke() returned WF_ERR_CHILD), or "" when there
 * is none. Borrowed: valid until the next wf_ctx_fail() or the handler returns. */
const char *wf_ctx_error(const wf_ctx *ctx);

/* Asks that the next retry wait `delay_ms` instead of the workflow's backoff. Use before
 * returning an error. */
void wf_ctx_retry_after(wf_ctx *ctx, int64_t delay_ms);

/* sendEvent: records an event `name` (optional msgpack payload) in Redis, like wf_send_event().
 * Returns WF_OK or an error (err may be NULL). */
int wf_ctx_send_event(wf_ctx *ctx, const char *name, const void *payload, size_t len,
                      wf_error *err);

WF_END_DECLS
#endif
