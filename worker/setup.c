/* setup.c - what must exist in Redis before this worker may show as registered, written once:
 * the consumer group of every queue lane of every workflow, of P:{W}:parents (child ends,
 * invoke.c) and, with webhooks on, of P:{W}:outbox (webhook.c); then the registration itself,
 * one HSET of P:workflows for all of them, so a client never sees this worker half registered.
 *
 * Two senders use it: wf_worker_run, synchronously at start, so that an error (a refused ACL, a
 * clobbered key) is returned to the caller; and the loop, asynchronously on every (re)connect of
 * its cmd connection (Redis may have restarted empty), the registration after a barrier
 * (claim.c). The group readers re-create a group on NOGROUP by themselves; that is recovery, not
 * set-up.
 */
#include <stdio.h>
#include <stdlib.h>

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
