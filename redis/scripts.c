/* scripts.c - calling the embedded Lua scripts on the synchronous connection: the Redis Functions
 * library `wf` loaded on every master at connect (FUNCTION LOAD, REPLACE when the one there is
 * older), FCALL wf_NAME for each call, and the library loaded again and the call sent again when
 * Redis answers "Function not found" (a restart without persistence, FUNCTION FLUSH, a new
 * cluster master). The async router does the same for its commands (aroute.c).
 *
 * The scripts' names, the library's source and version and what their errors mean are
 * core/script_table.c and the generated wf_scripts.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "reply_action.h"
#include "wf_redis.h"

/* ---- Loading the library ---------------------------------------------------------------------
 */

static int load_error(wf_error *err, const redisContext *c, const redisReply *r)
{
    if (!r)
        return wf_error_set(err, WF_ERR_IO,
                            "Redis connection failed while loading wf's library: %s",
                            c->errstr[0] ? c->errstr : "no reply");
    int len = (int)(r->len > 200 ? 200 : r->len);
    if (r->str && strncmp(r->str, "NOPERM", 6) == 0)
        return wf_error_set(err, WF_ERR_REDIS,
                            "Redis refused wf's Lua library (%.*s): the ACL user needs +fcall and "
                            "+function|load, or an administrator loads the library "
                            "(docs/security.md)",
                            len, r->str);
    return wf_error_set(err, WF_ERR_REDIS, "Redis refused to load wf's Lua library: %.*s", len,
                        r->str ? r->str : "");
}

/* FCALL wf_version 0 (load 0) or FUNCTION LOAD [REPLACE] of the library on `c`, sent again while
 * Redis refuses it for now (LOADING, BUSY, ...: not run; wf__reply_action), 3 s at most. */
static redisReply *ask(redisContext *c, int load, int replace)
{
    for (int retry = 0;; retry++) {
        redisReply *r;
        if (!load)
            r = redisCommand(c, "FCALL wf_version 0");
        else if (replace)
            r = redisCommand(c, "FUNCTION LOAD REPLACE %b", wf__library_src, wf__library_len);
        else
            r = redisCommand(c, "FUNCTION LOAD %b", wf__library_src, wf__library_len);
        if (!r || wf__reply_action(r) != WF__ACT_RETRY || retry == 10) return r;
        freeReplyObject(r);
        int ms = wf__reply_retry_ms(retry);
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Makes the library on `c` this build's, or leaves a newer release's (wf__library_replace).
 * each_master's callback; `arg` is the caller's wf_error (may be NULL). 0 or -1. */
static int ensure_on(redisContext *c, void *arg)
{
    wf_error *err = arg;
    int force = 0; /* a library `wf` without wf_version is there: replace it */
    for (int attempt = 0; attempt < 3; attempt++) {
        redisReply *r = ask(c, 0, 0);
        if (!r || (r->type == REDIS_REPLY_ERROR && wf__reply_action(r) != WF__ACT_LOAD)) {
            load_error(err, c, r);
            if (r) freeReplyObject(r);
            return -1;
        }
        int have = r->type == REDIS_REPLY_STRING;
        int replace = have ? wf__library_replace(r->str, r->len) : force;
        freeReplyObject(r);
        if (have && !replace) return 0;
        r = ask(c, 1, replace);
        int ok = r && r->type == REDIS_REPLY_STRING;
        /* Another process loaded one since we asked (look again), or a foreign `wf` is there. */
        int exists = r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "already exists");
        if (!ok && !exists) load_error(err, c, r);
        if (r) freeReplyObject(r);
        if (ok) return 0;
        if (!exists) return -1;
        force = !have;
    }
    wf_error_set(err, WF_ERR_REDIS, "wf's Lua library kept changing while it was loaded");
    return -1;
}

int wf__functions_load(wf__rc *c, wf_error *err)
{
    if (!c) return wf_error_set(err, WF_ERR_IO, "not connected to Redis");
    wf_error e = {0};
    int n = wf__rc_each_master(c, ensure_on, &e);
    if (n == 0) return WF_OK;
    if (e.code) {
        if (err) *err = e;
        return e.code;
    }
    return wf_error_set(err, WF_ERR_IO, "could not load wf's Lua library on %d Redis master(s)%s",
                        n < 0 ? 0 : n, n < 0 ? " (a pipeline was pending)" : ": unreachable");
}

/* ---- Calling ---------------------------------------------------------------------------------
 */

/* Builds the argv of FCALL wf_NAME numkeys keys... args... */
typedef struct argv_buf {
    int argc;
    const char **argv;
    size_t *len;
    char numkeys[16];
} argv_buf;

static int build_argv(argv_buf *b, wf__script script, int nkeys, const char *const *keys, int nargs,
                      const char *const *args, const size_t *arglen)
{
    const wf__script_src *s = wf__script_get(script);
    if (!s) return -1;
    b->argc = 3 + nkeys + nargs;
    b->argv = malloc(sizeof(char *) * (size_t)b->argc);
    b->len = malloc(sizeof(size_t) * (size_t)b->argc);
    if (!b->argv || !b->len) {
        free(b->argv);
        free(b->len);
        return -1;
    }
    b->argv[0] = "FCALL";
    b->len[0] = 5;
    b->argv[1] = s->fn;
    b->len[1] = strlen(s->fn);
    snprintf(b->numkeys, sizeof b->numkeys, "%d", nkeys);
    b->argv[2] = b->numkeys;
    b->len[2] = strlen(b->numkeys);
    for (int i = 0; i < nkeys; i++) {
        b->argv[3 + i] = keys[i];
        b->len[3 + i] = strlen(keys[i]);
    }
    for (int i = 0; i < nargs; i++) {
        b->argv[3 + nkeys + i] = args[i] ? args[i] : "";
        b->len[3 + nkeys + i] = arglen ? arglen[i] : (args[i] ? strlen(args[i]) : 0);
    }
    return 0;
}

redisReply *wf__script_call(wf__rc *c, wf__script script, int nkeys, const char *const *keys,
                            int nargs, const char *const *args, const size_t *arglen, wf_error *err)
{
    if (!c) {
        wf_error_set(err, WF_ERR_IO, "not connected to Redis");
        return NULL;
    }
    argv_buf b;
    if (build_argv(&b, script, nkeys, keys, nargs, args, arglen) != 0) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory (or script %d not embedded)", script);
        return NULL;
    }
    redisReply *r = NULL;
    wf_error load = {0};
    for (int loaded = 0; loaded < 2; loaded++) {
        r = wf__rc_argv(c, b.argc, b.argv, b.len);
        if (!r || loaded || wf__reply_action(r) != WF__ACT_LOAD) break;
        /* Redis lost the library (or this master never had it): load it, send again. */
        freeReplyObject(r);
        r = NULL;
        if (wf__functions_load(c, &load) != WF_OK) break;
    }
    free(b.argv);
    free(b.len);
    if (!r && load.code) {
        if (err) *err = load;
        return NULL;
    }
    if (!r) {
        const char *why = wf__rc_errstr(c);
        wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s", why[0] ? why : "no reply");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR && wf__reply_action(r) == WF__ACT_LOAD)
        wf_error_set(err, WF_ERR_REDIS,
                     "Redis has no function %s even after loading wf's library: the library `wf` "
                     "there is a newer wf release's, which is kept (FCALL wf_version 0 names it; "
                     "this build is %s); upgrade this program",
                     wf__script_get(script)->fn, wf__library_version);
    else if (r->type == REDIS_REPLY_ERROR)
        wf__script_error(r->str, r->len, err);
    if (r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}
