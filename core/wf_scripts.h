/* wf_scripts.h - the Lua scripts of lua/, embedded at build time (cmake/embed_lua.cmake).
 *
 * Each script is one atomic state transition; lua/lib.lua is prepended to each. The SHA1 that
 * EVALSHA needs is learnt from Redis itself (SCRIPT LOAD at connect) and cached process-wide, since
 * the sources never change while a process lives.
 */
#ifndef WF_SCRIPTS_H
#define WF_SCRIPTS_H

#include <stddef.h>

typedef struct wf__script_src {
    const char *name; /* file name without .lua */
    const char *src;
    size_t len;
} wf__script_src;

/* Generated: every lua/NAME.lua but lib.lua, sorted by name, then a {0,0,0} terminator. */
extern const wf__script_src wf__script_sources[];

/* The scripts by purpose. Keep in step with lua/ and script_names[] in core/script_table.c: a name
 * with no file makes wf__scripts_load() fail, so every connect fails ("Redis refused SCRIPT LOAD");
 * docs/internals/new-transition.md. */
typedef enum wf__script {
    WF__SCRIPT_ENQUEUE = 0,
    WF__SCRIPT_CLAIM,
    WF__SCRIPT_COMPLETE,
    WF__SCRIPT_FAIL,
    WF__SCRIPT_STOP,
    WF__SCRIPT_HEARTBEAT,
    WF__SCRIPT_RECLAIM,
    WF__SCRIPT_WAKE,
    WF__SCRIPT_RELEASE,
    WF__SCRIPT_STEP,
    WF__SCRIPT_SUSPEND,
    WF__SCRIPT_PAUSE,
    WF__SCRIPT_RESUME,
    WF__SCRIPT_RESTART,
    WF__SCRIPT_EVENT_SEND,
    WF__SCRIPT_EVENT_WAIT,
    WF__SCRIPT_DELIVER,
    WF__SCRIPT_PURGE,
    WF__SCRIPT_OUTBOX, /* webhook notifications: ack / dead (worker/webhook.c) */
    WF__SCRIPT_FIRE,   /* a schedule's firing (worker/scheduler.c) */
    WF__SCRIPT_ADMIT,  /* runs held back by a flow limit let go (worker/flow.c) */
    WF__SCRIPT_COUNT
} wf__script;

/* The script's source (lib.lua included) and file name. Static. NULL if not embedded. */
const wf__script_src *wf__script_get(wf__script script);

/* The script's SHA1 as 40 hex chars, or NULL if not yet learnt from Redis. Thread-safe. */
const char *wf__script_sha(wf__script script);

/* Caches the SHA1 Redis answered for `script`'s SCRIPT LOAD (`sha`, `len` bytes; anything but 40
 * hex chars is ignored). Thread-safe. Called by wf__scripts_load() (redis/scripts.c). */
void wf__script_sha_remember(wf__script script, const char *sha, size_t len);

#endif
