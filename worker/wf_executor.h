/* wf_executor.h - the executor side: the pool of threads that run handlers (executor.c), and the
 * bridge a handler crosses to reach Redis: a request queued for the loop (wf__req), sent on the
 * cmd connection and answered with a copy of the reply (ctx.c, reply.c).
 *
 * Design
 * ------
 * Only the loop thread touches the async connections, so a handler's Redis call is a request the
 * executor queues in the pool and waits for on a semaphore of its own; the loop sends it and
 * completes it with a deep copy of the reply (an async reply is valid only inside its callback).
 * Results come back to the loop through the pool's done list and one `event_active` (evthread is
 * on, so that is safe from any thread).
 */
#ifndef WF_EXECUTOR_H
#define WF_EXECUTOR_H

#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "wf/wf.h"
#include "wf_internal.h"
#include "wf_job.h"

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

/* ctx.c, loop side: send the ctx calls waiting in the worker's list (cmd up) / fail the old ones.
 */
void wf__reqs_pump(wf_worker *w);
void wf__reqs_fail_all(wf_worker *w, int code, const char *why);
/* ctx.c, loop side: what a request's reply (NULL: lost with its connection) does to it: completes
 * it, or queues it again to be re-sent (idempotent, within its deadline). */
void wf__req_answer(wf_worker *w, wf__req *req, const redisReply *reply);

/* ---- Step records batched per loop turn (batch_step.c) ------------------------------------ */

int wf__sbatch_init(wf_worker *w);
void wf__sbatch_free(wf_worker *w);
/* Takes a step.lua request to send at the end of this loop turn with the others of its
 * workflow; WF_ERR_NOMEM (not taken: send it alone) when it cannot. */
int wf__sbatch_add(wf_worker *w, wf__req *req);
/* Sends the batch now: one step.lua call per workflow; each request is answered on its own. */
void wf__sbatch_send(wf_worker *w);
/* Puts the requests of the batch back at the head of the worker's request list, unsent (to
 * be held while the connection is down, or failed at shutdown). */
void wf__sbatch_hold(wf_worker *w);

#endif
