/* run_view.h - a run in detail, for `wf status`, `wf steps` and the dashboard's run page: the
 * status object of status_json.h plus its steps, input, current step and a timeline, as JSON; and
 * the same for people, as text.
 *
 *   {...the status object..., "step": "..." | null, "pausedFrom": "..." | null, "reclaims": N,
 *    "input": <JSON> | null, "steps": [STEP...], "timeline": [{"at": ms, "event": "...",
 *    "detail": "..." | null}...]}
 *
 * A STEP is {"name", "kind", "status", "attempts", "startedAt", "finishedAt", "durationMs",
 * "until", "error", "event", "eventKey", "result"}; times are ms since the epoch or null, and
 * "result" is the step's msgpack result converted to JSON (null when none).
 */
#ifndef WF_CLI_RUN_VIEW_H
#define WF_CLI_RUN_VIEW_H

#include <stdio.h>

#include <jansson.h>

#include "wf/wf.h"

/* A field of the run hash as stored (borrowed from `st`), or NULL when the run has none. */
const char *wf__cli_status_field(const wf_status *st, const char *name, size_t *len);

/* msgpack bytes as a JSON value: null for none or for bytes that do not convert. New reference. */
json_t *wf__cli_msgpack_json(const char *data, size_t len);

/* The STEP array above. New reference, NULL when out of memory. */
json_t *wf__cli_steps_json(const wf_step_info *steps, size_t n);

/* The detailed run object above. New reference, NULL when out of memory. */
json_t *wf__cli_run_detail_json(const char *id, const char *workflow, const wf_status *st,
                                const wf_step_info *steps, size_t n);

/* Prints the steps as a table (NAME KIND STATUS ATTEMPTS STARTED DURATION UNTIL ERROR), or
 * "no steps recorded"; with `color`, statuses in colour (wf__cli_paint()). */
void wf__cli_print_steps_table(FILE *out, const wf_step_info *steps, size_t n, int color);

/* Prints the run for people: one "Label  value" line per fact, then the steps table; with
 * `color`, the state and step statuses in colour. */
void wf__cli_print_run_text(FILE *out, const char *id, const char *workflow, const wf_status *st,
                            const wf_step_info *steps, size_t n, int color);

/* Reads run `id`'s status and steps. On WF_OK the caller frees *run with wf_run_free(), clears
 * *st with wf_status_clear() and frees the steps with wf_steps_free(); otherwise nothing is left
 * to free and `err` says why. */
int wf__cli_fetch_detail(wf_client *client, const char *id, wf_run **run, wf_status *st,
                         wf_step_info **steps, size_t *n, wf_error *err);

#endif
