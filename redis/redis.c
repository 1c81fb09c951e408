/* redis.c - opening a synchronous Redis connection the way every wf component needs it
 * (timeouts, AUTH, SELECT), the schema check and the consumer group. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "wf_redis.h"

static const char *where(const wf__url *u, const char *host, int port, char *buf, size_t n)
{
    if (u->unix_path)
        snprintf(buf, n, "%s", u->unix_path);
    else
        snprintf(buf, n, "%s:%d", host, port);
    return buf;
}

int wf__redis_auth_async(redisAsyncContext *ac, const wf__url *u, redisCallbackFn *fn, void *priv)
{
    if (!u->password) return REDIS_OK;
    if (u->user) return redisAsyncCommand(ac, fn, priv, "AUTH %s %s", u->user, u->password);
    return redisAsyncCommand(ac, fn, priv, "AUTH %s", u->password);
}

const char *wf__redis_errtext(const redisContext *c, int timeout_ms, char *buf, size_t n)
{
    if (!c) return "not connected";
    /* A read or write that timed out leaves errno's text, which says nothing of a timeout. */
    if (c->err == REDIS_ERR_IO &&
        (strcmp(c->errstr, strerror(EAGAIN)) == 0 || strcmp(c->errstr, strerror(ETIMEDOUT)) == 0)) {
        snprintf(buf, n,
                 "Redis did not answer within %d ms (the URL's timeout_ms; raise it with "
                 "?timeout_ms=N, e.g. redis://host:6379?timeout_ms=10000)",
                 timeout_ms);
        return buf;
    }
    return c->errstr[0] ? c->errstr : "no reply";
}

redisContext *wf__redis_connect(const wf__url *u, wf_error *err)
{
    if (u->sentinel) return wf__sentinel_connect(u, err); /* asks the sentinels for the master */
    return wf__redis_connect_to(u, u->host, u->port, err);
}

redisContext *wf__redis_connect_to(const wf__url *u, const char *host, int port, wf_error *err)
{
    struct timeval tv = {u->timeout_ms / 1000, (u->timeout_ms % 1000) * 1000};
    char at[300];
    redisContext *c = u->unix_path ? redisConnectUnixWithTimeout(u->unix_path, tv)
                                   : redisConnectWithTimeout(host, port, tv);
    if (!c) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory connecting to Redis");
        return NULL;
    }
    if (c->err) {
        wf_error_set(err, WF_ERR_CONNECT,
                     "cannot connect to Redis at %s: %s (is redis-server running? check the URL "
                     "or $WF_REDIS_URL)",
                     where(u, host, port, at, sizeof at), c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u->password) {
        if (u->user)
            r = redisCommand(c, "AUTH %s %s", u->user, u->password);
        else
            r = redisCommand(c, "AUTH %s", u->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            char why[200];
            wf_error_set(err, r ? WF_ERR_REDIS : WF_ERR_IO, "Redis at %s %s%s",
                         where(u, host, port, at, sizeof at),
                         r ? "refused authentication: " : "failed during AUTH: ",
                         r ? r->str : wf__redis_errtext(c, u->timeout_ms, why, sizeof why));
            if (r) freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            char why[200];
            wf_error_set(err, r ? WF_ERR_REDIS : WF_ERR_IO, "Redis %s SELECT %d: %s",
                         r ? "refused" : "failed during", u->db,
                         r ? r->str : wf__redis_errtext(c, u->timeout_ms, why, sizeof why));
            if (r) freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

static int io_error(wf__rc *c, wf_error *err)
{
    const char *why = wf__rc_errstr(c);
    return wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s", why[0] ? why : "no reply");
}

int wf__schema_check(wf__rc *c, const char *prefix, wf_error *err)
{
    char *key = wf__key_global(prefix, "schema");
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__rc_command(c, "SET %s %d NX GET", key, WF__SCHEMA_VERSION);
    int rc = WF_OK;
    if (!r) {
        rc = io_error(c, err);
    } else if (r->type == REDIS_REPLY_ERROR) {
        rc = wf__script_error(r->str, r->len, err);
    } else if (r->type == REDIS_REPLY_STRING) {
        char want[16];
        snprintf(want, sizeof want, "%d", WF__SCHEMA_VERSION);
        long have = strtol(r->str, NULL, 10);
        if (strlen(want) != r->len || memcmp(want, r->str, r->len) != 0)
            rc = have > 0 && have < WF__SCHEMA_VERSION
                     ? wf_error_set(err, WF_ERR_SCHEMA,
                                    "Redis key %s says schema version %ld, an older wf's data; "
                                    "this wf speaks %d: stop the older wf's workers, then run "
                                    "`wf migrate` (docs/upgrading.md)",
                                    key, have, WF__SCHEMA_VERSION)
                     : wf_error_set(err, WF_ERR_SCHEMA,
                                    "Redis key %s says schema version %.*s but this wf speaks %d: "
                                    "upgrade wf or use another prefix",
                                    key, (int)(r->len > 16 ? 16 : r->len), r->str,
                                    WF__SCHEMA_VERSION);
    }
    if (r) freeReplyObject(r);
    free(key);
    return rc;
}

int wf__ensure_group(wf__rc *c, const char *queue, wf_error *err)
{
    return wf__ensure_group_named(c, queue, WF__GROUP, err);
}

int wf__ensure_group_named(wf__rc *c, const char *stream, const char *group, wf_error *err)
{
    redisReply *r = wf__rc_command(c, "XGROUP CREATE %s %s 0 MKSTREAM", stream, group);
    if (!r) return io_error(c, err);
    int rc = WF_OK;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        rc = wf__script_error(r->str, r->len, err);
    freeReplyObject(r);
    return rc;
}
