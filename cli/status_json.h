/* status_json.h - a run's status as JSON: the object `wf status` prints and the drafts-service
 * example answers with. Compiled into both the `wf` binary and the example (not public API):
 *
 *   {"id": "publish-draft:01J...", "workflow": "publish-draft", "state": "completed",
 *    "attempt": 1, "output": {...} | null, "error": "..." | null, "createdAt": ms,
 *    "updatedAt": ms, "startedAt": ms | null, "finishedAt": ms | null,
 *    "waitReason": "..." | null, "wakeAt": ms | null, "worker": "..." | null}
 *
 * Timestamps are Redis time in ms since the epoch; null when not set. `output` is the handler's
 * msgpack result converted to JSON (null when there is none or it cannot be converted).
 */
#ifndef WF_CLI_STATUS_JSON_H
#define WF_CLI_STATUS_JSON_H

#include <jansson.h>

#include "wf/wf.h"

/* The status object above for run `id` of `workflow`. Returns a new reference (caller releases
 * with json_decref()), or NULL when out of memory. */
json_t *wf__cli_status_json(const char *id, const char *workflow, const wf_status *status);

/* {"runId": ID, "status": <the status object>}: what starting a run answers. Same ownership. */
json_t *wf__cli_run_json(const wf_run *run, const wf_status *status);

/* A timestamp in ms as a JSON number, or null when it was never set (0). New reference. */
json_t *wf__cli_time_json(int64_t ms);

/* A string as JSON, or null for NULL; bytes that are not UTF-8 are shown as '?'. New reference,
 * or NULL when out of memory. */
json_t *wf__cli_string_json(const char *s);

#endif
