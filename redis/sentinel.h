/* sentinel.h - Redis Sentinel URLs: redis+sentinel://[user[:password]@]host1[:port1],host2[:port2]
 * .../master-name[/db][?query], and finding the master they name (sentinel.c).
 *
 * Where a plain URL names a server, a sentinel URL names the sentinels that watch a master: every
 * (re)connect asks them `SENTINEL get-master-addr-by-name` and checks with ROLE that the answer
 * really is a master, so a failover is followed by the next reconnect. The credentials and db of
 * the URL are the master's; the sentinels are asked without AUTH.
 */
#ifndef WF_SENTINEL_H
#define WF_SENTINEL_H

#include <stddef.h>

#include "wf_redis.h"

#define WF__SENTINEL_MAX 16 /* sentinels one URL may list */

/* The sentinel part of a parsed URL (wf__url.sentinel). Owned by the URL. */
typedef struct wf__sentinel {
    int n;                        /* sentinels listed */
    char *host[WF__SENTINEL_MAX]; /* host names or addresses (IPv6 without brackets) */
    int port[WF__SENTINEL_MAX];   /* default 26379 */
    char *master;                 /* the master's name, [A-Za-z0-9._-]{1,64} */
} wf__sentinel;

/* Parses what follows "redis+sentinel://" up to the query ([s, s+n)) into `u`: u->sentinel, the
 * user, password and db; u->host / u->port are set to the first sentinel (placeholders: connect
 * through wf__url_target() or wf__redis_connect(), never to them directly). Returns WF_OK or
 * WF_ERR_URL / WF_ERR_NOMEM (then `u` holds what wf__url_free() releases). */
int wf__sentinel_parse(const char *s, size_t n, wf__url *u, wf_error *err);

/* Appends one "host[:port]" or "[v6]:port" ([s, s+n)) to st->host / st->port (`default_port`
 * when none is given); `what` ("sentinel", "cluster node") names it in errors. Returns WF_OK or
 * WF_ERR_URL / WF_ERR_NOMEM. Shared by sentinel and cluster URLs. */
int wf__hostport_parse(const char *s, size_t n, wf__sentinel *st, int default_port,
                       const char *what, wf_error *err);

/* Takes "[user[:password]@]" off the front of [*s, *s + *n) into u->user / u->password
 * (percent-decoded; the last '@' ends it) and moves *s / *n past it; no '@': nothing changes.
 * Returns WF_OK, or WF_ERR_URL on a bad percent-escape (url.c; shared with sentinel URLs). */
int wf__url_userinfo(const char **s, size_t *n, wf__url *u, wf_error *err);

/* The URL for logs, password replaced by "***" ("redis+sentinel://h1:p1,h2:p2/name/db?prefix=P").
 * Malloc'd, or NULL when out of memory. */
char *wf__sentinel_redacted(const wf__url *u);

/* Frees u->sentinel's contents and itself. NULL is a no-op. */
void wf__sentinel_free(wf__sentinel *s);

/* Where to connect for `u`: a plain TCP URL's host and port, or, for a sentinel URL, the master
 * the sentinels name now, checked with ROLE (a blocking exchange, bounded by the URL's timeout_ms
 * and at most 1 s per sentinel). Writes the host into `host` (`size` bytes). Returns WF_OK or
 * WF_ERR_CONNECT with a message naming the sentinels and what they said. Not for unix:// URLs. */
int wf__url_target(const wf__url *u, char *host, size_t size, int *port, wf_error *err);

/* wf__redis_connect() for a sentinel URL: the master's connection, AUTH/SELECT done and its role
 * checked. Caller frees with redisFree(); NULL with `err` filled. */
redisContext *wf__sentinel_connect(const wf__url *u, wf_error *err);

#endif
