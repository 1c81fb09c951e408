/* scripts.c - calling the embedded Lua scripts on the synchronous connection: EVALSHA first,
 * EVAL when Redis lost its script cache (restart, SCRIPT FLUSH, failover), and SCRIPT LOAD at
 * connect to learn their SHA1s. The async router does the same for its commands (aroute.c).
 *
 * The scripts' names, sources, cached SHA1s and what their errors mean are core/script_table.c.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "wf_redis.h"

int wf__scripts_load(struct wf__rc *c)
{
    /* A cluster's other nodes learn a script from the EVAL that follows their first NOSCRIPT. */
    for (int i = 0; i < WF__SCRIPT_COUNT; i++) {
        const wf__script_src *s = wf__script_get((wf__script)i);
        if (!s) return -1;
        if (wf__rc_append(c, "SCRIPT LOAD %b", s->src, s->len) != REDIS_OK) return -1;
    }
    int rc = 0;
    for (int i = 0; i < WF__SCRIPT_COUNT; i++) {
        redisReply *r = NULL;
        if (wf__rc_get_reply(c, (void **)&r) != REDIS_OK) return -1;
        if (r->type == REDIS_REPLY_STRING)
            wf__script_sha_remember((wf__script)i, r->str, r->len);
        else
            rc = -1;
        freeReplyObject(r);
    }
    return rc;
}

/* Builds the argv of EVALSHA/EVAL: cmd, sha-or-source, numkeys, keys..., args... */
typedef struct argv_buf {
    int argc;
    const char **argv;
    size_t *len;
    char numkeys[16];
} argv_buf;

static int build_argv(argv_buf *b, int eval, wf__script script, int nkeys, const char *const *keys,
                      int nargs, const char *const *args, const size_t *arglen)
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
    const char *sha = eval ? NULL : wf__script_sha(script);
    if (!eval && !sha) eval = 1;
    b->argv[0] = eval ? "EVAL" : "EVALSHA";
    b->len[0] = strlen(b->argv[0]);
    b->argv[1] = eval ? s->src : sha;
    b->len[1] = eval ? s->len : 40;
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

static void free_argv(argv_buf *b)
{
    free(b->argv);
    free(b->len);
}

static int is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *wf__script_call(wf__rc *c, wf__script script, int nkeys, const char *const *keys,
                            int nargs, const char *const *args, const size_t *arglen, wf_error *err)
{
    if (!c) {
        wf_error_set(err, WF_ERR_IO, "not connected to Redis");
        return NULL;
    }
    for (int eval = 0; eval < 2; eval++) {
        argv_buf b;
        if (build_argv(&b, eval, script, nkeys, keys, nargs, args, arglen) != 0) {
            wf_error_set(err, WF_ERR_NOMEM, "out of memory (or script %d not embedded)", script);
            return NULL;
        }
        redisReply *r = wf__rc_argv(c, b.argc, b.argv, b.len);
        int was_eval = strcmp(b.argv[0], "EVAL") == 0;
        free_argv(&b);
        if (!r) {
            const char *why = wf__rc_errstr(c);
            wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s", why[0] ? why : "no reply");
            return NULL;
        }
        if (is_noscript(r) && !was_eval) {
            freeReplyObject(r);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            wf__script_error(r->str, r->len, err);
            freeReplyObject(r);
            return NULL;
        }
        return r;
    }
    wf_error_set(err, WF_ERR_REDIS, "Redis kept answering NOSCRIPT");
    return NULL;
}
