/* served.c - whether a live worker process serves a workflow, read from the entries the workers
 * keep in P:workers (each lists its workflows; one not heard from for WF_WORKER_STALE_MS is not
 * live). Runs of a workflow that no live worker serves wait, silently, until one starts: `wf
 * stats`, `wf run --wait`, `wf wait` and `wf status --follow` say so on stderr. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int wf__cli_live_workers(wf__cli *cli, const char *const *workflows, size_t n, long long *counts)
{
    for (size_t i = 0; i < n; i++) counts[i] = 0;
    wf_worker_info *list = NULL;
    size_t nw = 0;
    wf_error err = {0};
    if (wf_list_workers(cli->client, 0, &list, &nw, &err) != WF_OK) return -1;
    for (size_t k = 0; k < nw; k++)
        for (size_t j = 0; j < list[k].nworkflows; j++)
            for (size_t i = 0; i < n; i++)
                if (strcmp(list[k].workflows[j], workflows[i]) == 0) counts[i]++;
    wf_workers_free(list, nw);
    return 0;
}

void wf__cli_warn_unserved(wf__cli *cli, const char *workflow, long long waiting)
{
    long long live = 0;
    if (wf__cli_live_workers(cli, &workflow, 1, &live) != 0 || live > 0) return;
    if (waiting > 0)
        fprintf(stderr,
                "wf: warning: no live worker serves '%s': its %lld waiting run%s will not start "
                "until a wf-worker with it runs (`wf workers` lists the live ones)\n",
                workflow, waiting, waiting == 1 ? "" : "s");
    else
        fprintf(stderr,
                "wf: warning: no live worker serves '%s': the run waits until a wf-worker with it "
                "runs (`wf workers` lists the live ones)\n",
                workflow);
}
