/* keys.c - every Redis key name wf uses is built here and nowhere else.
 *
 * Keys of one workflow carry the workflow's name as their hash tag ("P:{W}:..."), so every Lua
 * call, which touches keys of one workflow only, runs on one Redis Cluster slot. Names reaching
 * this file were validated (wf__name_valid / wf__runid_parse), so they cannot hold braces.
 */
#include <stdlib.h>
#include <string.h>

#include "wf_core.h"

/* Joins parts into a malloc'd key; NULL when out of memory. */
static char *join(const char *const *parts, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(parts[i]);
    char *k = malloc(len), *p = k;
    if (!k) return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);
        memcpy(p, parts[i], l);
        p += l;
    }
    *p = '\0';
    return k;
}

/* "P:{W}:rest" */
static char *tagged(const char *prefix, const char *workflow, const char *rest1, const char *rest2)
{
    const char *parts[] = {prefix, ":{", workflow, "}:", rest1, rest2};
    return join(parts, 6);
}

int wf__wfkeys_init(wf__wfkeys *keys, const char *prefix, const char *workflow)
{
    static const char *const suffix[WF__NFIXED] = {
        "queue",           "delayed",       "leases",          "dead",
        "state:queued",    "state:running", "state:paused",    "state:waiting",
        "state:completed", "state:failed",  "state:cancelled", "state:terminated",
        "queue:high",      "queue:low"};
    memset(keys, 0, sizeof *keys);
    for (int i = 0; i < WF__NFIXED; i++) {
        keys->k[i] = tagged(prefix, workflow, suffix[i], "");
        if (!keys->k[i]) {
            wf__wfkeys_free(keys);
            return WF_ERR_NOMEM;
        }
    }
    return WF_OK;
}

void wf__wfkeys_free(wf__wfkeys *keys)
{
    if (!keys) return;
    for (int i = 0; i < WF__NFIXED; i++) free(keys->k[i]);
    memset(keys, 0, sizeof *keys);
}

char *wf__key_run(const char *prefix, const char *workflow, const char *id)
{
    const char *parts[] = {prefix, ":{", workflow, "}:run:", id};
    return join(parts, 5);
}

char *wf__key_steps(const char *prefix, const char *workflow, const char *id)
{
    const char *parts[] = {prefix, ":{", workflow, "}:run:", id, ":steps"};
    return join(parts, 6);
}

char *wf__key_wf(const char *prefix, const char *workflow, const char *suffix)
{
    return tagged(prefix, workflow, suffix, "");
}

char *wf__key_global(const char *prefix, const char *suffix)
{
    const char *parts[] = {prefix, ":", suffix};
    return join(parts, 3);
}

char *wf__key_event(const char *prefix, const char *event, const char *what)
{
    const char *parts[] = {prefix, ":{ev:", event, "}:", what};
    return join(parts, 5);
}
