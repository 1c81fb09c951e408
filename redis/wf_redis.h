/* wf_redis.h - the Redis layer's shared declarations: parsed URLs, opening a connection (one
 * server, a sentinel-found master), the routed synchronous connection wf__rc, calling the
 * embedded scripts (FCALL of the library `wf`, loaded again when Redis lost it), the schema check
 * and consumer groups.
 *
 * redis/ sits on core/ (wf_core.h) and below client/ (docs/architecture.md). Cluster routing is in
 * cluster.h, Sentinel in sentinel.h.
 */
#ifndef WF_REDIS_H
#define WF_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "wf_core.h"

/* ---- URLs and connecting (url.c, redis.c) ---------------------------------------------------- */

/* A parsed Redis URL. Strings are owned by the struct; free with wf__url_free(). */
typedef struct wf__url {
    char *host; /* NULL for unix sockets */
    int port;
    char *unix_path; /* NULL for TCP */
    char *user;      /* NULL: no ACL user */
    char *password;  /* NULL: no AUTH */
    int db;
    char *prefix; /* never NULL after parse: default "wf" */
    int timeout_ms;
    size_t max_payload;
    int64_t retention_ms;
    char *redacted;                /* the URL with the password replaced by "***" */
    struct wf__sentinel *sentinel; /* redis+sentinel:// only: the sentinels and master name
                                      (sentinel.h); host/port are then placeholders */
    struct wf__sentinel *seeds;    /* redis+cluster:// only: the seed nodes (cluster.h; its
                                      `master` is NULL); host/port are the first seed */
} wf__url;

/* Parses `url` (NULL: $WF_REDIS_URL, else redis://127.0.0.1:6379). Returns WF_OK or WF_ERR_URL
 * with a message naming the bad part. On error `out` holds nothing to free. */
int wf__url_parse(const char *url, wf__url *out, wf_error *err);
void wf__url_free(wf__url *url);

/* The routed synchronous connection (cluster.h): one server, or a cluster's masters. */
typedef struct wf__rc wf__rc;

/* Opens a synchronous hiredis connection per `url` (connect timeout, command timeout, AUTH,
 * SELECT). Returns a context the caller frees with redisFree(), or NULL with `err` filled. */
redisContext *wf__redis_connect(const wf__url *url, wf_error *err);
/* The text of c's last error, saying "did not answer within timeout_ms ..." (and how to raise
 * it) for a timed-out read or write instead of errno's "Resource temporarily unavailable".
 * Returns c->errstr, a constant, or buf (n bytes). */
const char *wf__redis_errtext(const redisContext *c, int timeout_ms, char *buf, size_t n);
/* The async counterpart's first step: sends AUTH (with the URL's user when it has one) on `ac`
 * when `url` has a password; `fn(ac, reply, priv)` gets the answer (fn may be NULL). Returns
 * REDIS_OK, also when there is nothing to send, or REDIS_ERR. */
int wf__redis_auth_async(redisAsyncContext *ac, const wf__url *url, redisCallbackFn *fn,
                         void *priv);

/* ---- Calling the scripts (scripts.c) --------------------------------------------------------- */

/* Calls script `script` as FCALL wf_NAME of the library `wf`; when Redis answers "Function not
 * found" (a restart without persistence, FUNCTION FLUSH, a new cluster master) loads the library
 * (wf__functions_load) and sends the call once more. keys/args with explicit lengths (arglen
 * NULL: strlen). Returns the reply (caller frees with freeReplyObject()) or NULL with `err`
 * filled: WF_ERR_IO when the connection failed, WF_ERR_REDIS when Redis answered an error
 * (message included), except that the script errors "STALE ...", "NOTFOUND ...", "FINAL ..."
 * map to WF_ERR_STALE, WF_ERR_NOT_FOUND and WF_ERR_FINAL. */
redisReply *wf__script_call(wf__rc *c, wf__script script, int nkeys, const char *const *keys,
                            int nargs, const char *const *args, const size_t *arglen,
                            wf_error *err);

/* Makes sure every master behind `c` holds this build's library `wf` (FCALL wf_version), loading
 * it where there is none and replacing an older one (FUNCTION LOAD [REPLACE]; a newer release's
 * is kept: wf__library_replace). Called at connect, and by wf__script_call after "Function not
 * found". Only between pipelines. Returns WF_OK, or WF_ERR_REDIS (Redis refused: an ACL without
 * FUNCTION LOAD, ...) / WF_ERR_IO with `err` filled. */
int wf__functions_load(wf__rc *c, wf_error *err);

/* ---- Reply copies (reply.c) ------------------------------------------------------------------ */

/* Deep-copies a hiredis reply (NULL in, NULL out; NULL when out of memory). Free with
 * wf__reply_free(). */
redisReply *wf__reply_copy(const redisReply *r);
void wf__reply_free(redisReply *r);

/* ---- Schema and consumer groups (redis.c) --------------------------------------------------- */

/* Ensures the consumer group exists on `queue` (XGROUP CREATE ... 0 MKSTREAM, BUSYGROUP ok). */
int wf__ensure_group(wf__rc *c, const char *queue, wf_error *err);
/* The same for group `group` on stream `stream`. */
int wf__ensure_group_named(wf__rc *c, const char *stream, const char *group, wf_error *err);

/* Checks (and on an empty Redis, writes) P:schema. Returns WF_OK or WF_ERR_SCHEMA. */
int wf__schema_check(wf__rc *c, const char *prefix, wf_error *err);

#endif
