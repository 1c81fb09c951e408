/* batch_step.c - step records go to Redis in batches: the step.lua requests of handlers that the
 * loop takes during one turn are sent at its end, in one call per workflow, and each handler is
 * answered with its own element of the reply.
 *
 * Why: a step record is three or four commands in Redis, but a script call that arrives alone
 * costs several times that (the call, the lib.lua prelude, the clock); with one call per record
 * that fixed price was most of what a step cost Redis. A batch pays it once. Nothing waits for a
 * batch to fill: it goes out at the end of the turn in which its first record arrived (a
 * wf__turn_batch, wf_turn_batch.h, as batch_end.c's completions), so a lone record is not delayed.
 *
 * Durability is unchanged: a handler goes on only once Redis answered its own record (it waits
 * in wf__ctx_call until wf__req_answer completes its request), so a worker killed at any point
 * never re-runs a step whose record it was told about. Each record keeps its own lease check: a
 * STALE one fails its handler alone. A whole-call answer (no connection, an error for the call)
 * is given to every request of the call, which then goes the way of any request (ctx.c): held
 * while the connection is down and re-sent (a record is idempotent), or failed.
 */
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

/* Records per step.lua call: bounds one script's time in Redis (and its argument count). */
#define BATCH_MAX 128
/* A record's arguments in a call of several (step.lua ARGV): id, token, name, record, lost. */
#define REC_ARGS 5

typedef struct sent_batch {
    int n;
    wf__req *reqs[BATCH_MAX];
} sent_batch;

static void batch_flush(void *w)
{
    wf__sbatch_send(w);
}

int wf__sbatch_init(wf_worker *w)
{
    return wf__turn_batch_init(&w->srec.batch, w->base, batch_flush, w);
}

void wf__sbatch_free(wf_worker *w)
{
    /* empty: wf__reqs_fail_all took its requests at shutdown */
    wf__turn_batch_free(&w->srec.batch);
}

int wf__sbatch_add(wf_worker *w, wf__req *req)
{
    int nargs = req->argc - req->nkeys;
    if (req->nkeys != WF__NFIXED + 2 || nargs < REC_ARGS - 1 || nargs > REC_ARGS)
        return WF_ERR_INVALID; /* not the shape of one record: sent alone, as it is */
    return wf__turn_batch_add(&w->srec.batch, req); /* WF_ERR_INVALID before init: alone too */
}

void wf__sbatch_hold(wf_worker *w)
{
    int n;
    void **all = wf__turn_batch_take(&w->srec.batch, &n); /* of wf__req * */
    for (int i = n - 1; i >= 0; i--) {
        wf__req *req = all[i];
        req->next = w->reqs_head;
        w->reqs_head = req;
        if (!w->reqs_tail) w->reqs_tail = req;
    }
    free(all);
}

static void batch_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf_worker *w = ((wf__conn *)ac->data)->w;
    sent_batch *b = privdata;
    redisReply *r = reply;
    /* One record answers with its own reply; several with an array, one element per record. */
    int per_rec = r && b->n > 1 && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)b->n;
    for (int i = 0; i < b->n; i++) wf__req_answer(w, b->reqs[i], per_rec ? r->element[i] : r);
    free(b);
}

/* Sends reqs[0..n) (step records of one workflow) in one step.lua call. WF_OK, or an error with
 * nothing sent. */
static int send_one(wf_worker *w, wf__req **reqs, int n)
{
    if (n == 1) { /* the request's own arguments: the single-record shape of step.lua */
        wf__req *q = reqs[0];
        sent_batch *b = malloc(sizeof *b);
        if (!b) return WF_ERR_NOMEM;
        b->n = 1;
        b->reqs[0] = q;
        int rc = wf__conn_script(&w->cmd, batch_reply, b, WF__SCRIPT_STEP, q->nkeys,
                                 (const char *const *)q->argv, q->argc - q->nkeys,
                                 (const char *const *)q->argv + q->nkeys, q->argvlen + q->nkeys);
        if (rc != WF_OK) free(b);
        return rc;
    }
    int nkeys = WF__NFIXED + 2 * n, nargs = REC_ARGS * n;
    const char **keys = calloc((size_t)nkeys, sizeof *keys);
    const char **args = calloc((size_t)nargs, sizeof *args);
    size_t *arglen = calloc((size_t)nargs, sizeof *arglen);
    sent_batch *b = malloc(sizeof *b);
    int rc = keys && args && arglen && b ? WF_OK : WF_ERR_NOMEM;
    if (rc == WF_OK) {
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = reqs[0]->argv[i];
        for (int i = 0; i < n; i++) {
            wf__req *q = reqs[i];
            int have = q->argc - q->nkeys;
            keys[WF__NFIXED + 2 * i] = q->argv[WF__NFIXED];
            keys[WF__NFIXED + 2 * i + 1] = q->argv[WF__NFIXED + 1];
            for (int j = 0; j < REC_ARGS; j++) {
                args[REC_ARGS * i + j] = j < have ? q->argv[q->nkeys + j] : "";
                arglen[REC_ARGS * i + j] = j < have ? q->argvlen[q->nkeys + j] : 0;
            }
        }
        b->n = n;
        memcpy(b->reqs, reqs, (size_t)n * sizeof *reqs);
        rc = wf__conn_script(&w->cmd, batch_reply, b, WF__SCRIPT_STEP, nkeys, keys, nargs, args,
                             arglen);
    }
    free(keys);
    free(args);
    free(arglen);
    if (rc != WF_OK) free(b);
    return rc;
}

/* Moves the requests (wf__req *) of `all` whose first key (a fixed key of their workflow) is that
 * of all[from] into `group`, in order, at most BATCH_MAX; returns how many. */
static int take_group(void **all, int m, int from, wf__req **group)
{
    const wf__req *first = all[from];
    const char *key = first->argv[0];
    int g = 0;
    for (int j = from; j < m && g < BATCH_MAX; j++) {
        wf__req *q = all[j];
        if (q && strcmp(q->argv[0], key) == 0) {
            group[g++] = q;
            all[j] = NULL;
        }
    }
    return g;
}

void wf__sbatch_send(wf_worker *w)
{
    wf__srec_state *s = &w->srec;
    int m;
    void **all = wf__turn_batch_take(&s->batch, &m); /* of wf__req * */
    wf__req *group[BATCH_MAX] = {0};
    for (int i = 0; i < m; i++) {
        if (!all[i]) continue;
        int g = take_group(all, m, i, group);
        if (!w->stop.closing && w->cmd.ready && send_one(w, group, g) == WF_OK) {
            s->calls++;
            s->records += g;
            continue;
        }
        /* Not sent (the connection went down during the turn, or out of memory): back to the
         * request list, held or failed there by wf__reqs_pump like any request. */
        for (int j = g - 1; j >= 0; j--) {
            group[j]->next = w->reqs_head;
            w->reqs_head = group[j];
            if (!w->reqs_tail) w->reqs_tail = group[j];
        }
    }
    free(all);
}
