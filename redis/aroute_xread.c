/* aroute_xread.c - a cluster XREADGROUP over streams of several slots (aroute.h): the worker's
 * reads of child run ends and webhook outboxes span many workflows' streams, which cannot be
 * read by one command in a cluster. It is split into one command per slot and the replies merged
 * into one array before the caller sees it. The reads do not block, so the merged reply is as
 * quick as the slowest node. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aroute_impl.h"

struct wf__ar_merge {
    redisCallbackFn *fn;
    void *priv;
    int pending;
    int lost;
    redisReply *err;   /* the first error reply (copy) */
    redisReply *parts; /* array reply under construction (copies) */
};

void wf__ar_merge_part(wf__ar_merge *m, redisAsyncContext *ac, redisReply *r)
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

static size_t arglen(const char *const *argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

/* Sends the part of slot slot[i] (its streams and their ids, in order). REDIS_OK / REDIS_ERR. */
static int send_part(wf__ar *ar, wf__ar_merge *m, int argc, const char **argv, const size_t *lens,
                     int at, int ns, const int *slot, int i)
{
    const char **sub = malloc(sizeof *sub * (size_t)argc);
    size_t *sublen = malloc(sizeof *sublen * (size_t)argc);
    int rc = REDIS_ERR;
    if (sub && sublen) {
        int k = 0;
        for (int a = 0; a <= at; a++) {
            sub[k] = argv[a];
            sublen[k++] = arglen(argv, lens, a);
        }
        for (int half = 0; half < 2; half++) /* the streams, then their ids */
            for (int j = i; j < ns; j++)
                if (slot[j] == slot[i]) {
                    int a = at + 1 + half * ns + j;
                    sub[k] = argv[a];
                    sublen[k++] = arglen(argv, lens, a);
                }
        rc = wf__ar_send_argv(ar, m->fn, m->priv, k, sub, sublen, -1, 0, m);
    }
    free(sub);
    free(sublen);
    return rc;
}

/* Sends each distinct slot's part; the parts already sent still answer when one cannot be (the
 * merged reply says the connection was lost); nothing sent: REDIS_ERR instead. */
static int send_parts(wf__ar *ar, wf__ar_merge *m, int argc, const char **argv, const size_t *lens,
                      int at, int ns, const int *slot, int distinct)
{
    int sent = 0;
    for (int i = 0; i < ns; i++) {
        int first = 1;
        for (int j = 0; j < i; j++) first &= slot[j] != slot[i];
        if (!first) continue;
        if (send_part(ar, m, argc, argv, lens, at, ns, slot, i) != REDIS_OK) {
            m->lost = 1;
            m->pending -= distinct - sent;
            return sent == 0 ? REDIS_ERR : REDIS_OK;
        }
        sent++;
    }
    return REDIS_OK;
}

int wf__ar_split_xread(wf__ar *ar, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                       const size_t *lens)
{
    int at = -1;
    for (int i = 1; i < argc; i++)
        if (arglen(argv, lens, i) == 7 && strncasecmp(argv[i], "STREAMS", 7) == 0) at = i;
    int ns = at < 0 ? 0 : (argc - at - 1) / 2;
    if (ns < 2) return 1;
    int *slot = malloc(sizeof *slot * (size_t)ns);
    wf__ar_merge *m = calloc(1, sizeof *m);
    if (m) m->parts = calloc(1, sizeof *m->parts);
    int rc = REDIS_ERR, distinct = 0;
    if (!slot || !m || !m->parts) goto out;
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
    rc = send_parts(ar, m, argc, argv, lens, at, ns, slot, distinct);
    if (rc == REDIS_OK) m = NULL; /* owned by the parts in flight */
out:
    if (m) {
        wf__reply_free(m->parts);
        free(m);
    }
    free(slot);
    return rc;
}
