/* wf_worker_internal.h - what the files of libwf-worker share with each other, wf-worker and the
 * worker tests, but not with users.
 *
 * Design
 * ------
 * A wf_worker is one libevent loop (the loop thread: whoever calls wf_worker_run) plus a pool of
 * `concurrency` executor threads. Only the loop thread touches the two async Redis connections:
 *
 *   block  XREADGROUP over the queues of every defined workflow, one at a time, only while
 *          executor slots are free: the high lanes, then the normal ones, then BLOCK 1000 over
 *          all (claim.c);
 *   cmd    everything else: claim.lua for what block read, complete/fail/release for results,
 *          heartbeat.lua, timers (wake.lua, reclaim.lua), XAUTOCLAIM, and the calls that
 *          handlers make through wf__ctx_call().
 *
 * A claimed run becomes a wf__job. The loop owns it (the `held` list) from the claim until Redis
 * has answered the script that ends its attempt; an executor thread borrows it while the handler
 * runs. Two independent little state machines describe a job:
 *
 *   exec   QUEUED -> RUNNING -> RETURNED           (executor side; changed under the pool lock)
 *   lease  HELD -> ENDING -> GONE                  (loop side only)
 *
 * ENDING means "an end operation was decided" (complete/fail from the handler's result, fail as
 * terminated after a timeout, or release on drain); it is sent when the cmd connection is up and
 * re-sent after a reconnect if the connection dropped before Redis answered (a lease that expired
 * meanwhile makes the script answer STALE, which is fine). A job is freed once it is RETURNED and
 * GONE with no command in flight.
 *
 * Results come back to the loop through the pool's done list and one `event_active` (evthread is
 * on, so that is safe from any thread); wf_worker_stop writes to a self-pipe, which is
 * async-signal-safe.
 */
#ifndef WF_WORKER_INTERNAL_H
#define WF_WORKER_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>

#include "wf/wf.h"
#include "wf_internal.h"

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

/* ---- The process-wide table of definitions (registry.c) ----------------------------------- */

/* Snapshot of the table: the definitions whose address lies inside the module loaded at
 * `base` (NULL: all). Fills up to `max` pointers, returns how many matched. */
int wf__registry_find_module(const void *module_base, const char *module_name,
                             const wf_workflow_def **out, int max);

/* ---- Loading modules (loader.c) ------------------------------------------------------------ */

/* dlopens every *.so in `dir` (sorted by name, RTLD_NOW) so their WF_WORKFLOW constructors fill
 * the process-wide table. Appends the definitions each module made to `out` (grown with realloc;
 * caller frees the array, not the definitions) and returns how many, or an error naming the file.
 */
int wf__load_dir(const char *dir, const wf_workflow_def ***out, int *nout, wf_error *err);

/* ---- Reply copies (reply.c) ------------------------------------------------------------------ */

/* Deep-copies a hiredis reply (NULL in, NULL out; NULL when out of memory). Free with
 * wf__reply_free(). */
redisReply *wf__reply_copy(const redisReply *r);
void wf__reply_free(redisReply *r);

/* ---- Jobs ------------------------------------------------------------------------------------ */

typedef struct wf__pool wf__pool;
typedef struct wf__job wf__job;
typedef struct wf__wdef wf__wdef;

typedef enum wf__exec_state {
    WF__EXEC_QUEUED = 0, /* waiting for an executor thread */
    WF__EXEC_RUNNING,    /* the handler runs on an executor thread */
    WF__EXEC_RETURNED,   /* the handler returned (or never will run); result in the job */
} wf__exec_state;

typedef enum wf__lease_state {
    WF__LEASE_HELD = 0, /* we hold the run's lease; heartbeats renew it */
    WF__LEASE_ENDING,   /* an end operation (`op`) was decided; sent or waiting for the conn */
    WF__LEASE_GONE,     /* the run is no longer ours: ended, stopped, timed out, reclaimed */
} wf__lease_state;

typedef enum wf__end_op {
    WF__OP_NONE = 0,
    WF__OP_RESULT,  /* complete.lua or fail.lua from the handler's result */
    WF__OP_TIMEOUT, /* fail.lua, fatal, final state terminated */
    WF__OP_RELEASE, /* release.lua: hand the run back to the queue (drain) */
} wf__end_op;

const char *wf__exec_state_name(wf__exec_state s);
const char *wf__lease_state_name(wf__lease_state s);

/* The execution context handed to a handler. Lives inside its job. */
struct wf_ctx {
    wf__job *job;
    wf__pool *pool;           /* for wf__ctx_call: reaches the loop even from a detached thread */
    struct wf__steps *steps;  /* step engine state (step.c), made on the first step call */
    int64_t step_admitted_ms; /* wall clock when the current step body passed the lease fence */
};

/* ---- Durable steps (step.c) ---------------------------------------------------------------- */

/* Frees what the step engine kept for one execution. NULL is a no-op. */
void wf__steps_free(struct wf__steps *steps);
/* Wall-clock ms at which the running step body was let past the lease fence (step.c), 0 when
 * none ran yet. For the chaos accounting (tests/workflows/stepper.c): a process frozen after
 * that moment is the at-least-once window, not a re-run of a recorded step. */
int64_t wf__ctx_step_admitted_ms(const wf_ctx *ctx);
/* 1 when a step body runs past its step timeout (wf_ctx_cancelled() reports it). */
int wf__steps_deadline_passed(const wf_ctx *ctx);

/* One attempt of one run, from claim to the answer of the script that ends it. */
struct wf__job {
    /* -- identity (set at claim, read-only after) -- */
    char id[WF__ID_MAX];             /* run id */
    char workflow[WF__NAME_MAX + 1]; /* workflow name (copied: outlives the worker if detached) */
    char token[32];                  /* lease token from claim.lua */
    int attempt;                     /* 1 for the first execution */
    int64_t claimed_redis_ms;        /* Redis time at the claim (claim.lua's started_at) */
    int64_t claimed_mono;            /* wf__mono_ms() when the claim reply arrived */
    char *input;                     /* msgpack bytes, NULL/0 for none */
    size_t input_len;
    wf_handler_fn handler;   /* copied from the definition */
    wf_workflow_options opt; /* copied, defaults applied */
    char *prefix;            /* key prefix (copied) */
    size_t max_payload;      /* the URL's max_payload, for wf_ctx_send_event */
    int64_t retention_ms;    /* the URL's retention, for stopping a child run (invoke.c) */
    wf__wfkeys *keys;        /* fixed keys, made on first wf__ctx_keys(); executor side */
    wf_ctx ctx;

    /* -- executor side: exec_state changes under the pool lock -- */
    wf__exec_state exec_state;
    wf__job *qnext;               /* link in the pool's run queue or done list */
    _Atomic int64_t started_mono; /* when the handler started (0: not yet) */
    atomic_int cancelled;         /* wf_ctx_cancelled(): stopped, timed out, released */
    /* Until when (wf__mono_ms) our lease is surely still ours: the claim, then each heartbeat
     * Redis acknowledged, plus lease_ms. A step body is not started past it (step.c): a process
     * that was frozen (SIGSTOP, a long stall) must not run a side effect that another worker may
     * have run and recorded meanwhile. Written by the loop, read by the executor. */
    _Atomic int64_t lease_until_mono;
    int64_t lease_ms;    /* the worker's lease time, for the margin of that check */
    atomic_int fenced;   /* a step refused to start past lease_until_mono: hand the run back */
    int orphaned;        /* worker freed while this ran: the thread frees the job */
    int64_t cancel_mono; /* loop side: when the handler was told to stop (timeout, lost
                            lease); 0: never. Stuck past the grace: recycle.c */

    /* -- the handler's result (written by the executor before RETURNED) -- */
    int rc;              /* WF_OK, WF_SUSPEND or a negative wf_err */
    msgpack_sbuffer out; /* what the handler packed */
    char *error;         /* wf_ctx_fail() text (malloc'd) or NULL */
    int64_t retry_after; /* wf_ctx_retry_after(), -1: none */
    int suspended;       /* a step handed the run back: suspend.lua answered OK */

    /* -- loop side only -- */
    wf__wdef *def; /* the worker's definition (valid while the loop runs) */
    wf__lease_state lease;
    wf__end_op op;        /* meaningful while ENDING */
    int op_inflight;      /* the end op was sent; Redis has not answered */
    int batched;          /* a completion waiting in the worker's batch (batch_end.c) */
    int dispatched;       /* handed to the pool */
    int returned;         /* the loop took it back from the done list */
    int observed;         /* its duration went into wf_attempt_duration_seconds (metrics.c) */
    wf__job *prev, *next; /* the worker's held list */
};

/* Frees a job's memory (not its links). Safe from any thread. */
void wf__job_free(wf__job *job);

/* ---- Executor pool (executor.c) ----------------------------------------------------------- */

/* Creates `n` threads that run queued jobs, post them to the done list and activate `done_ev`
 * (an event on the loop's base) after each. Returns NULL with `err` filled on failure. The worker
 * holds one reference, each thread one; the last one frees the pool. */
wf__pool *wf__pool_new(int n, struct event *done_ev, wf_error *err);
/* Queues a job for a thread (exec_state must be QUEUED). */
void wf__pool_submit(wf__pool *pool, wf__job *job);
/* Takes the whole done list (jobs now RETURNED), in completion order. */
wf__job *wf__pool_take_done(wf__pool *pool);
/* Stops the pool as the worker goes away: asks threads to quit, joins those that exit within
 * `grace_ms`, detaches the rest (a handler stuck forever must not hang wf_worker_free), marks the
 * pool orphaned and forgets its queued and done lists (the worker frees those jobs, except the
 * ones wf__pool_orphan_if_running() hands to their still-running thread). Then the worker drops
 * its reference with wf__pool_unref(). */
void wf__pool_stop(wf__pool *pool, int64_t grace_ms);
void wf__pool_unref(wf__pool *pool);
/* Under the pool lock: 1 if the job is RUNNING and now orphaned (caller must not free it). */
int wf__pool_orphan_if_running(wf__pool *pool, wf__job *job);
/* Loop liveness for ctx calls: while 0, wf__ctx_call fails at once with WF_ERR_CLOSED. */
void wf__pool_set_loop_running(wf__pool *pool, int running);

/* A call from an executor thread into the loop's cmd connection (wf__ctx_call). */
typedef struct wf__req {
    struct wf__req *next;
    int raw; /* 1: plain command argv; 0: script `script` */
    wf__script script;
    int nkeys; /* scripts: how many of argv are keys */
    int argc;
    char **argv; /* copies */
    size_t *argvlen;
    int64_t queued_mono;   /* for failing it when the connection stays down */
    int64_t deadline_mono; /* held or re-sent until then: the later of timeout_ms and the lease */
    int resend_ok;         /* idempotent: re-sent after a lost reply (see ctx.c) */
    /* completion: written by the loop (or the pool, failing it), then `sem` is posted; the
     * executor reads them after its wait (a semaphore of its own: no shared lock to retake) */
    sem_t sem;
    int done;
    redisReply *reply; /* deep copy on success */
    wf_error err;
} wf__req;

/* Queues `req` for the loop and blocks until wf__req_complete() (executor side). Returns
 * req->err.code; WF_ERR_CLOSED at once when the loop is not running. */
int wf__pool_call(wf__pool *pool, wf__req *req);
/* Takes every request queued by executor threads (loop side). */
wf__req *wf__pool_take_reqs(wf__pool *pool);
/* Completes a request (loop side or shutdown): wakes its caller. `reply` is copied. */
void wf__req_complete(wf__pool *pool, wf__req *req, const redisReply *reply, const wf_error *err);

/* ---- Durable-step primitive (ctx.c) ------------------------------------------------------- */

/* From an executor thread (inside a handler): runs Lua script `s` with `nkeys` keys and `nargs`
 * arguments (arglen NULL: strlen) on the worker's cmd connection and blocks until Redis answers.
 * On success sets `*reply` to a deep copy the caller frees with wf__reply_free() and returns
 * WF_OK; on failure returns the error (script errors STALE/NOTFOUND/FINAL/... mapped as by
 * wf__script_error, WF_ERR_IO when the connection dropped or stayed down past the URL's
 * timeout_ms, WF_ERR_CLOSED when the worker is shutting down) and leaves `*reply` NULL. */
int wf__ctx_call(wf_ctx *ctx, wf__script s, int nkeys, const char *const *keys, int nargs,
                 const char *const *args, const size_t *arglen, redisReply **reply, wf_error *err);
/* The same for a plain command (argv[0] is the command name). Error replies become WF_ERR_REDIS
 * (or the mapped script codes). */
int wf__ctx_command(wf_ctx *ctx, int argc, const char *const *argv, const size_t *argvlen,
                    redisReply **reply, wf_error *err);
/* A step helper calls this after suspend.lua answered OK: the run is `waiting` and no longer
 * ours, so the WF_SUSPEND the handler returns ends the attempt with nothing more to send.
 * (WF_SUSPEND without it fails the run: a handler must not invent WF_SUSPEND.) */
void wf__ctx_mark_suspended(wf_ctx *ctx);
/* What a step engine needs about the run (borrowed for the handler call). */
const char *wf__ctx_token(const wf_ctx *ctx);
const char *wf__ctx_prefix(const wf_ctx *ctx);
/* The workflow's fixed keys (made on first use), or NULL when out of memory. */
const wf__wfkeys *wf__ctx_keys(wf_ctx *ctx);

/* ---- Step engine internals shared with invoke.c (step.c) ----------------------------------- */

/* Starts step `name` of kind `kind`: refuses a stopped run, a bad or reused name, loads the steps
 * hash (once per execution) and looks the record up. *had is 1 when there is a record (in *rec,
 * whose kind matched). Returns WF_OK or the error (message set with wf_ctx_fail). */
int wf__step_begin(wf_ctx *ctx, const char *name, const char *kind, wf__steprec *rec, int *had);
/* step.lua: records `rec` under `name`, lease-checked. */
int wf__step_record(wf_ctx *ctx, const char *name, const wf__steprec *rec);
/* suspend.lua: WF_SUSPEND (now waiting), WF_OK (the step was completed meanwhile) or an error. */
int wf__step_suspend(wf_ctx *ctx, const char *name, const wf__steprec *rec, int64_t wake_at,
                     const char *reason);
/* wf__step_suspend() for a wait whose timer is a deadline: also answers WF__STEP_DUE, without
 * waiting, when Redis time already reached wake_at (> 0); `due` (NULL: none) is then recorded
 * under `name` in the same call. */
#define WF__STEP_DUE 2 /* not WF_OK, not WF_SUSPEND (1) */
int wf__step_suspend_due(wf_ctx *ctx, const char *name, const wf__steprec *rec, int64_t wake_at,
                         const char *reason, const wf__steprec *due);
/* Decodes result bytes into the execution's zone (borrowed until the handler returns). */
int wf__step_result(wf_ctx *ctx, const char *data, size_t len, const msgpack_object **out);
/* Redis time estimated for this execution. */
int64_t wf__step_now(wf_ctx *ctx);
/* Forgets the loaded steps hash and the last claimed name, so that the step can be looked up
 * again after suspend.lua answered RESUME. */
void wf__step_forget(wf_ctx *ctx);

/* ---- Consumer group reads beside the queues (group_reader.c) -------------------------------- */

/* Reads streams through a consumer group on the cmd connection: the child runs' ends (invoke.c)
 * and the webhook outboxes (webhook.c). `entries` is one stream's array of [id, fields] entries
 * (borrowed for the call), `stream` its index in the streams given to wf__greader_new, and
 * `takeover` 1 when they were taken over from another consumer (XAUTOCLAIM), 0 when read. */
typedef struct wf__greader wf__greader;
#define WF__PARENTS_GROUP "parents"  /* on P:{W}:parents (invoke.c) */
#define WF__WEBHOOK_GROUP "webhooks" /* on P:{W}:outbox (webhook.c) */
typedef void (*wf__greader_fn)(void *ud, int stream, const redisReply *entries, int takeover);
/* A reader of group `group` (copied) over `n` streams (the names are borrowed: they must outlive
 * the reader); `what` (copied) names them in log lines. Reads at most every `read_every_ms`
 * unless the last read brought entries. NULL when out of memory. Free it with wf__greader_free
 * only once no reply can reach it any more (after the connections are freed). */
wf__greader *wf__greader_new(wf_worker *w, const char *group, const char *what,
                             const char *const *streams, int n, int64_t read_every_ms,
                             wf__greader_fn on_entries, void *ud);
void wf__greader_free(wf__greader *g);
/* XGROUP CREATE ... MKSTREAM on every stream (an existing group is left alone). */
void wf__greader_ensure_groups(wf__greader *g);
/* XREADGROUP of up to `count` new entries per stream, when none is in flight and one is due. */
void wf__greader_read(wf__greader *g, int64_t now, int count);
/* XAUTOCLAIM of up to `count` entries pending longer than `idle_ms`, on each stream whose last
 * takeover is answered and was `every_ms` or more ago. */
void wf__greader_takeover(wf__greader *g, int64_t now, int64_t idle_ms, int count,
                          int64_t every_ms);

/* ---- Child runs (invoke.c) ---------------------------------------------------------------- */

/* Writes the id of the child run that step `step` of run `parent` starts in `workflow` into `out`
 * (WF__ID_MAX bytes): "WORKFLOW:PARENTSUFFIX.HASH" (or "WORKFLOW:HASH" when that would be too
 * long), HASH being 16 hex digits of SHA-256(parent "\n" step). The same inputs always give the
 * same id, so a replayed or re-executed invoke finds the child it started. */
void wf__invoke_child_id(const char *parent, const char *step, const char *workflow, char *out);
/* Loop side: consumer groups on cmd ready; the tick reads P:{W}:parents of every workflow, takes
 * over entries a dead worker left pending, and delivers each to its parent (deliver.lua). */
void wf__children_on_ready(wf_worker *w);
void wf__children_tick(wf_worker *w, int64_t now);

/* ---- The worker ----------------------------------------------------------------------------- */

/* One workflow as this worker runs it. */
/* The workflow's keys beyond the fixed fourteen, named once at definition (worker.c) rather than
 * on every claim, end or tick. */
typedef enum wf__aux_key {
    WF__AUX_LIMITS,  /* P:{W}:limits  flow control (flow.c, claim.c) */
    WF__AUX_FLOW,    /* P:{W}:flow */
    WF__AUX_HELD,    /* P:{W}:held */
    WF__AUX_RATE,    /* P:{W}:rate */
    WF__AUX_OUTBOX,  /* P:{W}:outbox  webhooks (finish.c) */
    WF__AUX_PARENTS, /* P:{W}:parents child runs' ends (finish.c, timers.c, invoke.c) */
    WF__AUX_N
} wf__aux_key;

struct wf__wdef {
    char *name;
    wf_handler_fn handler;
    wf_workflow_options opt; /* defaults applied */
    wf__wfkeys keys;
    char *aux[WF__AUX_N];                        /* indexed by wf__aux_key; owned */
    int wake_busy, reclaim_busy, heartbeat_busy; /* one of each in flight */
    int autoclaim_busy;                          /* XAUTOCLAIMs in flight (one per lane) */
    int64_t next_heartbeat, next_autoclaim;      /* mono ms */
    int64_t next_prune; /* mono ms: timers.c drops expired runs from the final state indexes */
    int sched_busy;     /* scheduler.c: a scan of this workflow's due schedules is in flight */
    int flow_busy;      /* flow.c: an admit.lua round for this workflow's held runs is in flight */
    int read_busy;      /* cluster: this workflow's XREADGROUP is in flight on its block lane */
    int read_lane;      /* cluster: the priority lane this workflow's next read takes (claim.c) */
    int read_count;     /* cluster: COUNT of this workflow's outstanding read */
};

/* One async connection with its reconnect state. */
typedef struct wf__conn {
    struct wf_worker *w;
    const char *name;      /* "block" or "cmd", for logs */
    redisAsyncContext *ac; /* NULL while down */
    int ready;             /* AUTH/SELECT (and TIME for cmd) done */
    int backoff_ms;        /* next reconnect delay: 100 ms doubling to 5 s */
    struct event *retry_ev;
    struct event *reset_ev; /* cluster: wf__conn_reset from the loop */
    int closed;             /* closed for good: no reconnect */
    int failed;             /* the handshake failed on this connection attempt */
    int lost;               /* was ready, then dropped: log when it is back */
    /* redis+cluster:// (route.c): a context per node (cmd) or per workflow (block: its
     * blocking reads each need a connection of their own), made on first use */
    int cluster;
    struct wf__slotmap *map;  /* CLUSTER SLOTS, refreshed on every (re)connect */
    redisAsyncContext **lane; /* nlanes contexts, NULL until used */
    int *lane_node;           /* the node each lane is connected to */
    int nlanes;
    int any_node; /* for commands without a key */
    int tearing;  /* wf__conn_reset in progress */
    /* Commands Redis refused for now (LOADING, BUSY, ...: reply_action.h), each waiting on a
     * timer of its own to be sent again (route.c); answered with a NULL reply at close. */
    struct fwd *refused;
    int64_t refused_log_mono;   /* last "Redis refused ... sending again" warning */
    int64_t refused_since_mono; /* first refusal since Redis last answered normally; 0: none */
    redisAsyncContext stub; /* what a callback sees as `ac` when no context answered (data: this) */
    struct event *probe_ev; /* one server: the readiness probe sent again while Redis loads */
} wf__conn;

struct wf_worker {
    wf_worker_options opt; /* defaults applied; strings point at the copies below */
    char *url_str;
    char *consumer;
    wf__url url;
    wf__rc *sync; /* start-up connection; freed once the loop runs */

    wf__wdef **defs;
    int ndefs;

    struct event_base *base;
    wf__conn block, cmd;
    struct event *tick_ev, *stop_ev, *done_ev;
    int stop_pipe[2];
    volatile sig_atomic_t stop_requested;
    wf__pool *pool;

    int started; /* wf_worker_run was entered */
    int draining;
    int released;           /* drain deadline passed: the rest were handed back */
    int closing;            /* the loop is being left: no more commands, no reconnects */
    int64_t drain_deadline; /* mono ms */

    wf__job *held_head, *held_tail; /* jobs of claimed runs, oldest first */
    int nheld;
    int busy;            /* jobs not yet RETURNED (occupying executor slots) */
    int reserved;        /* slots promised to entries whose claim.lua is in flight */
    int read_inflight;   /* an XREADGROUP is outstanding on block */
    int read_lane;       /* claim.c: the priority lane (wf__lane) the next read takes; the last
                            one, low, blocks over every lane */
    int read_count;      /* claim.c: COUNT of the outstanding read */
    int read_reserved;   /* cluster: the COUNTs of the workflows' outstanding reads, added */
    int arm_next;        /* cluster: the workflow the next arming starts from (round robin) */
    int claims_inflight; /* claim.lua calls outstanding */
    int ops_inflight;    /* end operations outstanding */
    int ops_refused;     /* an end operation came back refused (finish.c): resend on the tick */
    wf__job **cbatch;    /* completions to send at the end of this loop turn (batch_end.c) */
    int ncbatch, cbatch_cap;
    struct event *cbatch_ev;
    int64_t read_retry_at; /* mono ms: after NOGROUP etc., wait before reading again */

    int have_clock;
    int64_t clock_offset; /* Redis ms - wf__mono_ms() */

    wf__req *reqs_head, *reqs_tail; /* ctx calls waiting for the cmd connection */

    struct wf__ops *ops; /* presence, metrics, health, webhooks (wf_ops.h); set by wf_worker_new */

    /* recycle.c: asking the supervisor for a fresh process (0: feature off) */
    int64_t stuck_grace_ms; /* a cancelled handler not back after this: recycle */
    int64_t max_rss_kb;     /* resident memory above this: recycle */
    int64_t next_rss_check; /* mono ms */
    int recycle;            /* why the worker is draining to be replaced (wf__recycle_reason) */

    /* invoke.c: delivering the ends of child runs to their parents (P:{W}:parents) */
    wf__greader *kids; /* P:{W}:parents of every workflow; made when cmd is first ready */
    int kids_inflight; /* deliver.lua calls outstanding */
    int kids_crash;    /* fault injection, -DWF_FAULT_INJECTION=ON only (invoke.c) */
};

/* Defaults. */
#define WF__DEFAULT_CONCURRENCY    8
#define WF__DEFAULT_LEASE_MS       15000
#define WF__DEFAULT_MAX_RECLAIMS   5
#define WF__DEFAULT_DRAIN_MS       30000
#define WF__DEFAULT_MAX_ATTEMPTS   3
#define WF__DEFAULT_BACKOFF_MS     1000
#define WF__DEFAULT_MAX_BACKOFF_MS 60000
#define WF__TICK_MS                100
#define WF__FREE_GRACE_MS          1000

/* Fills zero fields of `o` with the defaults. */
void wf__workflow_options_defaults(wf_workflow_options *o);

/* Redis time estimated from the clock offset read at connect (ms since the epoch). */
int64_t wf__worker_redis_now(const wf_worker *w);

/* Free executor slots (concurrency - busy - reserved), never below 0. */
int wf__worker_free_slots(const wf_worker *w);

/* ---- The loop's parts ------------------------------------------------------------------------ */

/* conn.c: set up, start (or restart) a connection; close it for good; whether commands may be
 * sent on it now (connected, handshake done, not dying). */
int wf__conn_init(wf__conn *conn, struct wf_worker *w, const char *name);
void wf__conn_start(wf__conn *conn);
void wf__conn_close(wf__conn *conn);
void wf__conn_free(wf__conn *conn);
int wf__conn_usable(const wf__conn *conn);
/* cluster: the context of lane `lane`, connected to node `node` of the map on first use (AUTH
 * sent first). NULL when it cannot be made (then the connection is being reset). */
redisAsyncContext *wf__conn_lane(wf__conn *conn, int lane, int node);
/* Drops every context of the connection (their callbacks fire with NULL replies) and reconnects
 * after the backoff, as when a connection is lost. */
void wf__conn_reset(wf__conn *conn, const char *why);
/* Drops the connection `ac` belongs to (a node answered READONLY): it reconnects with backoff;
 * replies still pending fire first. Safe from inside a reply callback. */
void wf__conn_drop(wf__conn *conn, redisAsyncContext *ac, const char *why);
/* Answers every command waiting to be re-sent after a refusal (route.c) with a NULL reply. */
void wf__conn_refused_flush(wf__conn *conn);

/* route.c: sending on a connection. Like redisAsyncCommand(Argv): `fn` fires exactly once with
 * the final reply (NULL: the connection was lost) unless the call returns REDIS_ERR. In a
 * cluster the command goes to the node owning its first key, MOVED and ASK are followed, and a
 * cmd-connection XREADGROUP over streams of several slots is split and its replies merged. */
int wf__conn_argv(wf__conn *conn, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                  const size_t *argvlen);
int wf__conn_command(wf__conn *conn, redisCallbackFn *fn, void *priv, const char *fmt, ...);
/* A blocking command on lane `lane` of the block connection (one lane per workflow in a
 * cluster; the one context otherwise). */
int wf__conn_lane_argv(wf__conn *conn, int lane, redisCallbackFn *fn, void *priv, int argc,
                       const char **argv, const size_t *argvlen);
/* Lua script `script` by EVALSHA, re-sent as EVAL after NOSCRIPT. Returns WF_OK or an error
 * (then `fn` never fires). Arguments are copied. */
int wf__conn_script(wf__conn *conn, redisCallbackFn *fn, void *priv, wf__script script, int nkeys,
                    const char *const *keys, int nargs, const char *const *args,
                    const size_t *arglens);
/* Calls done(w) once every command sent on `conn` so far has been answered (in a cluster its
 * node connections answer in no common order; a PING on each, after them, marks the end). Not
 * called when a connection is lost first: the reconnect starts over. REDIS_ERR when out of
 * memory. */
int wf__conn_barrier(wf__conn *conn, void (*done)(wf_worker *w));
/* Called by conn.c when a connection became ready / went down. */
void wf__loop_on_ready(wf_worker *w, wf__conn *conn);
void wf__loop_on_down(wf_worker *w, wf__conn *conn);

/* claim.c: issue the next XREADGROUP when possible (priority lanes high, normal, low: see
 * claim.c); periodic XAUTOCLAIM of every lane of `def`. */
void wf__claim_arm(wf_worker *w);
void wf__claim_autoclaim(wf_worker *w, wf__wdef *def);
/* On every (re)connect of cmd: schema key, consumer groups, P:workflows registration. */
void wf__claim_setup(wf_worker *w);
/* The registration value kept in P:workflows for `def` (small JSON). */
void wf__wdef_json(const wf__wdef *def, char *buf, size_t n);

/* finish.c: the loop side of a job's life. */
void wf__job_hold(wf_worker *w, wf__job *job);                  /* add to held, dispatch to pool */
void wf__job_returned(wf_worker *w, wf__job *job);              /* the handler came back */
void wf__job_end(wf_worker *w, wf__job *job, wf__end_op op);    /* decide and send an end op */
void wf__job_lost(wf_worker *w, wf__job *job, const char *why); /* lease gone: cancel, drop */
void wf__job_flush_ops(wf_worker *w); /* resend end ops after a reconnect */
/* Handles Redis's answer `r` (NULL: connection lost) to job's end op (finish.c). */
void wf__job_op_done(wf_worker *w, wf__job *job, redisReply *r);

/* batch_end.c: completions of one loop turn sent as one complete.lua call per workflow. init
 * creates the event (WF_OK or WF_ERR_NOMEM), add queues an ENDING job whose result completes it,
 * send sends what is queued (called by the event), free releases it all. */
int wf__cbatch_init(wf_worker *w);
int wf__cbatch_add(wf_worker *w, wf__job *job);
void wf__cbatch_send(wf_worker *w);
void wf__cbatch_free(wf_worker *w);
void wf__job_maybe_free(wf_worker *w, wf__job *job);
wf__job *wf__job_find(wf_worker *w, const wf__wdef *def, const char *id, size_t len);

/* timers.c: the 100 ms tick: heartbeats, timeouts, wake, reclaim, autoclaim, drain. */
void wf__timers_tick(wf_worker *w);
/* scheduler.c: fires `def`'s due schedules (lua/fire.lua); called from the tick. */
void wf__scheduler_tick(wf_worker *w, wf__wdef *def);
/* flow.c: lets `def`'s runs held back by a flow limit go when there is room (lua/admit.lua). */
void wf__flow_tick(wf_worker *w, wf__wdef *def);

/* ctx.c: send the ctx calls waiting in the worker's list (cmd up) / fail the old ones. */
void wf__reqs_pump(wf_worker *w);
void wf__reqs_fail_all(wf_worker *w, int code, const char *why);

/* loop.c: create the loop's events; run the loop until drained (pool, connections, tick);
 * drain progress check, which leaves the loop when done. */
int wf__loop_init(wf_worker *w, wf_error *err);
int wf__loop_run(wf_worker *w, wf_error *err);
void wf__worker_check_drain(wf_worker *w);

/* ---- Recycling (recycle.c) ------------------------------------------------------------------ */

/* Exit status of a worker process that drained on purpose to be replaced by a fresh one (a
 * handler stuck past its timeout holds a thread that can never be taken back; memory grew past
 * the limit). The supervisor restarts such a process at once. */
#define WF__EXIT_RECYCLE 75

typedef enum wf__recycle_reason {
    WF__RECYCLE_NONE = 0,
    WF__RECYCLE_STUCK, /* a handler told to stop (timeout, stop, lost lease) never returned */
    WF__RECYCLE_RSS,   /* resident memory over the limit */
} wf__recycle_reason;

/* Turns recycling on (call before wf_worker_run): when a handler that was cancelled has not
 * returned `stuck_grace_ms` later (0: never checked), or the process's resident memory exceeds
 * `max_rss_mb` (0: no limit), the worker drains as on wf_worker_stop() and wf_worker_run()
 * returns; wf__worker_recycled() then says why. Without it a stuck handler is only logged. */
void wf__worker_set_recycle(wf_worker *w, int64_t stuck_grace_ms, int64_t max_rss_mb);
/* Why the worker left its loop to be replaced, or WF__RECYCLE_NONE. */
int wf__worker_recycled(const wf_worker *w);
/* From the tick: checks stuck handlers and memory; starts the drain when one is over its limit. */
void wf__recycle_check(wf_worker *w, int64_t now);
/* The drain must not wait for this job: recycling abandons its stuck handler. */
int wf__recycle_abandoned(const wf_worker *w, const wf__job *job);

/* ---- Supervisor (supervisor.c) ------------------------------------------------------------- */

/* Forks `n` children, each calling child(arg) and exiting with its return value; restarts a child
 * that dies (backoff 100 ms doubling to 5 s while it keeps dying young, logging its exit status or
 * signal); forwards SIGTERM/SIGINT to all children and waits for them. Returns the process exit
 * status: 0 when every child exited 0 after the stop signal, 1 otherwise. */
int wf__supervise(int n, int (*child)(void *arg), void *arg);

/* ---- Operations: presence, metrics, health, webhooks (wf_ops.h) ---------------------------- */

#include "wf_ops.h"

#endif
