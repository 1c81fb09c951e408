/* priority.c - run priorities: the names of wf_priority and the queue lane each one maps to.
 *
 * A workflow has one ready stream per priority ("lanes": P:{W}:queue:high, P:{W}:queue,
 * P:{W}:queue:low, fixed keys of every script). The run hash keeps a non-normal priority in its
 * field `pri`, so that every script that queues the run again (retry, wake, reclaim, resume...)
 * puts it on its own lane; workers read the lanes high first (worker/claim.c).
 */
#include <string.h>

#include "wf_core.h"

const char *wf_priority_name(int priority)
{
    switch (priority) {
    case WF_PRIORITY_LOW:
        return "low";
    case WF_PRIORITY_NORMAL:
        return "normal";
    case WF_PRIORITY_HIGH:
        return "high";
    default:
        return NULL;
    }
}

int wf_priority_from_name(const char *name, wf_priority *priority, wf_error *err)
{
    static const wf_priority all[] = {WF_PRIORITY_HIGH, WF_PRIORITY_NORMAL, WF_PRIORITY_LOW};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, wf_priority_name(all[i])) == 0) {
            if (priority) *priority = all[i];
            return WF_OK;
        }
    return wf_error_set(err, WF_ERR_INVALID, "unknown priority '%.32s': use high, normal or low",
                        name ? name : "(null)");
}

int wf__priority_check(int priority, wf_error *err)
{
    if (wf__lane_of_priority(priority) >= 0) return WF_OK;
    return wf_error_set(err, WF_ERR_INVALID,
                        "priority %d is not a wf_priority: use WF_PRIORITY_HIGH (1), "
                        "WF_PRIORITY_NORMAL (0) or WF_PRIORITY_LOW (-1)",
                        priority);
}

int wf__lane_of_priority(int priority)
{
    switch (priority) {
    case WF_PRIORITY_HIGH:
        return WF__LANE_HIGH;
    case WF_PRIORITY_NORMAL:
        return WF__LANE_NORMAL;
    case WF_PRIORITY_LOW:
        return WF__LANE_LOW;
    default:
        return -1;
    }
}

int wf__lane_key(wf__lane lane)
{
    static const int key[WF__NLANES] = {WF__K_QUEUE_HIGH, WF__K_QUEUE, WF__K_QUEUE_LOW};
    return lane >= 0 && lane < WF__NLANES ? key[lane] : WF__K_QUEUE;
}

const char *wf__lane_arg(wf__lane lane)
{
    static const char *const arg[WF__NLANES] = {"high", "", "low"};
    return lane >= 0 && lane < WF__NLANES ? arg[lane] : "";
}

wf_priority wf_status_priority(const wf_status *status)
{
    for (size_t i = 0; status && i < status->raw_len; i++)
        if (strcmp(status->raw[i].name, "pri") == 0) {
            if (strcmp(status->raw[i].value, "high") == 0) return WF_PRIORITY_HIGH;
            if (strcmp(status->raw[i].value, "low") == 0) return WF_PRIORITY_LOW;
        }
    return WF_PRIORITY_NORMAL;
}
