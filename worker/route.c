/* route.c - sending commands on a worker connection (wf__conn): to its one server, or to the
 * cluster node that owns the command's slot.
 *
 * Every command is formatted once; a cluster command (and any script call) keeps its bytes in a
 * `fwd` until answered, so that the reply callback can re-send them: EVAL after NOSCRIPT (a
 * node that never saw the script: a restart, a failover, a node the map just learnt), to the
 * node a MOVED names (the map is updated) or, after ASKING, to the node an ASK names (a slot
 * being migrated). The caller's callback sees only the final reply.
 *
 * What an error reply asks for is decided by wf__reply_action (core/reply_action.h), the same
 * policy as the synchronous and the attached client's routers. A command Redis refused for now
 * (LOADING after a restart, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN: it did not run) waits on a
 * timer and is sent again, backing off to 500 ms, for as long as a lease lasts (the worker's
 * lease_ms): a Redis that loads its data set for seconds costs the callers a delay, not an error.
 * READONLY (a master demoted by a failover) drops the connection: the caller hears "connection
 * lost" and resends after the reconnect, which asks Sentinel or the slot map for the new master.
 *
 * Cross-slot reads: the cmd connection's XREADGROUPs over many workflows' streams (child run
 * ends, webhook outboxes) cannot run as one command in a cluster, so they are split by slot and
 * the replies merged into one before the caller sees them. They do not block, so the merged
 * reply is as quick as the slowest node. The block connection's reads do block: claim.c sends
 * those one workflow at a time on lanes of their own (wf__conn_lane_argv).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "reply_action.h"
#include "wf_worker_internal.h"

#define MAX_HOPS 8

typedef struct merge {
    redisCallbackFn *fn;
    void *priv;
    int pending;
    int lost;
    redisReply *err;   /* the first error reply (copy) */
    redisReply *parts; /* array reply under construction (copies) */
} merge;

typedef struct fwd {
    wf__conn *conn;
    redisCallbackFn *fn;
    void *priv;
    char *cmd;
    size_t len;
    int lane;   /* block lanes: the lane; -1: route by slot */
    int script; /* 1 + the wf__script of an EVALSHA (NOSCRIPT -> EVAL), 0: none */
    int hops;
    merge *m;
    /* Refused for now: waiting on `ev` to be sent again (in conn->refused while it waits). */
    struct event *ev;
    int retries;
    int64_t refused_mono; /* first refusal of this command */
    struct fwd *rnext, *rprev;
} fwd;

static void merge_part(merge *m, redisAsyncContext *ac, redisReply *r)
{
    if (!r)
        m->lost = 1;
    else if (r->type == REDIS_REPLY_ERROR && !m->err)
        m->err = wf__reply_copy(r);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && m->parts) {
        redisReply **el =
            realloc(m->parts->element, sizeof *el * (m->parts->elements + r->elements));
        if (el) {
            m->parts->element = el;
            for (size_t i = 0; i < r->elements; i++) {
                redisReply *c = wf__reply_copy(r->element[i]);
                if (c) el[m->parts->elements++] = c;
            }
        }
    }
    if (--m->pending > 0) return;
    if (m->lost)
        m->fn(ac, NULL, m->priv);
    else if (m->err)
        m->fn(ac, m->err, m->priv);
    else if (m->parts && m->parts->elements > 0)
        m->fn(ac, m->parts, m->priv);
    else {
        redisReply nil = {.type = REDIS_REPLY_NIL};
        m->fn(ac, &nil, m->priv);
    }
    wf__reply_free(m->err);
    wf__reply_free(m->parts);
    free(m);
}

static void fwd_free(fwd *f)
{
    if (f->ev) event_free(f->ev);
    free(f->cmd);
    free(f);
}

static void deliver(fwd *f, redisAsyncContext *ac, redisReply *r)
{
    if (f->m)
        merge_part(f->m, ac, r);
    else if (f->fn)
        f->fn(ac, r, f->priv);
    fwd_free(f);
}

static void fwd_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* The node a formatted command goes to: its slot's owner, or any node for keyless commands. */
static int node_of(const wf__conn *conn, const char *cmd, size_t len)
{
    int slot = wf__cmd_slot(cmd, len);
    int node = slot >= 0 ? conn->map->owner[slot] : -1;
    return node >= 0 ? node : conn->any_node;
}

static int send_on(fwd *f, redisAsyncContext *ac)
{
    return ac && redisAsyncFormattedCommand(ac, fwd_reply, f, f->cmd, f->len) == REDIS_OK ? 0 : -1;
}

/* Sends f where it belongs now. 0, or -1 (f not sent; the caller still owns it). */
static int route(fwd *f)
{
    wf__conn *conn = f->conn;
    if (!conn->cluster) return send_on(f, conn->ac);
    int node = node_of(conn, f->cmd, f->len);
    return send_on(f, wf__conn_lane(conn, f->lane >= 0 ? f->lane : node, node));
}

/* EVALSHA -> EVAL with the script's source, same keys and arguments. 0 or -1. */
static int to_eval(fwd *f)
{
    const wf__script_src *src = wf__script_get((wf__script)(f->script - 1));
    int n = wf__resp_args(f->cmd, f->len, 0, NULL, NULL);
    if (!src || n < 2) return -1;
    const char **argv = malloc(sizeof *argv * (size_t)n);
    size_t *lens = malloc(sizeof *lens * (size_t)n);
    char *cmd = NULL;
    long long len = -1;
    if (argv && lens && wf__resp_args(f->cmd, f->len, n, argv, lens) == n) {
        argv[0] = "EVAL";
        lens[0] = 4;
        argv[1] = src->src;
        lens[1] = src->len;
        len = redisFormatCommandArgv(&cmd, n, argv, lens);
    }
    free(argv);
    free(lens);
    if (len < 0) return -1;
    free(f->cmd);
    f->cmd = cmd;
    f->len = (size_t)len;
    f->script = 0;
    return 0;
}

/* ---- Commands refused for now ------------------------------------------------------------- */

static void refused_unlink(fwd *f)
{
    wf__conn *conn = f->conn;
    /* The head test first: clang-analyzer cannot prove head->rprev is NULL, and otherwise saw
     * wf__conn_refused_flush free the head and read it again. */
    if (conn->refused == f)
        conn->refused = f->rnext;
    else if (f->rprev)
        f->rprev->rnext = f->rnext;
    if (f->rnext) f->rnext->rprev = f->rprev;
    f->rnext = f->rprev = NULL;
}

static void resend_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fwd *f = arg;
    refused_unlink(f);
    /* route() picks the context of now: the one that refused may have been replaced. */
    if (f->conn->closed || route(f) != 0) deliver(f, &f->conn->stub, NULL);
}

/* Redis refused `f` for now (r says why): wait, then send it again. 0, or -1 when its time is up
 * (the caller delivers the refusal). */
static int resend_later(fwd *f, const redisReply *r)
{
    wf__conn *conn = f->conn;
    wf_worker *w = conn->w;
    int64_t now = wf__mono_ms();
    if (f->retries == 0) f->refused_mono = now;
    if (conn->refused_since_mono == 0) conn->refused_since_mono = now;
    int64_t budget = w->opt.lease_ms > w->url.timeout_ms ? w->opt.lease_ms : w->url.timeout_ms;
    if (now - f->refused_mono > budget) return -1;
    if (!f->ev) f->ev = evtimer_new(w->base, resend_cb, f);
    if (!f->ev) return -1;
    int ms = wf__reply_retry_ms(f->retries++);
    if (now - conn->refused_log_mono >= 5000) {
        conn->refused_log_mono = now;
        wf__log(WF__LOG_WARN,
                "Redis refused a command for now (%.*s); sending it again in %d ms, for up to %lld "
                "ms (nothing was run)",
                (int)(r->len > 120 ? 120 : r->len), r->str, ms, (long long)budget);
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(f->ev, &tv);
    f->rnext = conn->refused;
    f->rprev = NULL;
    if (conn->refused) conn->refused->rprev = f;
    conn->refused = f;
    return 0;
}

/* A redirect (MOVED / ASK) of a cluster command. 0 when re-sent. */
static int redirect(fwd *f, const redisReply *r)
{
    wf__conn *conn = f->conn;
    int ask = 0, slot = 0, port = 0;
    char host[256];
    if (!conn->cluster ||
        !wf__redirect_parse(r->str, r->len, &ask, &slot, host, sizeof host, &port))
        return -1;
    int node = wf__slotmap_node(conn->map, host, port);
    if (node >= 0 && !ask) conn->map->owner[slot] = (int16_t)node;
    if (node >= 0 && f->lane < 0) {
        redisAsyncContext *to = wf__conn_lane(conn, node, node);
        if (to && ask) redisAsyncCommand(to, NULL, NULL, "ASKING");
        if (send_on(f, to) == 0) return 0;
    }
    /* A blocking lane is tied to its node: reconnect the connection to the new map. */
    if (f->lane >= 0) wf__conn_reset(conn, "a workflow's slot moved");
    return -1;
}

static void fwd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    fwd *f = privdata;
    wf__conn *conn = f->conn;
    redisReply *r = reply;
    wf__reply_act act = wf__reply_action(r);
    if (r && act == WF__ACT_DONE && conn->refused_since_mono) {
        wf__log(WF__LOG_INFO, "Redis accepts commands again after refusing them for %lld ms",
                (long long)(wf__mono_ms() - conn->refused_since_mono));
        conn->refused_since_mono = 0;
    }
    /* r is never NULL here (wf__reply_action(NULL) is DONE), but that is in another file. */
    if (r && act != WF__ACT_DONE && !conn->closed && f->hops < MAX_HOPS) {
        if (act != WF__ACT_RETRY) f->hops++;
        switch (act) {
        case WF__ACT_NOSCRIPT:
            if (f->script && to_eval(f) == 0 && send_on(f, ac) == 0) return;
            break;
        case WF__ACT_MOVED:
        case WF__ACT_ASK:
            if (redirect(f, r) == 0) return;
            break;
        case WF__ACT_RETRY:
            if (resend_later(f, r) == 0) return;
            break;
        case WF__ACT_RECONNECT:
            /* This node is no master now: the caller hears "lost" and resends once the
             * connection is back, to the master Sentinel or the slot map names then. */
            wf__log(WF__LOG_WARN, "%s connection: Redis answered %.*s; reconnecting", conn->name,
                    (int)(r->len > 120 ? 120 : r->len), r->str);
            deliver(f, ac, NULL);
            wf__conn_drop(conn, ac, "the server is a read-only replica now");
            return;
        default:
            break;
        }
    }
    deliver(f, ac, r);
}

void wf__conn_refused_flush(wf__conn *conn)
{
    /* Detach the whole list first: a callback below may queue nothing here (conn is closed). */
    fwd *f = conn->refused;
    conn->refused = NULL;
    while (f) {
        fwd *next = f->rnext;
        f->rnext = f->rprev = NULL;
        deliver(f, &conn->stub, NULL);
        f = next;
    }
}

static fwd *fwd_new(wf__conn *conn, redisCallbackFn *fn, void *priv, int lane, int script)
{
    fwd *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->conn = conn;
    f->fn = fn;
    f->priv = priv;
    f->lane = lane;
    f->script = script;
    return f;
}

/* Sends a formatted command (takes `cmd`). REDIS_OK or REDIS_ERR (fn never fires). */
static int send_formatted(wf__conn *conn, redisCallbackFn *fn, void *priv, char *cmd, size_t len,
                          int lane, int script, merge *m)
{
    /* Every command keeps its bytes until answered: any may be refused for now and re-sent. */
    fwd *f = fwd_new(conn, fn, priv, lane, script);
    if (!f) {
        free(cmd);
        return REDIS_ERR;
    }
    f->cmd = cmd;
    f->len = len;
    f->m = m;
    if (route(f) != 0) {
        fwd_free(f);
        return REDIS_ERR;
    }
    return REDIS_OK;
}

static int send_argv(wf__conn *conn, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *lens, int lane, int script, merge *m)
{
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) return REDIS_ERR;
    return send_formatted(conn, fn, priv, cmd, (size_t)len, lane, script, m);
}

static size_t arglen(const char *const *argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

/* A cluster XREADGROUP over streams of several slots: one command per slot, one merged reply.
 * Returns REDIS_OK / REDIS_ERR, or 1 when the streams share a slot (send it as it is). */
static int split_xread(wf__conn *conn, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                       const size_t *lens)
{
    int at = -1;
    for (int i = 1; i < argc; i++)
        if (strncasecmp(argv[i], "STREAMS", arglen(argv, lens, i)) == 0 &&
            arglen(argv, lens, i) == 7)
            at = i;
    int ns = at < 0 ? 0 : (argc - at - 1) / 2;
    if (ns < 2) return 1;
    int *slot = malloc(sizeof *slot * (size_t)ns);
    const char **sub = malloc(sizeof *sub * (size_t)argc);
    size_t *sublen = malloc(sizeof *sublen * (size_t)argc);
    merge *m = calloc(1, sizeof *m);
    if (m) m->parts = calloc(1, sizeof *m->parts);
    int rc = REDIS_ERR, distinct = 0;
    if (!slot || !sub || !sublen || !m || !m->parts) goto out;
    m->parts->type = REDIS_REPLY_ARRAY;
    m->fn = fn;
    m->priv = priv;
    for (int i = 0; i < ns; i++) {
        slot[i] = wf__key_slot(argv[at + 1 + i], arglen(argv, lens, at + 1 + i));
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= slot[j] == slot[i];
        distinct += !seen;
    }
    if (distinct < 2) {
        rc = 1;
        goto out;
    }
    m->pending = distinct;
    rc = REDIS_OK;
    int sent = 0;
    for (int i = 0; i < ns; i++) {
        int first = 1;
        for (int j = 0; j < i; j++) first &= slot[j] != slot[i];
        if (!first) continue;
        int k = 0;
        for (int a = 0; a <= at; a++) {
            sub[k] = argv[a];
            sublen[k++] = arglen(argv, lens, a);
        }
        for (int j = i; j < ns; j++)
            if (slot[j] == slot[i]) {
                sub[k] = argv[at + 1 + j];
                sublen[k++] = arglen(argv, lens, at + 1 + j);
            }
        for (int j = i; j < ns; j++)
            if (slot[j] == slot[i]) {
                sub[k] = argv[at + 1 + ns + j];
                sublen[k++] = arglen(argv, lens, at + 1 + ns + j);
            }
        if (send_argv(conn, fn, priv, k, sub, sublen, -1, 0, m) != REDIS_OK) {
            /* The parts already sent still answer: the merged reply says the connection was
             * lost. Nothing sent: the caller hears REDIS_ERR instead. */
            m->lost = 1;
            m->pending -= distinct - sent;
            if (sent == 0) rc = REDIS_ERR;
            break;
        }
        sent++;
    }
    if (rc == REDIS_OK) m = NULL; /* owned by the parts in flight */
out:
    if (m) {
        wf__reply_free(m->parts);
        free(m);
    }
    free(slot);
    free(sub);
    free(sublen);
    return rc;
}

int wf__conn_argv(wf__conn *conn, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                  const size_t *argvlen)
{
    if (conn->cluster && argc > 0 && strcasecmp(argv[0], "XREADGROUP") == 0) {
        int rc = split_xread(conn, fn, priv, argc, argv, argvlen);
        if (rc != 1) return rc;
    }
    return send_argv(conn, fn, priv, argc, argv, argvlen, -1, 0, NULL);
}

int wf__conn_lane_argv(wf__conn *conn, int lane, redisCallbackFn *fn, void *priv, int argc,
                       const char **argv, const size_t *argvlen)
{
    return send_argv(conn, fn, priv, argc, argv, argvlen, conn->cluster ? lane : -1, 0, NULL);
}

int wf__conn_command(wf__conn *conn, redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) return REDIS_ERR;
    return send_formatted(conn, fn, priv, cmd, (size_t)len, -1, 0, NULL);
}

int wf__conn_script(wf__conn *conn, redisCallbackFn *fn, void *priv, wf__script script, int nkeys,
                    const char *const *keys, int nargs, const char *const *args,
                    const size_t *arglens)
{
    const wf__script_src *src = wf__script_get(script);
    if (!src) return WF_ERR_INVALID;
    const char *sha = wf__script_sha(script);
    int argc = 3 + nkeys + nargs;
    const char **argv = malloc(sizeof *argv * (size_t)argc);
    size_t *lens = malloc(sizeof *lens * (size_t)argc);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return WF_ERR_NOMEM;
    }
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = sha ? "EVALSHA" : "EVAL";
    lens[0] = strlen(argv[0]);
    argv[1] = sha ? sha : src->src;
    lens[1] = sha ? 40 : src->len;
    argv[2] = nk;
    lens[2] = strlen(nk);
    for (int i = 0; i < nkeys; i++) {
        argv[3 + i] = keys[i];
        lens[3 + i] = strlen(keys[i]);
    }
    for (int i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = args[i] ? args[i] : "";
        lens[3 + nkeys + i] = arglens ? arglens[i] : (args[i] ? strlen(args[i]) : 0);
    }
    int rc = send_argv(conn, fn, priv, argc, argv, lens, -1, sha ? 1 + (int)script : 0, NULL);
    free(argv);
    free(lens);
    return rc == REDIS_OK ? WF_OK : WF_ERR_IO;
}

typedef struct barrier {
    void (*done)(wf_worker *w);
    wf_worker *w;
    int pending; /* PINGs out, plus one held while they are being sent */
    int lost;
} barrier;

static void barrier_release(barrier *b)
{
    if (--b->pending > 0) return;
    if (!b->lost) b->done(b->w);
    free(b);
}

static void barrier_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    barrier *b = priv;
    if (!reply) b->lost = 1;
    barrier_release(b);
}

int wf__conn_barrier(wf__conn *conn, void (*done)(wf_worker *w))
{
    barrier *b = calloc(1, sizeof *b);
    if (!b) return REDIS_ERR;
    b->done = done;
    b->w = conn->w;
    b->pending = 1;
    /* Each node connection answers in order: its PING's reply follows every earlier reply. */
    if (conn->cluster) {
        for (int i = 0; i < conn->nlanes; i++)
            if (conn->lane[i] &&
                redisAsyncCommand(conn->lane[i], barrier_reply, b, "PING") == REDIS_OK)
                b->pending++;
    } else if (conn->ac && redisAsyncCommand(conn->ac, barrier_reply, b, "PING") == REDIS_OK) {
        b->pending++;
    }
    barrier_release(b);
    return REDIS_OK;
}
