/* cluster.c - redis+cluster:// URLs and the cluster's slot map (CLUSTER SLOTS), shared by the
 * synchronous router (rc.c) and the worker's async one (worker/conn.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define DEFAULT_PORT 6379

int wf__cluster_url_parse(const char *s, size_t n, wf__url *u, wf_error *err)
{
    wf__sentinel *st = calloc(1, sizeof *st);
    if (!st) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    u->seeds = st;
    int rc = wf__url_userinfo(&s, &n, u, err);
    if (rc != WF_OK) return rc;
    const char *end = s + n;
    const char *slash = memchr(s, '/', n);
    if (slash && slash + 1 != end)
        return wf_error_set(err, WF_ERR_URL,
                            "a cluster URL names nodes only: redis+cluster://host:port[,host:port]"
                            "[?prefix=...] (Redis Cluster has no db)");
    if (slash) end = slash;
    for (const char *p = s; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        rc = wf__hostport_parse(p, (size_t)(stop - p), st, DEFAULT_PORT, "cluster node", err);
        if (rc != WF_OK) return rc;
        p = comma ? comma + 1 : end;
        if (comma && p == end) return wf_error_set(err, WF_ERR_URL, "empty cluster node address");
    }
    if (st->n == 0) return wf_error_set(err, WF_ERR_URL, "cluster URL lists no node");
    free(u->host);
    if (!(u->host = strdup(st->host[0]))) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    u->port = st->port[0];
    return WF_OK;
}

char *wf__cluster_redacted(const wf__url *u)
{
    const wf__sentinel *st = u->seeds;
    char buf[4096];
    size_t off = (size_t)snprintf(buf, sizeof buf, "redis+cluster://%s%s%s", u->user ? u->user : "",
                                  u->password ? ":***" : "", (u->user || u->password) ? "@" : "");
    for (int i = 0; i < st->n && off < sizeof buf; i++) {
        int v6 = strchr(st->host[i], ':') != NULL;
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s%s%s:%d", i ? "," : "",
                                v6 ? "[" : "", st->host[i], v6 ? "]" : "", st->port[i]);
    }
    if (off < sizeof buf) snprintf(buf + off, sizeof buf - off, "?prefix=%s", u->prefix);
    return strdup(buf);
}

int wf__slotmap_node(wf__slotmap *m, const char *host, int port)
{
    for (int i = 0; i < m->nnodes; i++)
        if (m->node[i].port == port && strcmp(m->node[i].host, host) == 0) return i;
    if (m->nnodes == WF__NODES_MAX || strlen(host) >= sizeof m->node[0].host) return -1;
    snprintf(m->node[m->nnodes].host, sizeof m->node[0].host, "%s", host);
    m->node[m->nnodes].port = port;
    return m->nnodes++;
}

int wf__slotmap_parse(const redisReply *r, const char *asked, wf__slotmap *m, char *why, size_t wn)
{
    memset(m, 0, sizeof *m);
    for (int s = 0; s < WF__SLOTS; s++) m->owner[s] = -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(why, wn, "CLUSTER SLOTS answered %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
        return -1;
    }
    int covered = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        const char *host = e->element[2]->element[0]->str;
        if (!host[0] || strcmp(host, "?") == 0) host = asked;
        int node = wf__slotmap_node(m, host, (int)e->element[2]->element[1]->integer);
        if (node < 0 || lo < 0 || hi >= WF__SLOTS || lo > hi) continue;
        for (long long s = lo; s <= hi; s++) m->owner[s] = (int16_t)node;
        covered += (int)(hi - lo + 1);
    }
    if (covered == 0) {
        snprintf(why, wn, "CLUSTER SLOTS lists no slot (is the cluster created?)");
        return -1;
    }
    return 0;
}

/* Asks host:port for the map. 0 or -1 with `why`. */
static int ask(const wf__url *u, const char *host, int port, wf__slotmap *m, char *why, size_t wn)
{
    wf_error e = {0};
    redisContext *c = wf__redis_connect_to(u, host, port, &e);
    if (!c) {
        snprintf(why, wn, "%s", e.message);
        return -1;
    }
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    int rc = -1;
    if (!r)
        snprintf(why, wn, "%s:%d: %s", host, port, c->errstr);
    else
        rc = wf__slotmap_parse(r, host, m, why, wn);
    if (r) freeReplyObject(r);
    redisFree(c);
    return rc;
}

int wf__slotmap_fetch(const wf__url *u, const wf__slotmap *known, wf__slotmap *m, wf_error *err)
{
    char whys[1024] = "", why[256];
    size_t off = 0;
    int n = known ? known->nnodes : 0;
    for (int i = 0; i < n + u->seeds->n; i++) {
        const char *host = i < n ? known->node[i].host : u->seeds->host[i - n];
        int port = i < n ? known->node[i].port : u->seeds->port[i - n];
        why[0] = '\0';
        if (ask(u, host, port, m, why, sizeof why) == 0) return WF_OK;
        if (off < sizeof whys)
            off += (size_t)snprintf(whys + off, sizeof whys - off, "%s%s", off ? "; " : "", why);
    }
    return wf_error_set(err, WF_ERR_CONNECT,
                        "no Redis Cluster node of %s answered CLUSTER SLOTS: %s",
                        u->redacted ? u->redacted : "the URL", whys);
}
