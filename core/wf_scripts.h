/* wf_scripts.h - the Lua scripts of lua/, embedded at build time as one Redis Functions library
 * (cmake/embed_lua.cmake).
 *
 * Each lua/NAME.lua but lib.lua and its parts lib_*.lua is one atomic state transition and
 * becomes the function wf_NAME of the library `wf`, called as FCALL wf_NAME numkeys keys...
 * args... (redis/scripts.c); the helpers of lua/lib.lua and its parts are defined once in the
 * library. The library answers FCALL wf_version with wf__library_version, which tells a client
 * whether the library Redis holds is its own.
 */
#ifndef WF_SCRIPTS_H
#define WF_SCRIPTS_H

#include <stddef.h>

typedef struct wf__script_src {
    const char *name; /* file name without .lua */
    const char *fn;   /* the library's function: "wf_" name */
} wf__script_src;

/* Generated: every lua/NAME.lua but lib.lua and lib_*.lua, sorted by name, then {0,0}. */
extern const wf__script_src wf__script_sources[];

/* Generated: the library's source ("#!lua name=wf ..."), for FUNCTION LOAD, and its length. */
extern const char *const wf__library_src;
extern const size_t wf__library_len;
/* Generated: "MAJOR.MINOR.PATCH TIME HASH" - the project version, the Unix time of the git commit
 * the sources are at (0 when unknown) and 12 hex digits of the SHA1 of the library - what FCALL
 * wf_version answers. */
extern const char *const wf__library_version;

/* The scripts' ids, WF__SCRIPT_<NAME> for lua/<name>.lua, generated from lua/ with the table above
 * (cmake/embed_lua.cmake): adding lua/NAME.lua is all it takes to get WF__SCRIPT_NAME. */
#include "wf_script_ids.h"

/* The script's file and function names. Static. NULL if not embedded. */
const wf__script_src *wf__script_get(wf__script script);

/* Whether a process of this build should FUNCTION LOAD REPLACE the library Redis holds, given
 * what that library's wf_version answered (`loaded`, `len` bytes; NULL: it has no wf_version,
 * so it is no wf library or a broken one). 0: keep it - the same sources (same hash), or a newer
 * build (a higher project version, or the same one at a later commit). 1: replace it - older,
 * unreadable, or of the same version and commit time with other sources (uncommitted edits: the
 * last process to connect wins). */
int wf__library_replace(const char *loaded, size_t len);

#endif
