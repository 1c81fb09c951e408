/* flow.c - flow control, the worker's part: on the 100 ms tick, for each workflow, runs that
 * claim.lua held back because of the workflow's limits (P:{W}:limits: max_running, and
 * max_per_key for a key taken from the input) are offered to admit.lua, oldest first, which
 * re-queues those the limits allow now. A held run is `waiting` with a wait_reason such as
 * "concurrency limit: 5 of 5 running" and holds no executor slot anywhere.
 *
 * The limits are enforced in Lua, against the running index, so they hold across every worker;
 * this tick only decides when to look again. One admit.lua round per workflow is in flight at a
 * time; a workflow with no run held back costs one ZRANGE a second (IDLE_MS).
 */
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

#define ADMIT_LIMIT 20  /* held runs offered per round */
#define IDLE_MS     500 /* with no run held back, the held set is read this often */

typedef struct flow_round {
    wf_worker *w;
    wf__wdef *def;
    const char *const *keys; /* def->aux from WF__AUX_LIMITS: limits, flow, held, rate */
} flow_round;

static void round_free(flow_round *f)
{
    f->def->flow_busy = 0;
    free(f);
}

static void admit_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    flow_round *f = privdata;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR) {
        wf_error e = {0};
        wf__script_error(r->str, r->len, &e);
        wf__log(WF__LOG_ERROR, "admit.lua failed for workflow %s: %s", f->def->name, e.message);
    } else if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        wf__log(WF__LOG_DEBUG, "%lld held run%s of workflow %s let go", r->integer,
                r->integer == 1 ? "" : "s", f->def->name);
    }
    round_free(f);
}

static void held_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    flow_round *f = privdata;
    wf_worker *w = f->w;
    wf__wdef *def = f->def;
    redisReply *r = reply;
    /* No run held back: look again in IDLE_MS, or at the next tick once this worker ends a run
     * of the workflow (wf__flow_nudge); one ended elsewhere is seen at most IDLE_MS late. */
    def->next_flow =
        r && r->type == REDIS_REPLY_ARRAY && r->elements == 0 ? wf__mono_ms() + IDLE_MS : 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || w->stop.closing ||
        !wf__conn_usable(&w->cmd)) {
        round_free(f);
        return;
    }
    size_t n = r->elements;
    const char **keys = calloc(WF__NFIXED + 4 + n, sizeof *keys);
    const char **args = calloc(n, sizeof *args);
    char **runs = calloc(n, sizeof *runs);
    size_t nc = 0;
    int sent = 0;
    if (keys && args && runs) {
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = def->keys.k[i];
        for (int i = 0; i < 4; i++) keys[WF__NFIXED + i] = f->keys[i];
        for (size_t i = 0; i < n; i++) {
            const redisReply *id = r->element[i];
            char wfname[WF__NAME_MAX + 1];
            if (id->type != REDIS_REPLY_STRING || strlen(id->str) != id->len ||
                wf__runid_parse(id->str, wfname, NULL) != WF_OK || strcmp(wfname, def->name)) {
                wf__conn_command(&w->cmd, NULL, NULL, "ZREM %s %b", f->keys[2], id->str, id->len);
                continue;
            }
            if (!(runs[nc] = wf__key_run(w->url.prefix, def->name, id->str))) break;
            keys[WF__NFIXED + 4 + nc] = runs[nc];
            args[nc++] = id->str;
        }
        sent = nc > 0 &&
               wf__conn_script(&w->cmd, admit_reply, f, WF__SCRIPT_ADMIT,
                               (int)(WF__NFIXED + 4 + nc), keys, (int)nc, args, NULL) == WF_OK;
    }
    for (size_t i = 0; runs && i < nc; i++) free(runs[i]);
    free(runs);
    free(keys);
    free(args);
    if (!sent) round_free(f);
}

void wf__flow_nudge(wf__wdef *def)
{
    def->next_flow = 0;
}

void wf__flow_tick(wf_worker *w, wf__wdef *def)
{
    if (def->flow_busy || w->stop.closing || w->stop.draining || !wf__conn_usable(&w->cmd) ||
        wf__mono_ms() < def->next_flow)
        return;
    flow_round *f = calloc(1, sizeof *f);
    if (!f) return;
    f->w = w;
    f->def = def;
    f->keys = (const char *const *)&def->aux[WF__AUX_LIMITS];
    def->flow_busy = 1;
    if (wf__conn_command(&w->cmd, held_reply, f, "ZRANGE %s 0 %d", f->keys[2], ADMIT_LIMIT - 1) !=
        REDIS_OK)
        round_free(f);
}
