/* aroute_impl.h - what the files of the async router (aroute.c, aroute_nodes.c, aroute_xread.c)
 * share; nobody else includes it (aroute.h is the interface). */
#ifndef WF_AROUTE_IMPL_H
#define WF_AROUTE_IMPL_H

#include "aroute.h"

/* A cross-slot XREADGROUP's merged reply under construction (aroute_xread.c). */
typedef struct wf__ar_merge wf__ar_merge;

struct wf__ar {
    wf__ar_cfg cfg;
    const wf__url *url; /* AUTH for the router's own node contexts */
    int closing;        /* wf__ar_close ran: nothing is sent again */
    /* The router's own node contexts (cfg.ctx NULL), made on first use (aroute_nodes.c). */
    redisAsyncContext *node[WF__NODES_MAX];
    int reloading; /* a CLUSTER SLOTS is in flight */
    /* Commands Redis refused for now, each waiting on a timer of its own to be sent again. */
    struct wf__fwd *refused;
    int64_t refused_note_mono;  /* last WF__AR_REFUSED note */
    int64_t refused_since_mono; /* first refusal since Redis last answered normally; 0: none */
    redisAsyncContext stub;     /* what a callback sees as `ac` when no context answered */
};

/* aroute.c: sends argv (lane -1: routed by slot) with its reply going to merge `m` (NULL: fn). */
int wf__ar_send_argv(wf__ar *ar, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *lens, int lane, int script, wf__ar_merge *m);
/* aroute_xread.c: one part's reply (NULL: lost); the last one answers the caller. */
void wf__ar_merge_part(wf__ar_merge *m, redisAsyncContext *ac, redisReply *r);
/* aroute_xread.c: a cluster XREADGROUP split by slot. REDIS_OK / REDIS_ERR, or 1 when it is not
 * one to split (send it as it is). */
int wf__ar_split_xread(wf__ar *ar, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                       const size_t *lens);
/* aroute_nodes.c: the router's own context for node `node`, made on first use; NULL when none
 * can be had now. Frees them all at close. */
redisAsyncContext *wf__ar_node_ctx(wf__ar *ar, int node);
void wf__ar_nodes_close(wf__ar *ar);

#endif
