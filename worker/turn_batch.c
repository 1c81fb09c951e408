/* turn_batch.c - a list gathered during one turn of the worker's loop and flushed at its end
 * (wf_turn_batch.h): a growable array and an event made active by its first item.
 */
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

static void turn_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf__turn_batch *b = arg;
    b->flush(b->arg);
}

int wf__turn_batch_init(wf__turn_batch *b, struct event_base *base, wf__turn_flush_fn flush,
                        void *arg)
{
    memset(b, 0, sizeof *b);
    b->flush = flush;
    b->arg = arg;
    b->ev = event_new(base, -1, 0, turn_end, b);
    return b->ev ? WF_OK : WF_ERR_NOMEM;
}

int wf__turn_batch_add(wf__turn_batch *b, void *item)
{
    if (!b->ev) return WF_ERR_INVALID;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        void **a = realloc(b->items, (size_t)cap * sizeof *a);
        if (!a) return WF_ERR_NOMEM;
        b->items = a;
        b->cap = cap;
    }
    b->items[b->n++] = item;
    if (b->n == 1) event_active(b->ev, EV_TIMEOUT, 0);
    return WF_OK;
}

void **wf__turn_batch_take(wf__turn_batch *b, int *n)
{
    void **items = b->items;
    *n = b->n;
    b->items = NULL;
    b->n = b->cap = 0;
    return items;
}

void wf__turn_batch_free(wf__turn_batch *b)
{
    if (b->ev) event_free(b->ev);
    free(b->items);
    memset(b, 0, sizeof *b);
}
