/* rc.c - wf__rc, the synchronous connection behind every libwf call (cluster.h).
 *
 * Commands are formatted once (RESP bytes) and appended to the context of the node that owns
 * their slot; a queue remembers which node answers each pending reply, so pipelines may span
 * nodes and replies still come back in order. A cluster command keeps its bytes until answered:
 * MOVED or ASK re-sends the same bytes to the node named. Before a re-send, every other pending
 * reply is read first, so that the re-sent command's reply is the next one on its connection.
 *
 * Every command keeps its bytes until answered, on one server too: what an error reply asks for
 * is wf__reply_action's (reply_action.h), the policy the worker's router follows. A command
 * refused for now (LOADING after a restart, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN: not run) is
 * sent again after a backoff for up to the URL's timeout_ms; READONLY (a master demoted by a
 * failover) reconnects (Sentinel or the slot map name the new master) and sends again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "reply_action.h"

#define MAX_REDIRECTS 8

typedef struct pend {
    int node;
    char *cmd; /* cluster: the formatted command, kept for a re-send; else NULL */
    size_t len;
    redisReply *reply; /* read ahead of its turn (see above) */
    int read;
} pend;

struct wf__rc {
    const wf__url *url;
    redisContext *c; /* one server (or sentinel-found master) */
    int owned;
    int cluster;
    wf__slotmap map;
    redisContext *nc[WF__NODES_MAX];
    int pin_slot; /* -1: none */
    int any;      /* node for keyless commands */
    pend *q;
    int qhead, qn, qcap;
    int broken;
    char errstr[256];
};

wf__rc *wf__rc_open(const wf__url *url, wf_error *err)
{
    wf__rc *rc = calloc(1, sizeof *rc);
    if (!rc) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    rc->url = url;
    rc->owned = 1;
    rc->pin_slot = -1;
    if (url->seeds) {
        rc->cluster = 1;
        if (wf__slotmap_fetch(url, NULL, &rc->map, err) != WF_OK) {
            free(rc);
            return NULL;
        }
        for (int s = 0; s < WF__SLOTS; s++)
            if (rc->map.owner[s] >= 0) {
                rc->any = rc->map.owner[s];
                break;
            }
        return rc;
    }
    rc->c = wf__redis_connect(url, err);
    if (!rc->c) {
        free(rc);
        return NULL;
    }
    return rc;
}

wf__rc *wf__rc_wrap(redisContext *c)
{
    wf__rc *rc = calloc(1, sizeof *rc);
    if (!rc) return NULL;
    rc->c = c;
    rc->pin_slot = -1;
    return rc;
}

static void drop_pending(wf__rc *rc)
{
    for (int i = 0; i < rc->qn; i++) {
        pend *p = &rc->q[(rc->qhead + i) % rc->qcap];
        free(p->cmd);
        if (p->reply) freeReplyObject(p->reply);
    }
    rc->qhead = rc->qn = 0;
}

void wf__rc_free(wf__rc *rc)
{
    if (!rc) return;
    drop_pending(rc);
    free(rc->q);
    if (rc->c && rc->owned) redisFree(rc->c);
    for (int i = 0; i < WF__NODES_MAX; i++)
        if (rc->nc[i]) redisFree(rc->nc[i]);
    free(rc);
}

int wf__rc_is_cluster(const wf__rc *rc)
{
    return rc && rc->cluster;
}

int wf__rc_broken(const wf__rc *rc)
{
    return !rc || rc->broken || (rc->c && rc->c->err);
}

void wf__rc_break(wf__rc *rc)
{
    if (!rc) return;
    rc->broken = 1;
    drop_pending(rc);
}

const char *wf__rc_errstr(const wf__rc *rc)
{
    if (!rc) return "not connected";
    if (rc->errstr[0]) return rc->errstr;
    if (rc->c && rc->c->errstr[0]) return rc->c->errstr;
    return "";
}

void wf__rc_pin(wf__rc *rc, const char *key)
{
    rc->pin_slot = key ? wf__key_slot(key, strlen(key)) : -1;
}

static void fail(wf__rc *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(wf__rc *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rc->errstr, sizeof rc->errstr, fmt, ap);
    va_end(ap);
    wf__rc_break(rc);
}

/* The context of node `i` (cluster: connected on first use), or NULL after fail(). */
static redisContext *node_ctx(wf__rc *rc, int i)
{
    if (!rc->cluster) return rc->c;
    if (rc->nc[i] && !rc->nc[i]->err) return rc->nc[i];
    if (rc->nc[i]) {
        redisFree(rc->nc[i]);
        rc->nc[i] = NULL;
    }
    wf_error e = {0};
    rc->nc[i] = wf__redis_connect_to(rc->url, rc->map.node[i].host, rc->map.node[i].port, &e);
    if (!rc->nc[i]) fail(rc, "Redis Cluster node unreachable: %s", e.message);
    return rc->nc[i];
}

static int node_for(wf__rc *rc, const char *cmd, size_t len)
{
    if (!rc->cluster) return 0;
    int slot = wf__cmd_slot(cmd, len);
    if (slot < 0) slot = rc->pin_slot;
    if (slot < 0) return rc->any;
    int n = rc->map.owner[slot];
    return n >= 0 ? n : rc->any;
}

/* Takes ownership of `cmd` (malloc'd, from redisFormatCommand). */
static int append_formatted(wf__rc *rc, char *cmd, size_t len)
{
    if (rc->broken) {
        free(cmd);
        return REDIS_ERR;
    }
    if (rc->qn == rc->qcap) {
        int cap = rc->qcap ? rc->qcap * 2 : 16;
        pend *q = malloc(sizeof *q * (size_t)cap);
        if (!q) {
            free(cmd);
            return REDIS_ERR;
        }
        for (int i = 0; i < rc->qn; i++) q[i] = rc->q[(rc->qhead + i) % rc->qcap];
        free(rc->q);
        rc->q = q;
        rc->qcap = cap;
        rc->qhead = 0;
    }
    int node = node_for(rc, cmd, len);
    redisContext *c = node_ctx(rc, node);
    if (!c || redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) {
        free(cmd);
        if (c && !rc->broken) fail(rc, "%s", c->errstr[0] ? c->errstr : "cannot send");
        return REDIS_ERR;
    }
    pend *p = &rc->q[(rc->qhead + rc->qn++) % rc->qcap];
    memset(p, 0, sizeof *p);
    p->node = node;
    p->len = len;
    p->cmd = cmd;
    return REDIS_OK;
}

int wf__rc_append_argv(wf__rc *rc, int argc, const char **argv, const size_t *argvlen)
{
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) return REDIS_ERR;
    return append_formatted(rc, cmd, (size_t)len);
}

static int vappend(wf__rc *rc, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0) return REDIS_ERR;
    return append_formatted(rc, cmd, (size_t)len);
}

int wf__rc_append(wf__rc *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vappend(rc, fmt, ap);
    va_end(ap);
    return r;
}

/* Reads the reply of pending entry p from its node. 0, or -1 after fail(). */
static int read_one(wf__rc *rc, pend *p)
{
    if (p->read) return 0;
    redisContext *c = node_ctx(rc, p->node);
    void *r = NULL;
    if (!c) return -1;
    if (redisGetReply(c, &r) != REDIS_OK || !r) {
        char why[200];
        fail(rc, "%s",
             wf__redis_errtext(c, rc->url ? rc->url->timeout_ms : WF__DEFAULT_TIMEOUT_MS, why,
                               sizeof why));
        return -1;
    }
    p->reply = r;
    p->read = 1;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* READONLY: the node p went to is no master now. Reconnect (one server: Sentinel names the new
 * master; cluster: reload the map) and return the node to send to, or -1 after fail(). */
static int reconnect_for(wf__rc *rc, pend *p)
{
    wf_error e = {0};
    if (rc->cluster) {
        wf__slotmap m;
        if (wf__slotmap_fetch(rc->url, &rc->map, &m, &e) != WF_OK) {
            fail(rc, "Redis answered READONLY and the cluster's slot map could not be reloaded: %s",
                 e.message);
            return -1;
        }
        for (int i = 0; i < WF__NODES_MAX; i++)
            if (rc->nc[i]) {
                redisFree(rc->nc[i]);
                rc->nc[i] = NULL;
            }
        rc->map = m;
        return node_for(rc, p->cmd, p->len);
    }
    if (!rc->url || !rc->owned) {
        fail(rc, "Redis answered READONLY: the server is a replica now; point wf at the master");
        return -1;
    }
    redisContext *c = wf__redis_connect(rc->url, &e);
    if (!c) {
        fail(rc, "Redis answered READONLY and reconnecting failed: %s", e.message);
        return -1;
    }
    redisFree(rc->c);
    rc->c = c;
    return 0;
}

/* Acts on p's reply, which was read (every other pending reply has been read too): follows MOVED
 * and ASK, sends again what was refused for now (for up to timeout_ms) or after READONLY. Returns
 * the final reply (owned by the caller) or NULL after fail(). */
static redisReply *follow(wf__rc *rc, pend *p)
{
    redisReply *r = p->reply;
    p->reply = NULL;
    int budget = rc->url ? rc->url->timeout_ms : WF__DEFAULT_TIMEOUT_MS;
    int64_t first = mono_ms();
    for (int hop = 0, retry = 0; hop < MAX_REDIRECTS;) {
        wf__reply_act act = wf__reply_action(r);
        int ask = 0, slot = 0, port = 0, node = p->node;
        char host[256];
        if (act == WF__ACT_RETRY) {
            if (mono_ms() - first >= budget) return r; /* the caller sees the refusal */
            nap_ms(wf__reply_retry_ms(retry++));
        } else if (act == WF__ACT_RECONNECT) {
            hop++;
            node = reconnect_for(rc, p);
            if (node < 0) {
                freeReplyObject(r);
                return NULL;
            }
        } else if ((act == WF__ACT_MOVED || act == WF__ACT_ASK) && rc->cluster &&
                   wf__redirect_parse(r->str, r->len, &ask, &slot, host, sizeof host, &port)) {
            hop++;
            node = wf__slotmap_node(&rc->map, host, port);
            if (node < 0) {
                freeReplyObject(r);
                fail(rc, "Redis Cluster has more than %d masters", WF__NODES_MAX);
                return NULL;
            }
            if (!ask) rc->map.owner[slot] = (int16_t)node;
        } else {
            return r;
        }
        freeReplyObject(r);
        redisContext *c = node_ctx(rc, node);
        if (!c) return NULL;
        if ((ask && redisAppendCommand(c, "ASKING") != REDIS_OK) ||
            redisAppendFormattedCommand(c, p->cmd, p->len) != REDIS_OK) {
            fail(rc, "%s", c->errstr);
            return NULL;
        }
        void *v = NULL;
        if (ask) {
            if (redisGetReply(c, &v) != REDIS_OK || !v) {
                fail(rc, "%s", c->errstr[0] ? c->errstr : "no reply");
                return NULL;
            }
            freeReplyObject(v);
            v = NULL;
        }
        if (redisGetReply(c, &v) != REDIS_OK || !v) {
            fail(rc, "%s", c->errstr[0] ? c->errstr : "no reply");
            return NULL;
        }
        p->node = node;
        r = v;
    }
    return r; /* still redirected: the caller sees the MOVED error */
}

int wf__rc_get_reply(wf__rc *rc, void **reply)
{
    *reply = NULL;
    if (rc->broken || rc->qn == 0) return REDIS_ERR;
    pend *p = &rc->q[rc->qhead];
    if (read_one(rc, p) != 0) return REDIS_ERR;
    redisReply *r = p->reply;
    wf__reply_act act = wf__reply_action(r);
    if (act == WF__ACT_RETRY || act == WF__ACT_RECONNECT ||
        (rc->cluster && (act == WF__ACT_MOVED || act == WF__ACT_ASK))) {
        for (int i = 1; i < rc->qn; i++)
            if (read_one(rc, &rc->q[(rc->qhead + i) % rc->qcap]) != 0) return REDIS_ERR;
        r = follow(rc, p);
        if (!r) return REDIS_ERR;
    } else {
        p->reply = NULL;
    }
    free(p->cmd);
    rc->qhead = (rc->qhead + 1) % rc->qcap;
    rc->qn--;
    *reply = r;
    return REDIS_OK;
}

/* One command on its own: every earlier pending reply stays queued ahead of it. */
static redisReply *one(wf__rc *rc, int appended)
{
    if (appended != REDIS_OK) return NULL;
    int before = rc->qn - 1;
    void *r = NULL;
    for (int i = 0; i < before; i++) { /* nobody waits for them: a misuse, but stay in order */
        if (wf__rc_get_reply(rc, &r) != REDIS_OK) return NULL;
        freeReplyObject(r);
    }
    return wf__rc_get_reply(rc, &r) == REDIS_OK ? r : NULL;
}

redisReply *wf__rc_command(wf__rc *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int a = vappend(rc, fmt, ap);
    va_end(ap);
    return one(rc, a);
}

redisReply *wf__rc_formatted(wf__rc *rc, char *cmd, size_t len)
{
    return one(rc, append_formatted(rc, cmd, len));
}

redisReply *wf__rc_argv(wf__rc *rc, int argc, const char **argv, const size_t *argvlen)
{
    return one(rc, wf__rc_append_argv(rc, argc, argv, argvlen));
}

int wf__rc_each_master(wf__rc *rc, int (*fn)(redisContext *c, void *arg), void *arg)
{
    if (!rc || rc->qn > 0) return -1;
    if (!rc->cluster) return rc->c && !rc->c->err && fn(rc->c, arg) == 0 ? 0 : 1;
    int failed = 0;
    for (int i = 0; i < rc->map.nnodes; i++) {
        int owns = 0;
        for (int s = 0; s < WF__SLOTS && !owns; s++) owns = rc->map.owner[s] == i;
        if (!owns) continue; /* named by a MOVED once, no master of the map now */
        if (rc->nc[i] && rc->nc[i]->err) {
            redisFree(rc->nc[i]);
            rc->nc[i] = NULL;
        }
        /* Not node_ctx(): a master unreachable here is skipped, not the end of the handle. */
        wf_error e = {0};
        if (!rc->nc[i])
            rc->nc[i] =
                wf__redis_connect_to(rc->url, rc->map.node[i].host, rc->map.node[i].port, &e);
        if (!rc->nc[i] || fn(rc->nc[i], arg) != 0) failed++;
    }
    return failed;
}
