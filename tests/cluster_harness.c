/* cluster_harness.c - see cluster_harness.h. Six redis-servers forked like harness.c forks one,
 * joined by `redis-cli --cluster create`; every wait polls a condition against a deadline. */
#include "cluster_harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE_TIMEOUT_MS 1500 /* cluster-node-timeout: how soon a dead master is failed over */
#define READY_WAIT_MS   30000
#define MAX_PORT        55535 /* the bus port, port + 10000, must fit in 16 bits */
#define NSLOTS          16384

/* ---- nodes ------------------------------------------------------------------------------- */

/* A free port whose bus port is free too, or -1. */
static int pick_port(void)
{
    for (int i = 0; i < 200; i++) {
        int p = wf_test_free_port();
        if (p > 0 && p <= MAX_PORT && wf_test_port_free(p + 10000)) return p;
    }
    return -1;
}

/* Wait condition while a node starts: it answers on its port (it, not a stranger that took the
 * port: INFO names its pid), or it has exited (then its pid is 0). */
static int up_or_exited(void *arg)
{
    wf_test_redis *r = arg;
    if (wf_test_exited(&r->pid)) return 1;
    redisContext *ctx = wf_test_redis_connect(r);
    if (!ctx) return 0;
    char *info = wf_test_cmd_str(ctx, "INFO server"), want[32];
    snprintf(want, sizeof want, "process_id:%d\r", (int)r->pid);
    int ok = info && strstr(info, want) != NULL;
    free(info);
    redisFree(ctx);
    return ok;
}

static int node_start(wf_test_redis *r, const char *server)
{
    for (int tries = 0; tries < 5; tries++) {
        memset(r, 0, sizeof *r);
        snprintf(r->dir, sizeof r->dir, "/tmp/wf-test-cluster-XXXXXX");
        if (!mkdtemp(r->dir)) {
            perror("cluster harness: mkdtemp");
            memset(r, 0, sizeof *r);
            return -1;
        }
        char conf[300], log[300];
        snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
        snprintf(log, sizeof log, "%s/stdout.log", r->dir);
        r->port = pick_port();
        FILE *f = r->port > 0 ? fopen(conf, "w") : NULL;
        if (!f) break;
        /* A replica may take over whatever its lag (validity factor 0), syncs at once (no
         * diskless delay), and its offset moves every second (ping period 1), which is when
         * CLUSTER SLOTS starts listing it. */
        fprintf(f,
                "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\nlogfile %s/redis.log\n"
                "cluster-enabled yes\ncluster-config-file %s/nodes.conf\n"
                "cluster-node-timeout %d\ncluster-replica-validity-factor 0\n"
                "repl-diskless-sync-delay 0\nrepl-ping-replica-period 1\n",
                r->port, r->dir, r->dir, r->dir, NODE_TIMEOUT_MS);
        fclose(f);
        const char *argv[] = {server, conf, NULL};
        r->pid = wf_test_spawn(argv, NULL, log);
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
        if (r->pid > 0 && wf_test_wait(up_or_exited, r, 10000) && r->pid > 0) return 0;
        /* Its port was taken between our probe and its bind, or it failed: try other ports. */
        if (r->pid > 0) wf_test_kill(r->pid, SIGKILL, 2000);
        wf_test_remove_tree(r->dir);
    }
    fprintf(stderr, "cluster harness: a cluster node did not start\n");
    wf_test_remove_tree(r->dir);
    memset(r, 0, sizeof *r);
    return -1;
}

static void node_stop(wf_test_redis *r)
{
    if (r->pid > 0) wf_test_kill(r->pid, SIGTERM, 5000);
    wf_test_remove_tree(r->dir);
    memset(r, 0, sizeof *r);
}

/* ---- reading the cluster's view ---------------------------------------------------------- */

static int node_index(const wf_test_cluster *c, long long port)
{
    for (int i = 0; i < c->n && i < WF_TEST_CLUSTER_NODES; i++)
        if (port > 0 && c->node[i].port == port) return i;
    return -1;
}

/* What one node says about the cluster; a reply is NULL when the node did not give it. */
typedef struct view {
    redisReply *info;  /* CLUSTER INFO */
    redisReply *slots; /* CLUSTER SLOTS: [start, end, master, replica...] per range */
    redisReply *role;  /* ROLE */
} view;

/* Asks live node r; 0 when it is down or unreachable (then *v is all NULL). */
static int view_get(const wf_test_redis *r, view *v)
{
    memset(v, 0, sizeof *v);
    redisContext *ctx = r->pid > 0 ? wf_test_redis_connect(r) : NULL;
    if (!ctx) return 0;
    v->info = redisCommand(ctx, "CLUSTER INFO");
    v->slots = redisCommand(ctx, "CLUSTER SLOTS");
    v->role = redisCommand(ctx, "ROLE");
    redisFree(ctx);
    return 1;
}

static void view_free(view *v)
{
    freeReplyObject(v->info);
    freeReplyObject(v->slots);
    freeReplyObject(v->role);
}

static int state_ok(const view *v)
{
    return v->info && v->info->type == REDIS_REPLY_STRING &&
           strstr(v->info->str, "cluster_state:ok") != NULL;
}

/* Range i of a CLUSTER SLOTS reply when well formed, else NULL. */
static const redisReply *range_at(const redisReply *slots, size_t i)
{
    if (!slots || slots->type != REDIS_REPLY_ARRAY || i >= slots->elements) return NULL;
    const redisReply *r = slots->element[i];
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
        return NULL;
    return r;
}

/* The node index of the k-th node entry [ip, port, id, ...] of a range (k = 0: its master). */
static int range_node(const wf_test_cluster *c, const redisReply *range, size_t k)
{
    if (k + 2 >= range->elements) return -1;
    const redisReply *e = range->element[k + 2];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    return node_index(c, e->element[1]->integer);
}

/* The node serving `slot` as master in a CLUSTER SLOTS reply, or -1. */
static int slots_master(const wf_test_cluster *c, const redisReply *slots, long long slot)
{
    const redisReply *r;
    for (size_t i = 0; (r = range_at(slots, i)) != NULL; i++)
        if (r->element[0]->integer <= slot && slot <= r->element[1]->integer)
            return range_node(c, r, 0);
    return -1;
}

/* 1 when CLUSTER SLOTS covers every slot with 3 live masters, each range with one live replica,
 * naming all six nodes. (A replica is listed once its replication offset is non-zero.) */
static int slots_shaped(const wf_test_cluster *c, const redisReply *slots)
{
    if (!slots || slots->type != REDIS_REPLY_ARRAY) return 0;
    unsigned masters = 0, nodes = 0;
    long long covered = 0;
    const redisReply *r;
    size_t i;
    for (i = 0; (r = range_at(slots, i)) != NULL; i++) {
        int m = range_node(c, r, 0), s = range_node(c, r, 1);
        if (r->elements != 4 || m < 0 || s < 0 || c->node[m].pid <= 0 || c->node[s].pid <= 0)
            return 0;
        masters |= 1u << m;
        nodes |= 1u << m | 1u << s;
        covered += r->element[1]->integer - r->element[0]->integer + 1;
    }
    return i == slots->elements && covered == NSLOTS && __builtin_popcount(masters) == 3 &&
           __builtin_popcount(nodes) == WF_TEST_CLUSTER_NODES;
}

/* From ROLE: 1 for a master, 2 for a replica whose link is up, 0 otherwise. *master_port gets a
 * replica's master port (linked or not) when not NULL. */
static int role_of(const redisReply *r, long long *master_port)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    if (strcmp(r->element[0]->str, "master") == 0) return 1;
    if (strcmp(r->element[0]->str, "slave") != 0 || r->elements < 4 ||
        r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_STRING)
        return 0;
    if (master_port) *master_port = r->element[2]->integer;
    return strcmp(r->element[3]->str, "connected") == 0 ? 2 : 0;
}

/* Wait condition for start: every node is ok, sees the full layout, and is linked if a replica. */
static int cluster_ready(void *arg)
{
    const wf_test_cluster *c = arg;
    for (int i = 0; i < c->n; i++) {
        view v;
        int ok = view_get(&c->node[i], &v) && state_ok(&v) && slots_shaped(c, v.slots) &&
                 role_of(v.role, NULL);
        view_free(&v);
        if (!ok) return 0;
    }
    return 1;
}

/* ---- the API ------------------------------------------------------------------------------ */

int wf_test_cluster_start(wf_test_cluster *c)
{
    memset(c, 0, sizeof *c);
    c->n = WF_TEST_CLUSTER_NODES;
    char *server = wf_test_which("redis-server"), *cli = wf_test_which("redis-cli"), *out = NULL;
    char addr[WF_TEST_CLUSTER_NODES][32];
    const char *argv[WF_TEST_CLUSTER_NODES + 8];
    int rc = -1, k = 0, st = 0;
    if (!server || !cli) {
        fprintf(stderr, "cluster harness: redis-server or redis-cli is not in PATH\n");
        goto done;
    }
    argv[k++] = cli;
    argv[k++] = "--cluster";
    argv[k++] = "create";
    for (int i = 0; i < c->n; i++) {
        if (node_start(&c->node[i], server) != 0) goto done;
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", c->node[i].port);
        argv[k++] = addr[i];
    }
    argv[k++] = "--cluster-replicas";
    argv[k++] = "1";
    argv[k++] = "--cluster-yes";
    argv[k] = NULL;
    if ((st = wf_test_run(argv, NULL, NULL, &out, 30000)) != 0) {
        fprintf(stderr, "cluster harness: redis-cli --cluster create returned %d:\n%s\n", st,
                out ? out : "");
        goto done;
    }
    if (!wf_test_wait(cluster_ready, c, READY_WAIT_MS)) {
        fprintf(stderr,
                "cluster harness: cluster not ready after %d ms (logs in /tmp/wf-test-"
                "cluster-*/redis.log with WF_TEST_KEEP=1)\n",
                READY_WAIT_MS);
        goto done;
    }
    size_t len = (size_t)snprintf(c->url, sizeof c->url, "redis+cluster://");
    for (int i = 0, seeds = 0; i < c->n && len < sizeof c->url; i++) {
        view v;
        if (view_get(&c->node[i], &v) && role_of(v.role, NULL) == 1)
            len += (size_t)snprintf(c->url + len, sizeof c->url - len, "%s%s", seeds++ ? "," : "",
                                    addr[i]);
        view_free(&v);
    }
    rc = 0;
done:
    free(server);
    free(cli);
    free(out);
    if (rc != 0) wf_test_cluster_stop(c);
    return rc;
}

void wf_test_cluster_stop(wf_test_cluster *c)
{
    if (!c) return;
    for (int i = 0; i < WF_TEST_CLUSTER_NODES; i++) node_stop(&c->node[i]);
    memset(c, 0, sizeof *c);
}

int wf_test_cluster_master_of(const wf_test_cluster *c, const char *key)
{
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid <= 0) continue;
        redisContext *ctx = wf_test_redis_connect(&c->node[i]);
        if (!ctx) continue;
        long long slot = wf_test_cmd_int(ctx, "CLUSTER KEYSLOT %s", key);
        redisReply *slots = redisCommand(ctx, "CLUSTER SLOTS");
        int m = slot >= 0 ? slots_master(c, slots, slot) : -1;
        freeReplyObject(slots);
        redisFree(ctx);
        return m >= 0 && c->node[m].pid > 0 ? m : -1;
    }
    return -1;
}

/* What kill_master waits for: every live node is ok and names the same former replica as the
 * master of `slot`, a slot the killed master served. */
typedef struct failover {
    const wf_test_cluster *c;
    long long slot;
    int was_replica[WF_TEST_CLUSTER_NODES]; /* 1 for the killed master's replicas */
    int new_master;                         /* out: their agreed new master */
} failover;

static int failover_done(void *arg)
{
    failover *f = arg;
    int agreed = -1;
    for (int i = 0; i < f->c->n; i++) {
        view v;
        if (f->c->node[i].pid <= 0) continue;
        int m = view_get(&f->c->node[i], &v) && state_ok(&v) ? slots_master(f->c, v.slots, f->slot)
                                                             : -1;
        view_free(&v);
        if (m < 0 || !f->was_replica[m] || (agreed >= 0 && agreed != m)) return 0;
        agreed = m;
    }
    f->new_master = agreed;
    return agreed >= 0;
}

int wf_test_cluster_kill_master(wf_test_cluster *c, int idx, int timeout_ms)
{
    if (!c || idx < 0 || idx >= c->n || c->node[idx].pid <= 0) {
        fprintf(stderr, "cluster harness: kill_master: node %d is not running\n", idx);
        return -1;
    }
    failover f = {.c = c, .slot = -1, .new_master = -1};
    int replicas = 0;
    for (int j = 0; j < c->n; j++) {
        view v;
        long long port = 0;
        const redisReply *r;
        view_get(&c->node[j], &v);
        for (size_t i = 0; j == idx && (r = range_at(v.slots, i)) != NULL && f.slot < 0; i++)
            if (range_node(c, r, 0) == idx) f.slot = r->element[0]->integer;
        role_of(v.role, &port);
        if (j != idx && port == c->node[idx].port) f.was_replica[j] = 1, replicas++;
        view_free(&v);
    }
    if (f.slot < 0 || replicas == 0) {
        fprintf(stderr,
                "cluster harness: kill_master: node %d is no master with slots and a "
                "replica\n",
                idx);
        return -1;
    }
    wf_test_kill(c->node[idx].pid, SIGKILL, 2000);
    c->node[idx].pid = 0;
    if (!wf_test_wait(failover_done, &f, timeout_ms)) {
        fprintf(stderr, "cluster harness: no replica of node %d took over within %d ms\n", idx,
                timeout_ms);
        return -1;
    }
    return f.new_master;
}

redisContext *wf_test_cluster_connect_for(const wf_test_cluster *c, const char *key)
{
    int m = wf_test_cluster_master_of(c, key);
    return m >= 0 ? wf_test_redis_connect(&c->node[m]) : NULL;
}

redisReply *wf_test_cluster_cmd(const wf_test_cluster *c, const char *key, const char *fmt, ...)
{
    redisContext *ctx = wf_test_cluster_connect_for(c, key);
    if (!ctx) return NULL;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    /* "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>": retry there, once. */
    char host[64];
    int port = 0, ask = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ASK ", 4) == 0;
    if (r && r->type == REDIS_REPLY_ERROR && (ask || strncmp(r->str, "MOVED ", 6) == 0) &&
        sscanf(r->str, "%*s %*d %63[^:]:%d", host, &port) == 2) {
        freeReplyObject(r);
        r = NULL;
        redisFree(ctx);
        struct timeval tv = {2, 0};
        ctx = redisConnectWithTimeout(host, port, tv);
        if (ctx && !ctx->err) {
            redisSetTimeout(ctx, tv);
            if (ask) freeReplyObject(redisCommand(ctx, "ASKING"));
            r = redisvCommand(ctx, fmt, again);
        }
    }
    va_end(again);
    va_end(ap);
    if (ctx) redisFree(ctx);
    return r;
}
