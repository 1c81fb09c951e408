/* wf/client.h - the producer side: connect to Redis, start runs, reattach to them, stop them.
 *
 * Mirrors the original API: runWorkflow -> wf_run_workflow, getWorkflowRun -> wf_get_workflow_run,
 * deferWorkflow -> wf_defer_workflow, and a run handle with id / provider / native / status() /
 * stop().
 *
 * Threads: a wf_client is one synchronous Redis connection and, like a hiredis context, must be
 * used by one thread at a time. Open one client per thread. Run handles belong to the client that
 * made them and must be freed before it.
 */
#ifndef WF_CLIENT_H
#define WF_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "error.h"

WF_BEGIN_DECLS

struct event_base;

typedef struct wf_client wf_client;
typedef struct wf_run wf_run;

/* ---- States ------------------------------------------------------------------------------- */

typedef enum wf_state {
    WF_STATE_UNKNOWN = 0,
    WF_STATE_QUEUED,
    WF_STATE_RUNNING,
    WF_STATE_PAUSED,
    WF_STATE_WAITING,
    WF_STATE_COMPLETED,
    WF_STATE_FAILED,
    WF_STATE_CANCELLED,
    WF_STATE_TERMINATED,
} wf_state;

/* Returns the state's name as stored in Redis ("queued", ...; "unknown" for anything else).
 * Static string. */
const char *wf_state_name(wf_state state);

/* Parses a state name; returns WF_STATE_UNKNOWN for anything that is not one. */
wf_state wf_state_from_name(const char *name);

/* Returns 1 for completed, failed, cancelled and terminated, else 0. */
int wf_state_is_final(wf_state state);

/* ---- Connecting --------------------------------------------------------------------------- */

/* Connects to Redis and checks the wf schema version kept there.
 *
 * url: `redis://[user[:password]@]host[:port][/db][?prefix=P&timeout_ms=N&max_payload=N]` or
 * `unix:///path/to/redis.sock[?db=N&prefix=P...]`. NULL means $WF_REDIS_URL, else
 * redis://127.0.0.1:6379. `prefix` (default "wf") starts every key, so several apps can share
 * one Redis; `timeout_ms` (default 5000) bounds connecting and every command; `max_payload`
 * (default 1048576) is the largest input a run may carry, in bytes. A password may also come from
 * `password_file=/abs/path` (its first line) or $WF_REDIS_PASSWORD, so it never shows in a URL,
 * a process list or a log (docs/security.md).
 *
 * Returns a client that the caller frees with wf_client_free(), or NULL with `err` filled
 * (WF_ERR_URL, WF_ERR_CONNECT, WF_ERR_REDIS for a refused AUTH/SELECT, WF_ERR_SCHEMA).
 */
wf_client *wf_client_connect(const char *url, wf_error *err);

/* Frees the client. Runs still waiting in the deferred queue are sent first (up to the client's
 * timeout); any that cannot be sent are reported to the error callback. NULL is a no-op. */
void wf_client_free(wf_client *client);

/* Returns the key prefix in use ("wf" by default). Borrowed: valid until wf_client_free(). */
const char *wf_client_prefix(const wf_client *client);

/* Returns the URL the client was opened with, password removed. Borrowed, valid until free. */
const char *wf_client_url(const wf_client *client);

/* Sends PING; returns WF_OK or an error (useful for readiness checks). */
int wf_client_ping(wf_client *client, wf_error *err);

/* ---- Starting runs ------------------------------------------------------------------------ */

/* A run's priority. Every workflow has one queue (a Redis stream) per level, and a worker with
 * free slots takes the ready runs of high before those of normal before those of low (strict,
 * at each read of each worker: under constant high load, low runs wait; docs/scaling.md).
 * Priority orders the start of ready runs only: it does not pre-empt running runs, and a
 * run's retries, wake-ups and restarts stay on its level. Zero is normal. */
typedef enum wf_priority {
    WF_PRIORITY_LOW = -1,
    WF_PRIORITY_NORMAL = 0,
    WF_PRIORITY_HIGH = 1,
} wf_priority;

/* Returns the priority's name, "low", "normal" or "high" (static string), or NULL for a value
 * that is not a wf_priority. */
const char *wf_priority_name(int priority);

/* Parses "low", "normal" or "high" into `*priority`. Returns WF_OK or WF_ERR_INVALID (with a
 * message naming the accepted values) for anything else. */
int wf_priority_from_name(const char *name, wf_priority *priority, wf_error *err);

/* Options for wf_run_workflow_ex(). Zero-initialise; every field is optional. */
typedef struct wf_run_options {
    /* Caller-chosen id suffix ([A-Za-z0-9._-], at most 128 bytes): the run's id becomes
     * "NAME:SUFFIX". Starting a second run with an id that exists returns the existing run. */
    const char *id;
    /* Start no earlier than this many milliseconds from now (the run waits as `waiting`). */
    int64_t delay_ms;
    /* Skip the check that some worker has registered this workflow (see WF_ERR_UNKNOWN_WORKFLOW).
     */
    int allow_unregistered;
    /* WF_PRIORITY_HIGH, WF_PRIORITY_NORMAL (0, the default) or WF_PRIORITY_LOW; any other value
     * is refused with WF_ERR_INVALID. Kept by the run for its whole life (retries, wake-ups,
     * restarts go back onto its level). */
    int priority;
} wf_run_options;

/* Starts a run of workflow `name` with `payload` (msgpack bytes, `len` of them; NULL/0 for no
 * input). Returns once the run is durably queued in Redis.
 *
 * Returns a handle that the caller frees with wf_run_free(), or NULL with `err` filled:
 * WF_ERR_BAD_NAME (name not [A-Za-z0-9][A-Za-z0-9._-]{0,127}), WF_ERR_BAD_PAYLOAD (not exactly one
 * well-formed msgpack value), WF_ERR_TOO_LARGE (over the client's max_payload),
 * WF_ERR_UNKNOWN_WORKFLOW (no worker ever registered `name` under this prefix), WF_ERR_INVALID
 * (bad options: a negative delay, a priority that is not a wf_priority), or a connection error.
 * The payload is copied; the client keeps no reference. */
wf_run *wf_run_workflow(wf_client *client, const char *name, const void *payload, size_t len,
                        wf_error *err);

/* wf_run_workflow() with options (NULL options behaves exactly like wf_run_workflow()). */
wf_run *wf_run_workflow_ex(wf_client *client, const char *name, const void *payload, size_t len,
                           const wf_run_options *options, wf_error *err);

/* Starts `n` runs of workflow `name` with far fewer round trips than n wf_run_workflow() calls:
 * the enqueue script calls are pipelined on the client's connection, a few hundred per round
 * trip. Each run is created exactly as wf_run_workflow_ex() would, atomically on its own; the
 * batch as a whole is not atomic.
 *
 * payloads[i] / lens[i] is run i's input (msgpack bytes); `payloads` NULL (or lens NULL) means no
 * input for any run. Every payload is checked before anything is sent, so a bad one (returned as
 * WF_ERR_BAD_PAYLOAD / WF_ERR_TOO_LARGE, message naming its index) starts nothing. `options`
 * applies to every run (NULL: none), its priority included; options->id must be NULL
 * (WF_ERR_INVALID otherwise, as for a bad priority or delay).
 *
 * `runs`, when not NULL, is an array of n pointers the call fills: runs[i] is a handle of run i
 * that the caller frees with wf_run_free(), or NULL if run i was not confirmed queued. Returns
 * WF_OK when all n runs are queued. On a connection failure the unconfirmed runs are re-sent once
 * after reconnecting (with the same ids: no run is created twice); if that fails too, returns the
 * error, and exactly the runs whose runs[i] is non-NULL are known to be queued (others may be). */
int wf_run_workflow_batch(wf_client *client, const char *name, size_t n,
                          const void *const *payloads, const size_t *lens,
                          const wf_run_options *options, wf_run **runs, wf_error *err);

/* Reattaches to an existing run by id (one Redis round trip).
 * Returns a handle the caller frees with wf_run_free(), or NULL with `err` filled: WF_ERR_BAD_ID
 * when `id` is not a well-formed run id, WF_ERR_NOT_FOUND when no such run exists (or it expired
 * after its retention time). */
wf_run *wf_get_workflow_run(wf_client *client, const char *id, wf_error *err);

/* Frees a run handle (not the run). NULL is a no-op. */
void wf_run_free(wf_run *run);

/* The run's id, e.g. "publish-draft:01JD3M5S0RM3Y6ZC2W7D8X9A1B". Borrowed: valid until
 * wf_run_free(). */
const char *wf_run_id(const wf_run *run);

/* The provider name: always "redis". Static string. */
const char *wf_run_provider(const wf_run *run);

/* The native handle: the run's Redis hash key, e.g. "wf:{publish-draft}:run:publish-draft:01JD..."
 * (inspect it with `redis-cli HGETALL`). Borrowed: valid until wf_run_free(). */
const char *wf_run_native(const wf_run *run);

/* The workflow's name. Borrowed: valid until wf_run_free(). */
const char *wf_run_workflow_name(const wf_run *run);

/* ---- Status ------------------------------------------------------------------------------- */

/* One field of the run's hash as stored in Redis. */
typedef struct wf_field {
    char *name;
    char *value; /* NUL-terminated for convenience; may contain NULs (msgpack): use value_len */
    size_t value_len;
} wf_field;

/* A snapshot of a run. Filled by wf_run_status(); release with wf_status_clear(). */
typedef struct wf_status {
    wf_state state;
    char *output; /* msgpack bytes of the handler's result, or NULL */
    size_t output_len;
    char *error;           /* error text of a failed/terminated/cancelled run, or NULL */
    int attempt;           /* 1 for the first execution, +1 for each retry */
    int64_t created_at_ms; /* Redis time, ms since the epoch; 0 when not set */
    int64_t updated_at_ms;
    int64_t started_at_ms;
    int64_t finished_at_ms;
    char *wait_reason;  /* why a waiting/paused run waits (e.g. "sleep", "retry"), or NULL */
    int64_t wake_at_ms; /* when a waiting run is due again, or 0 */
    char *worker;       /* consumer name of the worker that holds or last held it, or NULL */
    wf_field *raw;      /* every field of the run hash, as stored */
    size_t raw_len;
} wf_status;

/* The run's priority, read from the status's raw fields (field `pri`, absent for normal runs).
 * A value wf does not write reads as WF_PRIORITY_NORMAL, the level such a run is queued on. */
wf_priority wf_status_priority(const wf_status *status);

/* Reads the run's current state (one round trip). On success fills `*status` (the caller releases
 * it with wf_status_clear()) and returns WF_OK; on failure returns an error and leaves `*status`
 * zeroed. WF_ERR_NOT_FOUND when the run no longer exists. */
int wf_run_status(wf_run *run, wf_status *status, wf_error *err);

/* Frees what wf_run_status() put in `status` and zeroes it. Safe on a zeroed status. */
void wf_status_clear(wf_status *status);

/* ---- Control ------------------------------------------------------------------------------ */

/* Stops the run: a queued, waiting or paused run becomes `cancelled` and never starts; a running
 * run becomes `cancelled`, its worker sees wf_ctx_cancelled() turn true and anything it returns
 * afterwards is dropped. Returns WF_OK, or WF_ERR_FINAL (message names the state) when the run had
 * already finished: a no-op that says so.
 * Child runs the run started with wf_step_invoke() and still waits for are stopped too (and
 * theirs, recursively), unless the invoke asked to keep them running; this fan-out is best effort
 * after the run itself is cancelled (an error stopping a child is not reported), and is done again
 * when the run is found already `cancelled`. */
int wf_run_stop(wf_run *run, wf_error *err);

/* wf_run_stop() with a reason, kept as the run's error ("stopped by request: REASON") and in its
 * history (wf_run_events(), kind "stopped"). `reason` NULL or "" is wf_run_stop(); one longer than
 * 1024 bytes is refused with WF_ERR_INVALID. Returns as wf_run_stop(). */
int wf_run_stop_reason(wf_run *run, const char *reason, wf_error *err);

/* Pauses a queued, waiting or running run: it stays `paused` until wf_run_resume(). A running run
 * loses its worker (whose later results are dropped) and, on resume, replays from its last
 * recorded step. Returns WF_OK, WF_ERR_FINAL, WF_ERR_STATE (already paused), WF_ERR_NOT_FOUND. */
int wf_run_pause(wf_run *run, wf_error *err);

/* Resumes a paused run: back to `waiting` if its timer is still ahead, else `queued`.
 * Returns WF_OK, WF_ERR_STATE (not paused), WF_ERR_FINAL, WF_ERR_NOT_FOUND. */
int wf_run_resume(wf_run *run, wf_error *err);

/* Runs the run again from the start as a new attempt, whatever its state (e.g. retry a failed
 * run). clear_steps 1 forgets recorded step results so every step executes again; 0 replays
 * them. Returns WF_OK or WF_ERR_NOT_FOUND. */
int wf_run_restart(wf_run *run, int clear_steps, wf_error *err);

/* ---- Deferred starts ---------------------------------------------------------------------- */

/* Called for each deferred run that could not be queued, with the workflow name and the error.
 * Runs on the thread that sends deferred runs (the loop thread when attached, else the client's
 * background thread). Arguments are borrowed for the duration of the call. */
typedef void (*wf_defer_error_fn)(const char *workflow, const wf_error *err, void *userdata);

/* Sets the callback that hears about deferred runs that failed to queue. Without one, failures
 * are printed to stderr: never dropped silently. */
void wf_client_on_defer_error(wf_client *client, wf_defer_error_fn fn, void *userdata);

/* Attaches the client to the caller's libevent loop: from now on wf_defer_workflow() queues runs
 * asynchronously on that loop (a second, async Redis connection owned by the client). Call from
 * the loop's thread. Returns WF_OK or an error. The base must outlive the client. */
int wf_client_attach(wf_client *client, struct event_base *base, wf_error *err);

/* Starts a run without waiting for Redis (deferWorkflow). Never blocks on the network. Checks the
 * name and payload at once and returns WF_OK when the run was accepted for dispatch, or an error
 * (bad name, bad or oversized payload, WF_ERR_CLOSED) without dispatching. Failures after that are
 * reported to the defer error callback. Copies the payload. */
int wf_defer_workflow(wf_client *client, const char *name, const void *payload, size_t len);

/* wf_defer_workflow() with options (NULL: exactly wf_defer_workflow()). Every field of
 * wf_run_options applies as for wf_run_workflow_ex(); the options are checked at once (a bad
 * priority, delay or id suffix returns WF_ERR_INVALID / WF_ERR_BAD_ID without dispatching) and
 * copied, the id string included. An attached client never checks registration, whatever
 * allow_unregistered says (a synchronous lookup would block the caller's loop). */
int wf_defer_workflow_ex(wf_client *client, const char *name, const void *payload, size_t len,
                         const wf_run_options *options);

/* Waits until every deferred run accepted so far has been sent (or reported failed), for at most
 * timeout_ms. Returns WF_OK or WF_ERR_TIMEOUT. Not for attached clients (their loop sends). */
int wf_client_flush(wf_client *client, int timeout_ms, wf_error *err);

/* ---- Listing ------------------------------------------------------------------------------ */

/* Which runs wf_list_runs() returns. Zero-initialise; every field is optional. */
typedef struct wf_list_options {
    const char *workflow; /* only this workflow; NULL: every registered workflow */
    wf_state state;       /* only this state; WF_STATE_UNKNOWN: every state */
    size_t limit;         /* at most this many ids (0: 100) */
    int64_t since_ms;     /* only runs whose last state change is at or after this (Redis ms
                             since the epoch); 0: no lower bound */
    int64_t until_ms;     /* only runs whose last state change is at or before this; 0: none */
    size_t offset;        /* skip this many of the newest matching runs first (paging) */
} wf_list_options;

/* Lists run ids, newest first (by last state change). On success sets `*ids` to an array of
 * `*count` strings; the caller frees it with wf_list_free(*ids, *count). Returns WF_OK or an error
 * (WF_ERR_BAD_NAME for an invalid options->workflow, WF_ERR_INVALID when since_ms > until_ms).
 */
int wf_list_runs(wf_client *client, const wf_list_options *options, char ***ids, size_t *count,
                 wf_error *err);

/* Lists the workflow names that workers have registered under this prefix, sorted. Same
 * ownership as wf_list_runs(). */
int wf_list_workflows(wf_client *client, char ***names, size_t *count, wf_error *err);

/* Frees an array returned by wf_list_runs() or wf_list_workflows(). NULL is a no-op. */
void wf_list_free(char **items, size_t count);

/* ---- Events ------------------------------------------------------------------------------- */

/* Sends the event `name` with an optional msgpack payload: it is recorded in Redis (kept in a
 * capped log, so a wait registered a moment later still finds it) and delivered to every run
 * waiting for it (wf_step_wait_for_event), which is queued again. Returns WF_OK or an error
 * (WF_ERR_BAD_NAME, WF_ERR_BAD_PAYLOAD, WF_ERR_TOO_LARGE, a connection error). */
int wf_send_event(wf_client *client, const char *name, const void *payload, size_t len,
                  wf_error *err);

/* wf_send_event() for waits that filter on a key (e.g. an order id): delivered to waits on `name`
 * whose key equals `key`, and to waits with no key. key NULL or "" means no key. */
int wf_send_event_keyed(wf_client *client, const char *name, const char *key, const void *payload,
                        size_t len, wf_error *err);

WF_END_DECLS

/* Operating a deployment (steps, statistics, workers, history, schedules, flow control). */
#include "ops.h"

#endif
