/* wf_step_engine.h - the step engine's per-execution state, shared only by the files that make up
 * the engine: step_replay.c (loading and looking up records, claiming names, recording,
 * suspending) and step_run.c (running a step body with its timeout and retries). The rest of the
 * worker sees `struct wf__steps` as opaque and reaches it through wf_steps.h.
 */
#ifndef WF_STEP_ENGINE_H
#define WF_STEP_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <msgpack.h>

/* A step name claimed in this execution, with the kind of step that claimed it. */
typedef struct wf__seen {
    char *name;
    char kind[8];
} wf__seen;

/* Design
 * ------
 * Per-execution state, hung off the ctx on the first step call (step_replay.c) and freed with the
 * job (wf__steps_free). The steps hash is read once, at that first call; a finished step is then
 * answered from `all`, and only a new result costs a script call. Decoded results live in `zone`
 * until the job is freed, so what a step helper hands the handler stays valid until it returns.
 */
struct wf__steps {
    redisReply *all;   /* HGETALL of the steps hash at the first step call */
    msgpack_zone zone; /* decoded results handed to the handler */
    wf__seen *seen;    /* names used in this execution, to refuse duplicates */
    int nseen, cap;
    char **names; /* wf_step_name() strings */
    int nnames;
    _Atomic int64_t deadline_mono; /* step timeout: wf_ctx_cancelled() turns true after it */
    int attempt;                   /* attempt of the step body now executing, 0 outside one */
    int lost; /* executions lost with their worker since the last step record (the steps hash's
               * " lost", reclaim.lua): added to the attempts of the first step body this
               * execution runs, and cleared by the first record it writes */
    /* A run claimed for the first time (lease token "1": nothing held it before, so nothing wrote
     * its steps hash) has no records to read: `none` says the first step call knew that without
     * an HGETALL (a round trip and 2-3 us of Redis CPU per run). wf__step_forget sets `reread`:
     * a record someone else wrote since (an event delivered) must then be read. */
    int none, reread;
};

#endif
