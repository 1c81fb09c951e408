/* claim_lost.c - runs a claim may have made ours although its reply never came (the connection
 * dropped after claim.lua ran: a Redis killed or restarted at that moment). Nothing in this
 * process holds them, so without this they would wait for their lease to expire and be reclaimed
 * as if this worker had died (counted in the run's `reclaims`, which the slow-load chaos scenario
 * saw once). Once cmd is ready again each is read (state, lease, worker) and, if it is running
 * under this worker's name and not held here, handed back with release.lua: re-queued at once,
 * the attempt not counted. release.lua refuses a token that is no longer the run's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

/* A run a lost claim reply may have made ours (w->claim.lost). */
typedef struct wf__lost_claim {
    struct wf__lost_claim *next;
    wf__wdef *def;
    char id[WF__ID_MAX];
} wf__lost_claim;

void wf__claim_lost_add(wf_worker *w, wf__wdef *def, const char *id)
{
    wf__lost_claim *l = calloc(1, sizeof *l);
    if (!l) return; /* its lease expires and it is reclaimed: late, not lost */
    l->def = def;
    snprintf(l->id, sizeof l->id, "%s", id);
    l->next = w->claim.lost;
    w->claim.lost = l;
}

typedef struct lost_check {
    wf_worker *w;
    wf__wdef *def;
    char id[WF__ID_MAX];
} lost_check;

static void handed_back(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    lost_check *c = privdata;
    redisReply *r = reply;
    if (r && r->type != REDIS_REPLY_ERROR)
        wf__log_run(WF__LOG_INFO, c->id, c->def->name, 0,
                    "handed back to the queue: a claim of it whose reply was lost had made it "
                    "ours");
    else if (!r && !c->w->stop.closing)
        wf__claim_lost_add(c->w, c->def, c->id); /* lost again: the next reconnect checks it */
    free(c);
}

/* The run's state, lease and worker: if a lost claim made it ours, release.lua gives it back
 * (the attempt is not counted; release.lua refuses a token that is no longer the run's). */
static void lost_state(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    lost_check *c = privdata;
    wf_worker *w = c->w;
    redisReply *r = reply;
    if (!r) {
        if (!w->stop.closing) wf__claim_lost_add(w, c->def, c->id);
        free(c);
        return;
    }
    int ours =
        r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "running") == 0 &&
        r->element[1]->type == REDIS_REPLY_STRING && r->element[2]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[2]->str, w->consumer) == 0;
    for (wf__job *j = w->jobs.head; ours && j; j = j->next)
        if (j->def == c->def && strcmp(j->id, c->id) == 0) ours = 0; /* claimed again, held */
    char *run = ours ? wf__key_run(w->url.prefix, c->def->name, c->id) : NULL;
    if (!run) {
        free(c);
        return;
    }
    const char *keys[WF__NFIXED + 1];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = c->def->keys.k[i];
    keys[WF__NFIXED] = run;
    const char *args[2] = {c->id, r->element[1]->str};
    if (wf__conn_script(&w->cmd, handed_back, c, WF__SCRIPT_RELEASE, WF__NFIXED + 1, keys, 2, args,
                        NULL) != WF_OK) {
        wf__claim_lost_add(w, c->def, c->id);
        free(c);
    }
    free(run);
}

void wf__claim_recover(wf_worker *w)
{
    wf__lost_claim *l = w->claim.lost;
    w->claim.lost = NULL;
    while (l) {
        wf__lost_claim *next = l->next;
        lost_check *c = w->stop.closing || !wf__conn_usable(&w->cmd) ? NULL : calloc(1, sizeof *c);
        char *run = c ? wf__key_run(w->url.prefix, l->def->name, l->id) : NULL;
        if (c && run) {
            c->w = w;
            c->def = l->def;
            snprintf(c->id, sizeof c->id, "%s", l->id);
            if (wf__conn_command(&w->cmd, lost_state, c, "HMGET %s state lease worker", run) !=
                REDIS_OK) {
                free(c);
                if (!w->stop.closing) wf__claim_lost_add(w, l->def, l->id);
            }
        } else {
            free(c);
            if (!w->stop.closing)
                wf__claim_lost_add(w, l->def, l->id); /* not now: the next reconnect */
        }
        free(run);
        free(l);
        l = next;
    }
}
