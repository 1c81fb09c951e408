/* wf_turn_batch.h - a list of items collected during one turn of the worker's loop and flushed at
 * the end of that turn (turn_batch.c): completions (batch_end.c) and step records (batch_step.c)
 * each gather one, so that what one turn produced goes to Redis in one script call per workflow.
 *
 * Nothing waits for a batch to fill: the first item to join makes an event active, which the loop
 * runs (the flush) after the callbacks already due, at the end of the turn in which the batch
 * began, so a lone item is not delayed. What the flush sends, and how, is the owner's: it takes the
 * items and the list starts again empty. Loop thread only.
 */
#ifndef WF_TURN_BATCH_H
#define WF_TURN_BATCH_H

#include <event2/event.h>

/* Sends what a batch gathered, typically after taking it with wf__turn_batch_take. */
typedef void (*wf__turn_flush_fn)(void *arg);

typedef struct wf__turn_batch {
    void **items;     /* waiting for the end of the turn, in order of arrival; the array
                         is owned, the items are the owner's */
    int n, cap;       /* items held, room for */
    struct event *ev; /* made active by the first item: runs `flush` at the end of the turn */
    wf__turn_flush_fn flush; /* called with `arg` by ev */
    void *arg;
} wf__turn_batch;

/* Makes `b` an empty batch of `base` that calls flush(arg) at the end of a turn in which items
 * joined. Returns WF_OK or WF_ERR_NOMEM. */
int wf__turn_batch_init(wf__turn_batch *b, struct event_base *base, wf__turn_flush_fn flush,
                        void *arg);
/* Appends `item` (borrowed: the batch keeps the pointer, never frees it); the first of a turn
 * schedules the flush. Returns WF_OK, WF_ERR_NOMEM (not added) or WF_ERR_INVALID (`b` never
 * initialised: not added). */
int wf__turn_batch_add(wf__turn_batch *b, void *item);
/* Takes every item out of `b`, which is empty afterwards; sets *n to their number. Returns the
 * array (NULL when empty), which the caller frees with free(). */
void **wf__turn_batch_take(wf__turn_batch *b, int *n);
/* Frees the event and the array, not the items; `b` is then as if zeroed. No-op on a zeroed
 * batch. */
void wf__turn_batch_free(wf__turn_batch *b);

#endif
