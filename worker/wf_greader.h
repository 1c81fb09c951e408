/* wf_greader.h - consumer group reads beside the queues (group_reader.c): the streams of child
 * runs' ends (invoke.c) and of webhook outboxes (webhook.c), read on the cmd connection, with
 * XAUTOCLAIM takeover of what a dead worker left pending.
 */
#ifndef WF_GREADER_H
#define WF_GREADER_H

#include <stdint.h>

#include <hiredis/hiredis.h>

#include "wf/wf.h"

/* ---- Consumer group reads beside the queues (group_reader.c) -------------------------------- */

/* Reads streams through a consumer group on the cmd connection: the child runs' ends (invoke.c)
 * and the webhook outboxes (webhook.c). `entries` is one stream's array of [id, fields] entries
 * (borrowed for the call), `stream` its index in the streams given to wf__greader_new, and
 * `takeover` 1 when they were taken over from another consumer (XAUTOCLAIM), 0 when read. */
typedef struct wf__greader wf__greader;
#define WF__PARENTS_GROUP "parents"  /* on P:{W}:parents (invoke.c) */
#define WF__WEBHOOK_GROUP "webhooks" /* on P:{W}:outbox (webhook.c) */
typedef void (*wf__greader_fn)(void *ud, int stream, const redisReply *entries, int takeover);
/* A reader of group `group` (copied) over `n` streams (the names are borrowed: they must outlive
 * the reader); `what` (copied) names them in log lines. Reads at most every `read_every_ms`
 * unless the last read brought entries (and less often while it finds none: wf__greader_read). NULL
 * when out of memory. Free it with wf__greader_free only once no reply can reach it any more (after
 * the connections are freed). */
wf__greader *wf__greader_new(wf_worker *w, const char *group, const char *what,
                             const char *const *streams, int n, int64_t read_every_ms,
                             wf__greader_fn on_entries, void *ud);
void wf__greader_free(wf__greader *g);
/* XGROUP CREATE ... MKSTREAM on every stream (an existing group is left alone). */
void wf__greader_ensure_groups(wf__greader *g);
/* Read at the next call of wf__greader_read rather than after the idle interval (entries may
 * have arrived: this worker just wrote some). NULL is a no-op. */
void wf__greader_nudge(wf__greader *g);
/* XREADGROUP of up to `count` new entries per stream, when none is in flight and one is due:
 * every read_every_ms while reads bring entries, backing off to 8 times that while they do not. */
void wf__greader_read(wf__greader *g, int64_t now, int count);
/* XAUTOCLAIM of up to `count` entries pending longer than `idle_ms`, on each stream whose last
 * takeover is answered and was `every_ms` or more ago. */
void wf__greader_takeover(wf__greader *g, int64_t now, int64_t idle_ms, int count,
                          int64_t every_ms);

#endif
