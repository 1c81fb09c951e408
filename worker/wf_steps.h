/* wf_steps.h - the durable step engine as the rest of the worker sees it: freeing its state with
 * the job, the step timeout, and the entry points every step kind is built on (step_replay.c),
 * used by plain steps (step_run.c), waits (step_wait.c), HTTP steps (step_http.c) and child runs
 * (invoke.c). The engine's own state is private to it (wf_step_engine.h).
 */
#ifndef WF_STEPS_H
#define WF_STEPS_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "wf/wf.h"
#include "wf_internal.h"

struct wf__steps; /* the engine's state for one execution (wf_step_engine.h) */

/* ---- The step engine and the job (step_replay.c, step_run.c) ------------------------------- */

/* Frees what the step engine kept for one execution. NULL is a no-op. */
void wf__steps_free(struct wf__steps *steps);
/* Wall-clock ms at which the running step body was let past the lease fence (step_run.c), 0 when
 * none ran yet. For the chaos accounting (tests/workflows/stepper.c): a process frozen after
 * that moment is the at-least-once window, not a re-run of a recorded step. */
int64_t wf__ctx_step_admitted_ms(const wf_ctx *ctx);
/* 1 when a step body runs past its step timeout (wf_ctx_cancelled() reports it). */
int wf__steps_deadline_passed(const wf_ctx *ctx);

/* ---- What the step kinds are built on (step_replay.c) -------------------------------------- */

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

/* ---- Child run ids (invoke.c) ------------------------------------------------------------- */

/* Writes the id of the child run that step `step` of run `parent` starts in `workflow` into `out`
 * (WF__ID_MAX bytes): "WORKFLOW:PARENTSUFFIX.HASH" (or "WORKFLOW:HASH" when that would be too
 * long), HASH being 16 hex digits of SHA-256(parent "\n" step). The same inputs always give the
 * same id, so a replayed or re-executed invoke finds the child it started. */
void wf__invoke_child_id(const char *parent, const char *step, const char *workflow, char *out);

#endif
