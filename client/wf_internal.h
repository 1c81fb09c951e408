/* wf_internal.h - what libwf's client layer shares with libwf-worker, the CLI and the tests, but
 * not with users.
 *
 * The protocol (key names, run ids, records, scripts) is core/wf_core.h and the connections are
 * redis/wf_redis.h; this header adds the client's internals the worker uses (sending events, the
 * client's connection) and includes both, so one include gives the worker and the CLI everything
 * below them.
 */
#ifndef WF_INTERNAL_H
#define WF_INTERNAL_H

#include "wf_core.h"
#include "wf_redis.h"

/* ---- Events --------------------------------------------------------------------------------- */

/* How wf__event_send reaches Redis: `call` runs a script and sets *reply (freed with
 * `free_reply`) or returns an error. The client passes its sync connection; the worker passes
 * its loop's connection (wf__ctx_call). */
typedef struct wf__transport {
    int (*call)(void *ctx, wf__script s, int nkeys, const char *const *keys, int nargs,
                const char *const *args, const size_t *arglen, redisReply **reply, wf_error *err);
    void (*free_reply)(redisReply *reply);
    void *ctx;
} wf__transport;

/* sendEvent for both sides: checks name, key and payload (at most max_payload bytes), records the
 * event (event_send.lua) and delivers it to each waiting run (deliver.lua). Returns WF_OK or the
 * first error. */
int wf__event_send(const wf__transport *t, const char *prefix, size_t max_payload, const char *name,
                   const char *key, const void *payload, size_t len, wf_error *err);

/* ---- The client's internals, for the worker ----------------------------------------------- */

wf__rc *wf__client_redis(wf_client *client);
const wf__url *wf__client_url(const wf_client *client);
/* Reconnects a client whose connection failed (one try). Returns WF_OK or an error. */
int wf__client_reconnect(wf_client *client, wf_error *err);

#endif
