/* arc.c - wf__arc: libwf's scripts on the caller's libevent loop, routed over a Redis Cluster
 * (cluster.h). What rc.c does with blocking reads, done here with callbacks and timers, because
 * an attached client (wf_client_attach) must never block the loop it was handed: MOVED updates
 * the map and sends again, ASK sends ASKING then the script to the importing node, what Redis
 * refused for now (LOADING, TRYAGAIN, CLUSTERDOWN, ...) waits and is sent again, and a node
 * connection that drops, or a node that answers READONLY, reloads the map with an asynchronous
 * CLUSTER SLOTS (a failover moved its slots to a promoted replica). What each reply means is
 * wf__reply_action's (reply_action.h), the policy of the worker's and the synchronous routers.
 * Each call keeps its own copy of keys and arguments until its final reply, bounded by the URL's
 * timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "cluster.h"
#include "reply_action.h"

typedef struct call {
    struct call *prev, *next; /* every live call, for wf__arc_free */
    wf__arc *a;
    void (*fn)(redisAsyncContext *, void *, void *);
    void *privdata;
    wf__script script;
    int nkeys, nargs;
    char **keys;
    char **args;
    size_t *lens;
    int slot;
    int ask_node;        /* >= 0: the next send goes there, after ASKING */
    int retries;         /* sends again after a refusal or a lost node (backoff) */
    int64_t deadline_ms; /* give up (fn gets NULL or the last reply) after this */
    struct event *timer; /* a pending retry */
} call;

struct wf__arc {
    const wf__url *url;
    struct event_base *base;
    wf__slotmap map;
    redisAsyncContext *ac[WF__NODES_MAX];
    call *calls;
    int refreshing; /* a CLUSTER SLOTS is in flight */
    int closing;
};

static void send_call(call *c);

static void call_free(call *c)
{
    wf__arc *a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->timer) event_free(c->timer);
    for (int i = 0; i < c->nkeys; i++) free(c->keys[i]);
    for (int i = 0; i < c->nargs; i++) free(c->args[i]);
    free(c->keys);
    free(c->args);
    free(c->lens);
    free(c);
}

static void deliver(call *c, redisAsyncContext *ac, void *reply)
{
    c->fn(ac, reply, c->privdata);
    call_free(c);
}

static void node_gone(const redisAsyncContext *ac, int status)
{
    (void)status;
    wf__arc *a = ac->data;
    if (!a) return;
    for (int i = 0; i < WF__NODES_MAX; i++)
        if (a->ac[i] == ac) a->ac[i] = NULL;
}

/* A connect that fails frees the context without the disconnect callback (hiredis 0.14): the
 * slot must be cleared here too, or the next call would use a freed context. */
static void node_connected(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) node_gone(ac, status);
}

static redisAsyncContext *node_ac(wf__arc *a, int i)
{
    if (i < 0 || i >= a->map.nnodes) return NULL;
    if (a->ac[i]) return a->ac[i];
    redisAsyncContext *ac = redisAsyncConnect(a->map.node[i].host, a->map.node[i].port);
    if (!ac || ac->err) {
        if (ac) redisAsyncFree(ac);
        return NULL;
    }
    ac->data = a;
    if (redisLibeventAttach(ac, a->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetDisconnectCallback(ac, node_gone);
    redisAsyncSetConnectCallback(ac, node_connected);
    /* A refused AUTH shows as the NOAUTH error reply of the script that follows. */
    wf__redis_auth_async(ac, a->url, NULL, NULL);
    a->ac[i] = ac;
    return ac;
}

/* ---- the slot map, reloaded without blocking ------------------------------------------------ */

static void slots_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__arc *a = privdata;
    a->refreshing = 0;
    if (!reply || a->closing) return;
    wf__slotmap *fresh = malloc(sizeof *fresh);
    char why[256];
    const char *asked = "";
    for (int i = 0; i < a->map.nnodes; i++)
        if (a->ac[i] == ac) asked = a->map.node[i].host;
    if (fresh && wf__slotmap_parse(reply, asked, fresh, why, sizeof why) == 0) {
        /* Node indexes are a->ac[]'s: translate the fresh map's into the known map's. */
        int16_t to[WF__NODES_MAX];
        for (int i = 0; i < WF__NODES_MAX; i++) to[i] = -1;
        for (int i = 0; i < fresh->nnodes; i++)
            to[i] = (int16_t)wf__slotmap_node(&a->map, fresh->node[i].host, fresh->node[i].port);
        for (int s = 0; s < WF__SLOTS; s++)
            a->map.owner[s] = fresh->owner[s] >= 0 ? to[fresh->owner[s]] : -1;
    }
    free(fresh);
}

/* Asks the first node that takes a connection (known nodes, then the URL's seeds). */
static void refresh(wf__arc *a)
{
    if (a->refreshing || a->closing) return;
    for (int i = 0; i < a->map.nnodes + a->url->seeds->n; i++) {
        int n = i < a->map.nnodes
                    ? i
                    : wf__slotmap_node(&a->map, a->url->seeds->host[i - a->map.nnodes],
                                       a->url->seeds->port[i - a->map.nnodes]);
        redisAsyncContext *ac = node_ac(a, n);
        if (ac && redisAsyncCommand(ac, slots_reply, a, "CLUSTER SLOTS") == REDIS_OK) {
            a->refreshing = 1;
            return;
        }
    }
}

/* ---- calls ---------------------------------------------------------------------------------- */

static void retry_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    call *c = arg;
    send_call(c);
}

/* Sends again after a backoff (wf__reply_retry_ms), or gives up with `reply` (may be NULL) past
 * the deadline. */
static void retry_later(call *c, redisAsyncContext *ac, void *reply)
{
    int ms = wf__reply_retry_ms(c->retries);
    if (c->a->closing || wf__mono_ms() + ms > c->deadline_ms) {
        deliver(c, ac, reply);
        return;
    }
    c->retries++;
    if (!c->timer) c->timer = evtimer_new(c->a->base, retry_fire, c);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!c->timer || evtimer_add(c->timer, &tv) != 0) deliver(c, ac, reply);
}

static void call_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    call *c = privdata;
    wf__arc *a = c->a;
    redisReply *r = reply;
    if (a->closing) {
        deliver(c, ac, NULL);
        return;
    }
    if (!r) {
        /* The node went away: its slots may be another's now. */
        refresh(a);
        retry_later(c, ac, NULL);
        return;
    }
    int ask = 0, slot = 0, port = 0;
    char host[256];
    wf__reply_act act = wf__reply_action(r);
    if ((act == WF__ACT_MOVED || act == WF__ACT_ASK) &&
        wf__redirect_parse(r->str, r->len, &ask, &slot, host, sizeof host, &port)) {
        int node = wf__slotmap_node(&a->map, host, port);
        if (node >= 0 && wf__mono_ms() < c->deadline_ms) {
            if (ask)
                c->ask_node = node;
            else if (slot >= 0 && slot < WF__SLOTS)
                a->map.owner[slot] = (int16_t)node;
            send_call(c);
            return;
        }
    }
    if (act == WF__ACT_RECONNECT) refresh(a); /* a demoted master: learn the new owner */
    if (act == WF__ACT_RETRY || act == WF__ACT_RECONNECT) {
        retry_later(c, ac, reply);
        return;
    }
    deliver(c, ac, reply);
}

static void send_call(call *c)
{
    wf__arc *a = c->a;
    int node = c->ask_node >= 0 ? c->ask_node : a->map.owner[c->slot];
    redisAsyncContext *ac = node_ac(a, node);
    if (!ac) {
        refresh(a);
        retry_later(c, NULL, NULL);
        return;
    }
    if (c->ask_node >= 0) redisAsyncCommand(ac, NULL, NULL, "ASKING");
    c->ask_node = -1;
    if (wf__script_call_async(ac, call_reply, c, c->script, c->nkeys, (const char *const *)c->keys,
                              c->nargs, (const char *const *)c->args, c->lens) != WF_OK)
        retry_later(c, NULL, NULL);
}

int wf__arc_script(wf__arc *a, void (*fn)(redisAsyncContext *, void *, void *), void *privdata,
                   wf__script script, int nkeys, const char *const *keys, int nargs,
                   const char *const *args, const size_t *lens)
{
    if (nkeys < 1) return WF_ERR_INVALID;
    call *c = calloc(1, sizeof *c);
    if (!c) return WF_ERR_NOMEM;
    c->keys = calloc((size_t)nkeys, sizeof *c->keys);
    c->args = calloc((size_t)nargs + 1, sizeof *c->args);
    c->lens = calloc((size_t)nargs + 1, sizeof *c->lens);
    int ok = c->keys && c->args && c->lens;
    for (int i = 0; ok && i < nkeys; i++, c->nkeys++) ok = (c->keys[i] = strdup(keys[i])) != NULL;
    for (int i = 0; ok && i < nargs; i++, c->nargs++) {
        size_t n = lens ? lens[i] : strlen(args[i]);
        ok = (c->args[i] = malloc(n + 1)) != NULL;
        if (ok) {
            memcpy(c->args[i], args[i], n);
            c->args[i][n] = '\0';
            c->lens[i] = n;
        }
    }
    c->a = a;
    c->next = a->calls;
    if (a->calls) a->calls->prev = c;
    a->calls = c;
    if (!ok) {
        call_free(c);
        return WF_ERR_NOMEM;
    }
    c->fn = fn;
    c->privdata = privdata;
    c->script = script;
    c->slot = wf__key_slot(keys[0], strlen(keys[0]));
    c->ask_node = -1;
    c->deadline_ms = wf__mono_ms() + a->url->timeout_ms;
    send_call(c);
    return WF_OK;
}

wf__arc *wf__arc_open(const wf__url *url, struct event_base *base, wf_error *err)
{
    wf__arc *a = calloc(1, sizeof *a);
    if (!a) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    a->url = url;
    a->base = base;
    if (wf__slotmap_fetch(url, NULL, &a->map, err) != WF_OK) {
        free(a);
        return NULL;
    }
    return a;
}

void wf__arc_free(wf__arc *a)
{
    if (!a) return;
    a->closing = 1;
    /* Calls waiting on a timer end here; calls in flight end as their connection is freed. */
    for (call *c = a->calls, *next; c; c = next) {
        next = c->next;
        if (c->timer && evtimer_pending(c->timer, NULL)) deliver(c, NULL, NULL);
    }
    for (int i = 0; i < WF__NODES_MAX; i++)
        if (a->ac[i]) {
            redisAsyncContext *ac = a->ac[i];
            a->ac[i] = NULL;
            ac->data = NULL;
            redisAsyncFree(ac);
        }
    /* Anything left never reached a connection. */
    while (a->calls) deliver(a->calls, NULL, NULL);
    free(a);
}
