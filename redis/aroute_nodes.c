/* aroute_nodes.c - the async router's own node contexts (aroute.h, cfg.ctx NULL): one per master
 * of the slot map, made on first use on the router's loop with the URL's AUTH, forgotten when
 * hiredis drops them; and the slot map reloaded without blocking (CLUSTER SLOTS), which the
 * owner asks for when a node was lost or answered READONLY (a failover moved its slots). */
#include <stdlib.h>

#include <hiredis/adapters/libevent.h>

#include "aroute_impl.h"

static void node_gone(const redisAsyncContext *ac, int status)
{
    (void)status;
    wf__ar *ar = ac->data;
    if (!ar) return;
    for (int i = 0; i < WF__NODES_MAX; i++)
        if (ar->node[i] == ac) ar->node[i] = NULL;
}

/* A connect that fails frees the context without the disconnect callback (hiredis 0.14): the
 * slot must be cleared here too, or the next command would use a freed context. */
static void node_connected(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) node_gone(ac, status);
}

redisAsyncContext *wf__ar_node_ctx(wf__ar *ar, int i)
{
    wf__slotmap *map = ar->cfg.map;
    if (ar->closing || !map || i < 0 || i >= map->nnodes) return NULL;
    if (ar->node[i]) return ar->node[i];
    redisAsyncContext *ac = redisAsyncConnect(map->node[i].host, map->node[i].port);
    if (!ac || ac->err) {
        if (ac) redisAsyncFree(ac);
        return NULL;
    }
    ac->data = ar;
    if (redisLibeventAttach(ac, ar->cfg.base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetDisconnectCallback(ac, node_gone);
    redisAsyncSetConnectCallback(ac, node_connected);
    /* A refused AUTH shows as the NOAUTH error reply of the command that follows. */
    wf__redis_auth_async(ac, ar->url, NULL, NULL);
    ar->node[i] = ac;
    return ac;
}

void wf__ar_nodes_close(wf__ar *ar)
{
    for (int i = 0; i < WF__NODES_MAX; i++)
        if (ar->node[i]) {
            redisAsyncContext *ac = ar->node[i];
            ar->node[i] = NULL;
            ac->data = NULL;
            redisAsyncFree(ac); /* pending callbacks fire with NULL replies */
        }
}

static void slots_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__ar *ar = privdata;
    ar->reloading = 0;
    if (!reply || ar->closing) return;
    wf__slotmap *map = ar->cfg.map;
    wf__slotmap *fresh = malloc(sizeof *fresh);
    char why[256];
    const char *asked = "";
    for (int i = 0; i < map->nnodes; i++)
        if (ar->node[i] == ac) asked = map->node[i].host;
    if (fresh && wf__slotmap_parse(reply, asked, fresh, why, sizeof why) == 0) {
        /* Node indexes are ar->node[]'s: translate the fresh map's into the known map's. */
        int16_t to[WF__NODES_MAX];
        for (int i = 0; i < WF__NODES_MAX; i++) to[i] = -1;
        for (int i = 0; i < fresh->nnodes; i++)
            to[i] = (int16_t)wf__slotmap_node(map, fresh->node[i].host, fresh->node[i].port);
        for (int s = 0; s < WF__SLOTS; s++)
            map->owner[s] = fresh->owner[s] >= 0 ? to[fresh->owner[s]] : -1;
    }
    free(fresh);
}

void wf__ar_reload(wf__ar *ar)
{
    wf__slotmap *map = ar->cfg.map;
    if (ar->reloading || ar->closing || ar->cfg.ctx || !map || !ar->url || !ar->url->seeds) return;
    const struct wf__sentinel *seeds = ar->url->seeds;
    for (int i = 0; i < map->nnodes + seeds->n; i++) {
        int n = i < map->nnodes ? i
                                : wf__slotmap_node(map, seeds->host[i - map->nnodes],
                                                   seeds->port[i - map->nnodes]);
        redisAsyncContext *ac = wf__ar_node_ctx(ar, n);
        if (ac && redisAsyncCommand(ac, slots_reply, ar, "CLUSTER SLOTS") == REDIS_OK) {
            ar->reloading = 1;
            return;
        }
    }
}
