/* wf/ops.h - operating a deployment from a client: a run's recorded steps and history, counts
 * and throughput per workflow (and per minute), the live workers, purging, pausing a whole
 * workflow, dead letters, schedules and flow limits. Split from client.h, which includes it, so
 * `#include <wf/client.h>` (or <wf/wf.h>) still declares all of it; the same threading rules
 * apply (client.h).
 */
#ifndef WF_PUBLIC_OPS_H
#define WF_PUBLIC_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "client.h"
#include "error.h"

WF_BEGIN_DECLS

/* ---- Operating: steps, statistics, workers, purging ----------------------------------------- */

/* One recorded step of a run (a value of its steps hash), as wf_run_steps() returns it. The
 * strings are NUL-terminated and owned by the array; release it with wf_steps_free(). */
typedef struct wf_step_info {
    char *name;             /* the step's name, as the workflow gave it */
    char *kind;             /* "run" (wf_step_run), "sleep", "event" (wf_step_wait_for_event) or
                               "invoke" (wf_step_invoke) */
    char *status;           /* "done", "failed", "waiting" or "timeout"; "unreadable" when the
                               record did not decode (then `error` says why) */
    int attempts;           /* executions of the step so far */
    int64_t started_at_ms;  /* Redis time, ms since the epoch; 0 when not recorded */
    int64_t finished_at_ms; /* when it finished; 0 while it waits */
    int64_t until_ms;       /* a sleep's wake time or an event wait's deadline; 0: none */
    char *error;            /* the step's last error text, or NULL */
    char *event;            /* kind "event": the event's name; kind "invoke": the child's run id;
                               else NULL */
    char *event_key;        /* kind "event": the key the wait filters on, or NULL; kind "invoke":
                               how the child ended ("completed", "failed"...), NULL while it runs */
    char *result;           /* msgpack bytes of the step's result (an event's payload), or NULL */
    size_t result_len;
} wf_step_info;

/* Reads the steps a run has recorded (one or two round trips), ordered by start time, then name.
 * On success sets `*steps` to an array of `*n` entries (NULL and 0 for a run without steps) that
 * the caller frees with wf_steps_free(*steps, *n), and returns WF_OK. Returns WF_ERR_NOT_FOUND when
 * the run no longer exists, or a connection error. */
int wf_run_steps(wf_run *run, wf_step_info **steps, size_t *n, wf_error *err);

/* Frees an array returned by wf_run_steps(). NULL is a no-op. */
void wf_steps_free(wf_step_info *steps, size_t n);

/* A workflow's numbers at one moment, as wf_workflow_stats() returns them. */
typedef struct wf_stats {
    char *workflow;                           /* owned by the array */
    long long count[WF_STATE_TERMINATED + 1]; /* runs per state, indexed by wf_state ([0]: 0) */
    long long completed_last_minute;          /* runs that completed in the last 60 s */
    double runs_per_second;                   /* completed_last_minute / 60 */
    int64_t oldest_queued_ms;                 /* age of the oldest queued run (ms); 0: none */
    long long dead;                           /* dead letters kept (P:{W}:dead) */
    int64_t now_ms;                           /* the Redis time the numbers were taken at */
    int paused; /* 1 while the workflow is paused (wf_workflow_pause): its queued runs wait */
} wf_stats;

/* Counts runs per state for workflow `workflow` (NULL: every registered workflow, sorted by
 * name), from the state indexes, plus throughput and the queue's oldest run, all against Redis's
 * clock. One pipelined round trip per workflow. On success sets `*stats` to `*n` entries that the
 * caller frees with wf_stats_free(*stats, *n). Returns WF_OK, WF_ERR_BAD_NAME, or a connection
 * error. A workflow that was never registered simply counts zero everywhere. */
int wf_workflow_stats(wf_client *client, const char *workflow, wf_stats **stats, size_t *n,
                      wf_error *err);

/* Frees an array returned by wf_workflow_stats(). NULL is a no-op. */
void wf_stats_free(wf_stats *stats, size_t n);

/* ---- History -------------------------------------------------------------------------------- */

/* One minute of a workflow's history, as wf_workflow_history() returns it. */
typedef struct wf_history_point {
    int64_t minute_ms;   /* start of the minute, ms since the epoch (Redis time) */
    long long started;   /* runs started for the first time (attempt 1's first claim) */
    long long completed; /* runs that completed */
    long long failed;    /* runs that ended failed or terminated (retries are not counted) */
} wf_history_point;

/* Per-workflow counts per minute, kept by the scripts for a day (P:{W}:hist:*, docs/
 * redis-layout.md): one point for every minute in [since_ms, until_ms), oldest first, zeros
 * included. since_ms is rounded down to its minute; until_ms 0 means up to and including the
 * current minute (Redis time); since_ms 0 means 60 minutes before until_ms. At most 10080 points
 * (a week). One pipelined round trip (plus TIME when until_ms is 0). On success sets `*points` to
 * `*n` entries that the caller frees with wf_history_free(*points). Returns WF_OK,
 * WF_ERR_BAD_NAME, WF_ERR_INVALID (since_ms >= until_ms, a negative time, a longer range) or a
 * connection error. */
int wf_workflow_history(wf_client *client, const char *workflow, int64_t since_ms, int64_t until_ms,
                        wf_history_point **points, size_t *n, wf_error *err);

/* Frees an array returned by wf_workflow_history(). NULL is a no-op. */
void wf_history_free(wf_history_point *points);

/* One thing that happened to a run, as the script that made it happen recorded it (the run
 * hash's fields evN, docs/redis-layout.md). */
typedef struct wf_run_event {
    int64_t at_ms; /* Redis time, ms since the epoch */
    char *kind;    /* "enqueued", "started", "paused", "resumed", "stopped", "retried",
                      "restarted", "reclaimed", "released", "completed", "failed", "terminated" */
    char *detail;  /* NULL, or what the kind needs: the attempt and worker of a start, the error
                      of a retry or failure, a stop's reason, the state a pause left */
} wf_run_event;

/* Reads run `run`'s history, oldest first (one round trip): every transition since it was
 * enqueued, or the newest 50 when there were more. A run that was only enqueued, started and
 * ended (or one written by an older wf) records nothing, to keep the plain path cheap: its
 * events come from its created_at, started_at and finished_at. On success
 * sets `*events` to `*n` entries that the caller frees with wf_run_events_free(*events, *n).
 * Returns WF_OK, WF_ERR_NOT_FOUND when the run no longer exists, or a connection error. */
int wf_run_events(wf_run *run, wf_run_event **events, size_t *n, wf_error *err);

/* Frees an array returned by wf_run_events(). NULL is a no-op. */
void wf_run_events_free(wf_run_event *events, size_t n);

/* A queue entry that was not a valid run record, moved aside by a worker's claim (P:{W}:dead,
 * docs/redis-layout.md), as wf_dead_letters() returns it. Strings are owned by the array. */
typedef struct wf_dead_letter {
    char *run_id;  /* the run it stood for when that is known (its run key held no hash), or NULL */
    int64_t at_ms; /* when it was moved aside (Redis ms) */
    char *reason;  /* why it is not a valid run record */
    char *entry;   /* the stream entry's id */
    char *worker;  /* consumer name of the worker that moved it, or NULL */
} wf_dead_letter;

/* Reads the dead letters of `workflow`, newest first, at most `limit` (0: 100; the list keeps the
 * newest 10,000). One round trip. On success sets `*letters` to `*n` entries (NULL and 0: none)
 * that the caller frees with wf_dead_letters_free(*letters, *n). An item that is not wf's JSON is
 * returned with its raw text as the reason. Returns WF_OK, WF_ERR_BAD_NAME or a connection
 * error. */
int wf_dead_letters(wf_client *client, const char *workflow, size_t limit, wf_dead_letter **letters,
                    size_t *n, wf_error *err);

/* Frees an array returned by wf_dead_letters(). NULL is a no-op. */
void wf_dead_letters_free(wf_dead_letter *letters, size_t n);

/* A worker is stale when its last heartbeat in P:workers is older than this. */
#define WF_WORKER_STALE_MS 60000

/* A worker process as it describes itself in the hash P:workers (written by every worker at each
 * heartbeat, removed when it exits cleanly). */
typedef struct wf_worker_info {
    char *name; /* consumer name, "HOST:PID:HEX" (the run hash's `worker` field) */
    char *host; /* NULL when the entry did not parse */
    long long pid;
    int64_t started_at_ms; /* ms since the epoch; 0 unknown */
    int64_t last_seen_ms;  /* the last heartbeat (Redis ms since the epoch); 0 unknown */
    int64_t age_ms;        /* Redis time minus last_seen_ms */
    int concurrency;       /* executor slots */
    int busy;              /* slots in use at the last heartbeat */
    char **workflows;      /* the workflows it runs; `nworkflows` strings */
    size_t nworkflows;
    int stale; /* 1 when last_seen is older than WF_WORKER_STALE_MS (or unreadable): presumed dead
                */
} wf_worker_info;

/* Lists the worker processes registered in P:workers, sorted by name. `include_stale` 0 leaves out
 * those presumed dead. On success sets `*workers` to `*n` entries that the caller frees with
 * wf_workers_free(*workers, *n). Returns WF_OK or a connection error. */
int wf_list_workers(wf_client *client, int include_stale, wf_worker_info **workers, size_t *n,
                    wf_error *err);

/* Frees an array returned by wf_list_workers(). NULL is a no-op. */
void wf_workers_free(wf_worker_info *workers, size_t n);

/* What wf_purge_runs() deletes. Zero-initialise. */
typedef struct wf_purge_options {
    int64_t older_than_ms; /* only runs whose last state change is at least this old (Redis time) */
    const char *workflow;  /* only this workflow; NULL: every registered workflow */
    wf_state state;        /* only this final state; WF_STATE_UNKNOWN: all four final states */
    int dry_run;           /* 1: delete nothing, count what would go */
} wf_purge_options;

/* Deletes finished runs (completed, failed, cancelled, terminated) whose last state change is
 * older than options->older_than_ms, with their steps, before their retention time would: each
 * run is re-checked to be final and old enough inside Redis (lua/purge.lua), so a run restarted
 * meanwhile is never touched. Runs that are not final are never deleted. Sets `*purged` (may be
 * NULL) to the number deleted (or, with dry_run, the number that would be). Returns WF_OK,
 * WF_ERR_INVALID (a non-final state, a negative age), WF_ERR_BAD_NAME, or a connection error
 * (then some runs may already be deleted: *purged counts them). */
int wf_purge_runs(wf_client *client, const wf_purge_options *options, size_t *purged,
                  wf_error *err);

/* ---- Upgrades ------------------------------------------------------------------------------ */

/* What wf_migrate() did. */
typedef struct wf_migrate_result {
    int from;             /* the schema version Redis held (0: none, an empty Redis) */
    int to;               /* the one it holds now: this wf's */
    size_t workflows;     /* workflows whose keys were migrated */
    size_t queued_index;  /* members of the schema 1 state:queued indexes deleted */
    size_t running_index; /* members of the schema 1 state:running indexes deleted */
} wf_migrate_result;

/* Moves the data in the Redis at `url` from an older wf's schema to this wf's
 * (docs/upgrading.md): the step between stopping the older workers and starting this wf's. No
 * run is rewritten, lost or run twice; runs queued, waiting, paused, running under a lease or
 * finished before go on after. Safe to run again (after an interruption, or when there is nothing
 * to do). Refuses with WF_ERR_STATE while worker processes are alive unless `force` is 1 (an
 * older worker would not read the runs newer clients write). `result` may be NULL. Returns WF_OK,
 * WF_ERR_STATE, WF_ERR_SCHEMA (Redis holds a newer schema than this wf's), WF_ERR_INVALID (a bad
 * URL), or a connection error. */
int wf_migrate(const char *url, int force, wf_migrate_result *result, wf_error *err);

/* ---- Schedules ----------------------------------------------------------------------------- */

/* What a schedule does about firings that passed while no worker ran it. */
typedef enum wf_catch_up {
    WF_CATCH_UP_ONE = 0, /* default: one run stands for all the missed firings, then on time */
    WF_CATCH_UP_ALL,     /* one run for every missed firing, then on time */
    WF_CATCH_UP_NONE,    /* missed firings are skipped (a firing over 60 s late counts as missed) */
} wf_catch_up;

/* "one", "all", "none" (static strings); wf_catch_up_from_name returns -1 for anything else. */
const char *wf_catch_up_name(wf_catch_up policy);
int wf_catch_up_from_name(const char *name);

/* Options of wf_schedule_add_ex(). Zero-initialise. */
typedef struct wf_schedule_options {
    wf_catch_up catch_up;
} wf_schedule_options;

/* Adds (or replaces) schedule `id` ([A-Za-z0-9._-], at most 64 bytes; unique per workflow) that
 * starts a run of `workflow` with `payload` (msgpack bytes, copied; NULL/0: no input) at every
 * firing of `spec`:
 *   - a 5-field cron expression in UTC, "MIN HOUR DOM MONTH DOW" with `*`, N, N-M, lists (,) and
 *     steps (/), month and day names (jan, mon, ...): "0-59/15 9-17 * * mon-fri";
 *   - @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually);
 *   - "@every DUR", a fixed interval from now: "@every 30s", "@every 1h30m" (at least 1 s).
 * Workers running `workflow` fire it (each firing starts exactly one run, id
 * "WORKFLOW:sched-ID-FIREMS", however many workers there are). Replacing a schedule restarts its
 * timing and counters. Returns WF_OK, WF_ERR_INVALID (bad id or spec, with the reason),
 * WF_ERR_BAD_NAME, WF_ERR_UNKNOWN_WORKFLOW, WF_ERR_BAD_PAYLOAD, WF_ERR_TOO_LARGE, or a
 * connection error. */
int wf_schedule_add(wf_client *client, const char *id, const char *workflow, const char *spec,
                    const void *payload, size_t len, wf_error *err);

/* wf_schedule_add() with options (NULL: the defaults). */
int wf_schedule_add_ex(wf_client *client, const char *id, const char *workflow, const char *spec,
                       const void *payload, size_t len, const wf_schedule_options *options,
                       wf_error *err);

/* Removes schedule `id` of `workflow` (NULL: of every registered workflow that has one): it fires
 * no more; runs it started are untouched. Returns WF_OK, WF_ERR_NOT_FOUND, WF_ERR_INVALID,
 * WF_ERR_BAD_NAME, or a connection error. */
int wf_schedule_remove(wf_client *client, const char *workflow, const char *id, wf_error *err);

/* A schedule as wf_schedule_list() returns it. Strings are owned by the array. */
typedef struct wf_schedule_info {
    char *id;
    char *workflow;
    char *spec;
    char *payload; /* msgpack bytes of the runs' input, or NULL */
    size_t payload_len;
    wf_catch_up catch_up;
    int64_t created_at_ms; /* Redis time, ms since the epoch */
    int64_t next_at_ms;    /* the next firing */
    int64_t last_at_ms;    /* the last firing handled; 0: none yet */
    long long fires;       /* runs started so far */
    char *last_run;        /* id of the last run started, or NULL */
    int paused;            /* 1 while paused (wf_schedule_pause): next_at_ms is then the firing it
                              would have made; the resume picks the first one after it */
} wf_schedule_info;

/* Lists the schedules of `workflow` (NULL: of every registered workflow), sorted by workflow, then
 * id. On success sets `*schedules` to `*n` entries that the caller frees with
 * wf_schedules_free(*schedules, *n). Returns WF_OK, WF_ERR_BAD_NAME or a connection error. */
int wf_schedule_list(wf_client *client, const char *workflow, wf_schedule_info **schedules,
                     size_t *n, wf_error *err);

/* Frees an array returned by wf_schedule_list(). NULL is a no-op. */
void wf_schedules_free(wf_schedule_info *schedules, size_t n);

/* Pauses schedule `id` of `workflow`: it fires no more until wf_schedule_resume() (a firing a
 * worker is making at that very moment may still start its run). Runs it started are untouched.
 * Idempotent. Returns WF_OK, WF_ERR_NOT_FOUND, WF_ERR_INVALID (bad id), WF_ERR_BAD_NAME or a
 * connection error. */
int wf_schedule_pause(wf_client *client, const char *workflow, const char *id, wf_error *err);

/* Resumes a paused schedule: its next firing is the first one after now by its spec (an @every
 * interval keeps its phase); the firings missed while paused are skipped, whatever its catch-up
 * policy: no burst. Idempotent (a schedule that is not paused keeps its timing). Returns as
 * wf_schedule_pause(). */
int wf_schedule_resume(wf_client *client, const char *workflow, const char *id, wf_error *err);

/* The longest run id, terminating NUL included ("WORKFLOW:SUFFIX", 128 bytes each at most). */
#define WF_RUN_ID_MAX 258

/* Starts one run of schedule `id` now, with its payload, as a firing would (the run carries the
 * schedule's id; counted in `fires` and `last_run`), without moving its next firing; works on a
 * paused schedule too. The new run's id, "WORKFLOW:sched-ID-now-MS", is copied to `run_id`
 * (WF_RUN_ID_MAX bytes) when it is not NULL. Returns as wf_schedule_pause(). */
int wf_schedule_trigger(wf_client *client, const char *workflow, const char *id, char *run_id,
                        wf_error *err);

/* ---- Flow control ------------------------------------------------------------------------- */

/* Pauses a whole workflow: workers stop claiming its queued runs; runs already started go on, and
 * runs keep being started (wf_run_workflow and friends, schedules, retries: they wait `queued`).
 * Takes effect at each worker's next claim; a worker that read entries of the workflow just
 * before leaves them queued (no run is lost). wf_workflow_stats() says `paused`. Idempotent: a
 * second pause keeps the first one's time. Returns WF_OK, WF_ERR_BAD_NAME or a connection error.
 * No worker need have registered the workflow. */
int wf_workflow_pause(wf_client *client, const char *workflow, wf_error *err);

/* Lifts wf_workflow_pause(): workers claim the workflow's queued runs again, oldest first per
 * priority, within about a second. Idempotent (a workflow that is not paused is left alone).
 * Returns WF_OK, WF_ERR_BAD_NAME or a connection error. */
int wf_workflow_resume(wf_client *client, const char *workflow, wf_error *err);

/* How long a workflow's finished runs are kept (wf_workflow_retention_set), as queue users expect:
 * for a time, the last N, or none. All zero: the connection's retention (`?retention=` in the
 * URL; 0 there keeps runs forever). `keep_ms` and `keep_last` may be combined (whichever drops a
 * run first); `keep_none` goes alone. */
typedef struct wf_retention {
    int64_t keep_ms; /* keep each finished run this long after it ended; 0: the connection's */
    long keep_last;  /* > 0: keep at most this many of the newest, per final state */
    int keep_none;   /* 1: remove each run as it ends (remove-on-complete): only the per-minute
                        history (wf_workflow_history) counts it, and wf_run_status says
                        WF_ERR_NOT_FOUND */
} wf_retention;

/* Sets how long `workflow`'s finished runs are kept: `completed` for completed runs, `failed` for
 * failed, cancelled and terminated ones (NULL: the connection's retention for that kind). Stored in
 * Redis (P:{W}:keep), so it holds for every worker and client, and applies to the runs that end
 * from then on (a lower `keep_last` trims older runs too, up to 1000 each time a run ends).
 * Returns WF_OK, WF_ERR_INVALID (a negative figure, `keep_none` with another), WF_ERR_BAD_NAME or
 * a connection error. No worker need have registered the workflow. */
int wf_workflow_retention_set(wf_client *client, const char *workflow,
                              const wf_retention *completed, const wf_retention *failed,
                              wf_error *err);

/* Reads what wf_workflow_retention_set() stored (all zero: the connection's). Either output may be
 * NULL. Returns WF_OK, WF_ERR_BAD_NAME or a connection error. */
int wf_workflow_retention_get(wf_client *client, const char *workflow, wf_retention *completed,
                              wf_retention *failed, wf_error *err);

/* A workflow's limits, enforced in Redis across every worker. A run over a limit is not started:
 * it waits (state `waiting`, wait_reason "concurrency limit: ...", "key limit: ..." or "rate
 * limit: ...", holding no worker slot) and starts, oldest first, when a running one ends or the
 * rate allows. Singleton and debounce act when a run is started (wf_run_workflow and friends,
 * wf_defer_workflow): the call returns the run that already stands for the key. Runs started by
 * schedules and child runs are not under them. */
typedef struct wf_flow_limits {
    int max_running;   /* runs of the workflow running at once; 0: no limit */
    const char *key;   /* a field of the run's input map (JSON object) whose value groups runs, e.g.
                          "customer"; NULL: none. A run without the field, or whose value is not a
                          string or a number, is only under max_running (and a workflow-wide rate) */
    int max_per_key;   /* runs with the same key value running at once; 0: no limit (needs key) */
    int rate;          /* at most `rate` starts per `rate_ms`, spread evenly (one every
                          rate_ms / rate: no burst), counted when a worker starts a run; 0: none */
    long long rate_ms; /* the rate's period in ms (needed with rate) */
    int rate_per_key;  /* non-zero: the rate applies to each key value on its own (needs key) */
    int singleton;     /* non-zero: at most one run per key value (no key: per workflow) queued,
                          running, waiting or paused; starting another returns that run */
    long long debounce_ms; /* > 0: a start waits this long; another start of the same key value
                              (no key: of the workflow) meanwhile pushes it back and returns
                              the pending run, so it starts once, after a quiet period, with the
                              first start's input; 0: none */
} wf_flow_limits;

/* Sets workflow `workflow`'s limits (`limits` NULL or all zero: removes them; runs held back
 * then start as workers get to them). Copies; keeps no reference. Takes effect at the next claim.
 * Returns WF_OK, WF_ERR_BAD_NAME, WF_ERR_INVALID (negative numbers; key not 1-64 characters of
 * [A-Za-z0-9._-]; max_per_key or rate_per_key without key; rate without rate_ms; a negative
 * debounce_ms), or a connection error. */
int wf_flow_set(wf_client *client, const char *workflow, const wf_flow_limits *limits,
                wf_error *err);

/* Reads workflow `workflow`'s limits into `*limits` (zero when none; limits->key points into
 * `key`, a caller buffer of `key_size` bytes, or is NULL) and, when `held` is not NULL, how many
 * runs are held back now. Returns WF_OK, WF_ERR_BAD_NAME or a connection error. */
int wf_flow_get(wf_client *client, const char *workflow, wf_flow_limits *limits, char *key,
                size_t key_size, long long *held, wf_error *err);

WF_END_DECLS
#endif
