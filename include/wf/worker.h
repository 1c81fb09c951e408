/* wf/worker.h - the worker pool: claim runs from Redis and execute their handlers.
 *
 * One wf_worker is one process's worth of work: a libevent loop on async hiredis that claims runs
 * in batches from the streams of the workflows it knows, renews their leases, moves timers, and
 * hands runs to `concurrency` executor threads that call the handlers. wf_worker_run() blocks in
 * that loop until wf_worker_stop(). The `wf-worker` program wraps this with a supervisor that
 * forks several such processes.
 */
#ifndef WF_WORKER_H
#define WF_WORKER_H

#include <stdint.h>

#include "api.h"
#include "error.h"
#include "workflow.h"

WF_BEGIN_DECLS

typedef struct wf_worker wf_worker;

/* Worker settings. Zero-initialise; zero fields take the defaults. */
typedef struct wf_worker_options {
    const char *redis_url; /* as wf_client_connect(); NULL: $WF_REDIS_URL or localhost */
    int concurrency;       /* executor threads = runs in flight at once; default 8 */
    int batch;             /* runs claimed per Redis round trip; default = concurrency */
    int64_t lease_ms;      /* a claimed run is presumed lost this long after the last heartbeat;
                              default 15000 (heartbeats every lease_ms / 3) */
    int max_reclaims;      /* a run whose worker died this many times fails; default 5 */
    const char *consumer;  /* consumer name; default "HOST:PID:RANDOM", unique per process */
    int64_t drain_ms;      /* on stop, how long in-flight runs may take before they are handed
                              back to the queue; default 30000 */
    int register_all;      /* pick up every definition in the process-wide table
                              (wf_workflow_register / WF_WORKFLOW): 0 or 1 yes (the default),
                              -1 no (only wf_worker_define / wf_worker_load_dir) */

    /* -- Operations (docs/operations.md, "Metrics, health, logs, webhooks"); added at the end so
     * older initialisers still fit. Strings are copied by wf_worker_new(). NULL / 0: off or the
     * default. -- */
    const char *http_listen;       /* "HOST:PORT": serve /healthz, /readyz and /metrics
                                      (Prometheus text) there on the worker's loop; NULL: none */
    const char *http_token;        /* then every request needs "Authorization: Bearer TOKEN";
                                      required (16+ characters) when HOST is not loopback */
    const char *webhook_url;       /* POST a signed notification for every run of this worker's
                                      workflows that ends (completed, failed, cancelled,
                                      terminated), from the durable outbox; NULL: none */
    const char *webhook_secret;    /* HMAC-SHA256 key of X-WF-Signature; required with a URL */
    int webhook_max_attempts;      /* attempts before a notification goes to the dead outbox
                                      P:{W}:outbox:dead; default 10 */
    int64_t webhook_timeout_ms;    /* one delivery attempt; default 10000 */
    int64_t webhook_visibility_ms; /* a notification a dead worker left unacknowledged is taken
                                      over by another worker after this; default 60000 */
} wf_worker_options;

/* Creates a worker (connects to Redis, checks the schema). It picks up every workflow registered
 * with WF_WORKFLOW in this process so far. Returns a worker the caller frees with
 * wf_worker_free(), or NULL with `err` filled. */
wf_worker *wf_worker_new(const wf_worker_options *options, wf_error *err);

/* Registers a workflow handler under `name` (copied) with `options` (copied; NULL: defaults).
 * Call before wf_worker_run(). Returns WF_OK, WF_ERR_BAD_NAME or WF_ERR_EXISTS. */
int wf_worker_define(wf_worker *worker, const char *name, wf_handler_fn handler,
                     const wf_workflow_options *options, wf_error *err);

/* Loads every `*.so` workflow module in `dir` (built by wf_add_workflows) and registers what
 * they define. Returns the number of workflows loaded (>= 0) or an error (unreadable directory, a
 * module that fails to load: the message names the file and dlerror()). */
int wf_worker_load_dir(wf_worker *worker, const char *dir, wf_error *err);

/* Runs the loop on the calling thread until wf_worker_stop(). Returns WF_OK after a clean drain,
 * or an error if the worker could not start (no workflows, Redis unreachable at start). Redis
 * outages while running are survived with reconnect and backoff, not returned. */
int wf_worker_run(wf_worker *worker, wf_error *err);

/* Asks a running worker to drain and return from wf_worker_run(): it claims nothing more, lets
 * in-flight runs finish for up to drain_ms, hands the rest back to the queue. Safe to call from
 * any thread and from a signal handler. */
void wf_worker_stop(wf_worker *worker);

/* The worker's consumer name. Borrowed: valid until wf_worker_free(). */
const char *wf_worker_consumer(const wf_worker *worker);

/* Frees a worker that is not running. Executor threads are joined; a handler still running
 * after wf_worker_run() returned (one that ignores wf_ctx_cancelled() past the drain deadline) is
 * given one more second, then its thread is detached: it frees its own run when the handler
 * returns, and its result is dropped. NULL is a no-op. */
void wf_worker_free(wf_worker *worker);

/* The `wf-worker` program (options and exit status: `wf-worker --help`, man wf-worker): loads the
 * modules of --workflows, runs worker processes under a supervisor (or one worker in this
 * process with --processes 0) and returns the program's exit status (0, 1, or 2 for a usage
 * error). Installs signal handlers and may fork: call it from main(), once. */
int wf_worker_main(int argc, char **argv);

WF_END_DECLS
#endif
