/* cluster.h - Redis Cluster support: redis+cluster:// URLs, the slot map (slots: core/slot.h), and
 * wf__rc, the synchronous connection every libwf call goes through (one server, a sentinel-found
 * master, or a cluster's masters behind one handle).
 *
 * Debian 12's hiredis (0.14) has no cluster client, so libwf routes by itself, the way the
 * cluster specification asks clients to: compute the key's slot, send to the master that owns
 * it per the last CLUSTER SLOTS, follow MOVED (and update the map) and ASK (ASKING, then the
 * command, without updating it), retry TRYAGAIN, and reload the map after a connection to a
 * node fails (a failover moved its slots to a promoted replica).
 */
#ifndef WF_CLUSTER_H
#define WF_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "sentinel.h"
#include "slot.h"
#include "wf_redis.h"

#define WF__NODES_MAX 64 /* masters one cluster may have, for wf */

/* ---- The slot map (cluster.c) ------------------------------------------------------------------
 */

typedef struct wf__node {
    char host[256];
    int port;
} wf__node;

typedef struct wf__slotmap {
    int nnodes;
    wf__node node[WF__NODES_MAX];
    int16_t owner[WF__SLOTS]; /* index into node[], -1: nobody serves the slot */
} wf__slotmap;

/* Parses redis+cluster://[user[:password]@]h1[:p1],h2[:p2]...[/][?query] (what follows the
 * scheme, up to the query) into u->seeds and the credentials. Returns WF_OK or WF_ERR_URL. */
int wf__cluster_url_parse(const char *s, size_t n, wf__url *u, wf_error *err);
/* The URL for logs, password replaced by "***". Malloc'd or NULL. */
char *wf__cluster_redacted(const wf__url *u);

/* Index of host:port in the map, adding it when new. Returns -1 when the map is full. */
int wf__slotmap_node(wf__slotmap *m, const char *host, int port);

/* Fills `m` from one CLUSTER SLOTS reply; `asked` is the host the question went to (a node may
 * report its own address as "" when it does not know it). Returns 0, or -1 with `why`. */
int wf__slotmap_parse(const redisReply *r, const char *asked, wf__slotmap *m, char *why, size_t wn);

/* Fills `m` from CLUSTER SLOTS, asked of the nodes of `known` (may be NULL) first and then of
 * the URL's seeds, the first that answers. A blocking exchange bounded by the URL's timeout per
 * node. Returns WF_OK, or WF_ERR_CONNECT naming what each node said. */
int wf__slotmap_fetch(const wf__url *u, const wf__slotmap *known, wf__slotmap *m, wf_error *err);

/* A synchronous connection to host:port with the URL's timeouts and AUTH (and SELECT when the
 * URL names a db). Caller redisFree()s; NULL with `err` filled. */
redisContext *wf__redis_connect_to(const wf__url *u, const char *host, int port, wf_error *err);

/* ---- wf__rc: the routed synchronous connection (rc.c) --------------------------------------- */

typedef struct wf__rc wf__rc;

/* Opens a connection for `url` (which must outlive it): one context for redis://, unix:// and
 * redis+sentinel://; for redis+cluster:// the slot map, node connections being opened on first
 * use. Returns NULL with `err` filled. */
wf__rc *wf__rc_open(const wf__url *url, wf_error *err);
/* Wraps an open context (not owned: the caller frees it after wf__rc_free). For tests and tools
 * that already hold a redisContext. NULL when out of memory. */
wf__rc *wf__rc_wrap(redisContext *c);
void wf__rc_free(wf__rc *rc);

/* 1 for a redis+cluster:// connection. */
int wf__rc_is_cluster(const wf__rc *rc);
/* 1 once a connection failed (a reply could not be read): open a new wf__rc. */
int wf__rc_broken(const wf__rc *rc);
/* Marks it broken (the caller gave up on a pipeline midway). */
void wf__rc_break(wf__rc *rc);
/* Text of the last connection error ("" when none). */
const char *wf__rc_errstr(const wf__rc *rc);

/* Like hiredis's redisCommand / redisCommandArgv: sends to the node that owns the command's key
 * and returns its reply (error replies included, MOVED and ASK followed), or NULL when a
 * connection failed (see wf__rc_errstr). Caller frees with freeReplyObject(). */
redisReply *wf__rc_command(wf__rc *rc, const char *fmt, ...);
redisReply *wf__rc_argv(wf__rc *rc, int argc, const char **argv, const size_t *argvlen);
/* The same for a command hiredis formatted (redisFormatCommand); takes ownership of `cmd`. */
redisReply *wf__rc_formatted(wf__rc *rc, char *cmd, size_t len);

/* Pipelining, like redisAppendCommand / redisGetReply: replies come back in the order the
 * commands were appended, whatever nodes answered them. Append returns REDIS_OK or REDIS_ERR;
 * get_reply sets *reply (caller frees) and returns REDIS_OK, or REDIS_ERR when a connection
 * failed or nothing is pending. */
int wf__rc_append(wf__rc *rc, const char *fmt, ...);
int wf__rc_append_argv(wf__rc *rc, int argc, const char **argv, const size_t *argvlen);
int wf__rc_get_reply(wf__rc *rc, void **reply);

/* Calls fn(c, arg) with the context of each master in turn (one server: its one context), for
 * what every master must get (FUNCTION LOAD); fn talks to c directly (redisCommand), so this is
 * only for between pipelines. A master that cannot be reached is skipped. Returns how many masters
 * were skipped or had fn return non-zero (0: all done), or -1 when commands are pending. */
int wf__rc_each_master(wf__rc *rc, int (*fn)(redisContext *c, void *arg), void *arg);

/* Commands without a key (MULTI, EXEC) go to the node owning `key` until called again with
 * NULL: a transaction's MULTI must reach the node of the keys it wraps. */
void wf__rc_pin(wf__rc *rc, const char *key);

#endif
