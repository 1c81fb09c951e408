/* setup.c - what must exist in Redis before this worker may show as registered, written once:
 * the consumer group of every queue lane of every workflow, of P:{W}:parents (child ends,
 * invoke.c) and, with webhooks on, of P:{W}:outbox (webhook.c); then the registration itself,
 * one HSET of P:workflows for all of them, so a client never sees this worker half registered.
 *
 * Two senders use it: wf_worker_run, synchronously at start, so that an error (a refused ACL, a
 * clobbered key) is returned to the caller; and the loop, asynchronously on every (re)connect of
 * its cmd connection (Redis may have restarted empty), the registration after a barrier
 * (wf__claim_setup, at the end). The group readers re-create a group on NOGROUP by themselves;
 * that is recovery, not set-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

int wf__setup_groups(wf_worker *w, wf__setup_send send, void *ctx)
{
    int hooks = w->ops && w->ops->webhook_url;
    for (int i = 0; i < w->ndefs; i++) {
        const wf__wdef *d = w->defs[i];
        for (int l = 0; l < WF__NLANES; l++) {
            const char *argv[] = {"XGROUP",  "CREATE", d->keys.k[wf__lane_key((wf__lane)l)],
                                  WF__GROUP, "0",      "MKSTREAM"};
            int rc = send(ctx, 6, argv, "creating a queue's consumer group");
            if (rc) return rc;
        }
        const char *parents[] = {"XGROUP",          "CREATE", d->aux[WF__AUX_PARENTS],
                                 WF__PARENTS_GROUP, "0",      "MKSTREAM"};
        int rc = send(ctx, 6, parents, "creating the child ends' consumer group");
        if (rc) return rc;
        if (hooks) {
            const char *outbox[] = {"XGROUP",          "CREATE", d->aux[WF__AUX_OUTBOX],
                                    WF__WEBHOOK_GROUP, "0",      "MKSTREAM"};
            rc = send(ctx, 6, outbox, "creating the webhook outbox's consumer group");
            if (rc) return rc;
        }
    }
    return 0;
}

int wf__setup_register(wf_worker *w, wf__setup_send send, void *ctx)
{
    if (w->ndefs == 0) return 0;
    char *reg = wf__key_global(w->url.prefix, "workflows");
    size_t argc = 2 + 2 * (size_t)w->ndefs;
    const char **argv = reg ? calloc(argc, sizeof *argv) : NULL;
    char(*json)[256] = argv ? calloc((size_t)w->ndefs, sizeof *json) : NULL;
    int rc = WF_ERR_NOMEM;
    if (json) {
        argv[0] = "HSET";
        argv[1] = reg;
        for (int i = 0; i < w->ndefs; i++) {
            wf__wdef_json(w->defs[i], json[i], sizeof json[i]);
            argv[2 + 2 * i] = w->defs[i]->name;
            argv[3 + 2 * i] = json[i];
        }
        rc = send(ctx, (int)argc, argv, "registering the workflows");
    }
    free(json);
    free(argv);
    free(reg);
    return rc;
}

/* ---- Sent by the loop on its cmd connection ------------------------------------------------ */

static void setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *r = reply;
    const char *what = privdata;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        wf__log(WF__LOG_ERROR, "%s failed: %s", what, r->str);
}

/* The commands above on the cmd connection; refusals are logged (the loop goes on, and the next
 * reconnect sends them again). */
static int async_send(void *ctx, int argc, const char **argv, const char *what)
{
    wf_worker *w = ctx;
    if (!wf__conn_usable(&w->cmd)) return WF_ERR_IO;
    return wf__conn_argv(&w->cmd, setup_reply, (void *)what, argc, argv, NULL) == REDIS_OK
               ? 0
               : WF_ERR_IO;
}

void wf__setup_groups_async(wf_worker *w)
{
    (void)wf__setup_groups(w, async_send, w);
}

static void register_workflows(wf_worker *w)
{
    if (wf__setup_register(w, async_send, w) == WF_ERR_NOMEM)
        wf__log(WF__LOG_ERROR, "out of memory registering the workflows; retried on reconnect");
}

/* Called on every (re)connect of cmd, after the other set-up commands of loop.c's on_ready:
 * Redis may have restarted empty. The workflows are registered once everything sent before has
 * been answered, consumer groups included: in a cluster those go to other nodes than the
 * registry and answer in any order, and a worker that shows as registered must be ready. */
void wf__claim_setup(wf_worker *w)
{
    if (!wf__conn_usable(&w->cmd)) return;
    char *schema = wf__key_global(w->url.prefix, "schema");
    if (schema)
        wf__conn_command(&w->cmd, setup_reply, "schema check", "SET %s %d NX", schema,
                         WF__SCHEMA_VERSION);
    free(schema);
    wf__setup_groups_async(w);
    if (wf__conn_barrier(&w->cmd, register_workflows) != REDIS_OK) register_workflows(w);
}
