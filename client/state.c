/* state.c - run state names as stored in the run hash's `state` field. */
#include <string.h>

#include "wf/client.h"

static const char *const names[] = {"unknown",   "queued", "running",   "paused",    "waiting",
                                    "completed", "failed", "cancelled", "terminated"};

const char *wf_state_name(wf_state state)
{
    if ((int)state < 0 || (size_t)state >= sizeof names / sizeof names[0]) return "unknown";
    return names[state];
}

wf_state wf_state_from_name(const char *name)
{
    if (!name) return WF_STATE_UNKNOWN;
    for (size_t i = 1; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0) return (wf_state)i;
    return WF_STATE_UNKNOWN;
}

int wf_state_is_final(wf_state state)
{
    return state == WF_STATE_COMPLETED || state == WF_STATE_FAILED || state == WF_STATE_CANCELLED ||
           state == WF_STATE_TERMINATED;
}
