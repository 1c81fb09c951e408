/* batch_end.c - completions go to Redis in batches: every handler that returned a result during
 * one turn of the loop is completed by one complete.lua call per workflow.
 *
 * Why: in Redis a script call costs a fixed price (the call itself, the lib.lua prelude, the
 * fixed-key type check, the clock, the index pruning) on top of the few commands a completion
 * needs; with one call per run that fixed price was most of the Redis CPU a run cost. A batch
 * pays it once. Nothing waits for a batch to fill: it is sent at the end of the loop turn that
 * produced it (a wf__turn_batch, wf_turn_batch.h), so latency is unchanged.
 *
 * A job in the batch is `batched` (not yet sent) and may not be freed (wf__job_maybe_free checks
 * it). If the cmd connection is down when the batch goes out, its jobs simply stay ENDING, and
 * wf__job_flush_ops puts them in a new batch after the reconnect, as for any other end op.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

/* Runs per complete.lua call: bounds one script's time in Redis (and its argument count). */
#define BATCH_MAX 128

typedef struct sent_batch {
    int n;
    wf__job *jobs[BATCH_MAX];
} sent_batch;

static void batch_flush(void *w)
{
    wf__cbatch_send(w);
}

int wf__cbatch_init(wf_worker *w)
{
    return wf__turn_batch_init(&w->ends.batch, w->base, batch_flush, w);
}

void wf__cbatch_free(wf_worker *w)
{
    wf__turn_batch_free(&w->ends.batch);
}

int wf__cbatch_add(wf_worker *w, wf__job *job)
{
    if (job->batched) return WF_OK;
    int rc = wf__turn_batch_add(&w->ends.batch, job);
    if (rc != WF_OK) return rc; /* the job stays ENDING: the next flush retries it */
    job->batched = 1;
    return WF_OK;
}

static void batch_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf_worker *w = ((wf__conn *)ac->data)->w;
    sent_batch *b = privdata;
    redisReply *r = reply;
    /* One run answers with its own reply; several with an array, one element per run. A
     * whole-call error (a clobbered fixed key) or a lost connection applies to every run. */
    int per_run = r && b->n > 1 && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)b->n;
    for (int i = 0; i < b->n; i++) wf__job_op_done(w, b->jobs[i], per_run ? r->element[i] : r);
    free(b);
}

/* Sends jobs[0..n) (all of one workflow) in one complete.lua call. */
static void send_one(wf_worker *w, wf__job **jobs, int n)
{
    wf__wdef *def = jobs[0]->def;
    int nkeys = WF__NFIXED + 2 * n + 2, nargs = 3 * n + 2;
    const char **keys = calloc((size_t)nkeys, sizeof *keys);
    char **owned = calloc(2 * (size_t)n, sizeof *owned);
    const char **args = calloc((size_t)nargs, sizeof *args);
    size_t *arglen = calloc((size_t)nargs, sizeof *arglen);
    sent_batch *b = malloc(sizeof *b);
    char retention[24];
    int ok = keys && owned && args && arglen && b;
    for (int i = 0; ok && i < n; i++) {
        owned[2 * i] = wf__key_run(w->url.prefix, def->name, jobs[i]->id);
        owned[2 * i + 1] = wf__key_steps(w->url.prefix, def->name, jobs[i]->id);
        ok = owned[2 * i] && owned[2 * i + 1];
    }
    if (ok) {
        int k = 0, a = 0;
        for (int i = 0; i < WF__NFIXED; i++) keys[k++] = def->keys.k[i];
        for (int i = 0; i < n; i++) {
            wf__job *j = jobs[i];
            keys[k++] = owned[2 * i];
            keys[k++] = owned[2 * i + 1];
            args[a] = j->id;
            arglen[a] = strlen(j->id);
            a++;
            args[a] = j->token;
            arglen[a] = strlen(j->token);
            a++;
            args[a] = j->out.size ? j->out.data : "\xc0"; /* msgpack nil */
            arglen[a] = j->out.size ? j->out.size : 1;
            a++;
        }
        snprintf(retention, sizeof retention, "%lld", (long long)w->url.retention_ms);
        args[a] = retention;
        arglen[a] = strlen(retention);
        a++;
        /* Webhooks and parents: the same optional trailing keys as fail.lua (finish.c). */
        const char *outbox = def->aux[WF__AUX_OUTBOX];
        if (outbox) {
            keys[k++] = outbox;
            if (def->aux[WF__AUX_PARENTS]) keys[k++] = def->aux[WF__AUX_PARENTS];
            args[a] = wf__ops_notify_mode(w);
            arglen[a] = strlen(args[a]);
            a++;
        }
        b->n = n;
        memcpy(b->jobs, jobs, (size_t)n * sizeof *jobs);
        ok = wf__conn_script(&w->cmd, batch_reply, b, WF__SCRIPT_COMPLETE, k, keys, a, args,
                             arglen) == WF_OK;
    }
    for (int i = 0; owned && i < 2 * n; i++) free(owned[i]);
    free(owned);
    free(keys);
    free(args);
    free(arglen);
    if (!ok) {
        /* Out of memory or no connection: they stay ENDING for the next flush. */
        free(b);
        for (int i = 0; i < n; i++) wf__job_maybe_free(w, jobs[i]);
        return;
    }
    for (int i = 0; i < n; i++) jobs[i]->op_inflight = 1;
    w->ends.inflight += n;
}

void wf__cbatch_send(wf_worker *w)
{
    int n;
    void **all = wf__turn_batch_take(&w->ends.batch, &n); /* of wf__job * */
    /* Drop jobs that are no longer ours to complete (lease lost meanwhile). */
    int m = 0;
    for (int i = 0; i < n; i++) {
        wf__job *job = all[i];
        job->batched = 0;
        if (job->lease == WF__LEASE_ENDING && !job->op_inflight)
            all[m++] = job;
        else
            wf__job_maybe_free(w, job);
    }
    if (!wf__conn_usable(&w->cmd)) {
        for (int i = 0; i < m; i++) wf__job_maybe_free(w, all[i]);
        free(all);
        return;
    }
    /* Group by workflow (keys of one call share one hash tag), in order of arrival. */
    wf__job *group[BATCH_MAX];
    for (int i = 0; i < m; i++) {
        const wf__job *first = all[i];
        if (!first) continue;
        int g = 0;
        for (int j = i; j < m && g < BATCH_MAX; j++) {
            wf__job *job = all[j];
            if (job && job->def == first->def) {
                group[g++] = job;
                all[j] = NULL;
            }
        }
        send_one(w, group, g); /* any more of this workflow start a group further on */
    }
    free(all);
}
