/* reply.c - deep copies of hiredis replies. An async reply is valid only inside its callback;
 * a handler thread waiting in the worker's wf__ctx_call() needs one that outlives it, and the
 * async router (aroute_xread.c) merges the replies of a split read into one. */
#include <stdlib.h>
#include <string.h>

#include "wf_redis.h"

redisReply *wf__reply_copy(const redisReply *r)
{
    if (!r) return NULL;
    redisReply *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->type = r->type;
    c->integer = r->integer;
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        c->len = r->len;
        c->str = malloc(r->len + 1);
        if (!c->str) goto oom;
        if (r->len) memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        break;
    case REDIS_REPLY_ARRAY:
        if (r->elements == 0) break;
        c->element = calloc(r->elements, sizeof *c->element);
        if (!c->element) goto oom;
        c->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++) {
            c->element[i] = wf__reply_copy(r->element[i]);
            if (r->element[i] && !c->element[i]) goto oom;
        }
        break;
    default:
        break;
    }
    return c;
oom:
    wf__reply_free(c);
    return NULL;
}

void wf__reply_free(redisReply *r)
{
    if (!r) return;
    if (r->element) {
        for (size_t i = 0; i < r->elements; i++) wf__reply_free(r->element[i]);
        free(r->element);
    }
    free(r->str);
    free(r);
}
