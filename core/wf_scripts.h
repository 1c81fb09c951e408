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

/* The scripts' ids, WF__SCRIPT_<NAME> for lua/<name>.lua, generated from lua/ with the table above
 * (cmake/embed_lua.cmake): adding lua/NAME.lua is all it takes to get WF__SCRIPT_NAME. */
#include "wf_script_ids.h"

/* The script's source (lib.lua included) and file name. Static. NULL if not embedded. */
const wf__script_src *wf__script_get(wf__script script);

/* The script's SHA1 as 40 hex chars, or NULL if not yet learnt from Redis. Thread-safe. */
const char *wf__script_sha(wf__script script);

/* Caches the SHA1 Redis answered for `script`'s SCRIPT LOAD (`sha`, `len` bytes; anything but 40
 * hex chars is ignored). Thread-safe. Called by wf__scripts_load() (redis/scripts.c). */
void wf__script_sha_remember(wf__script script, const char *sha, size_t len);

#endif
