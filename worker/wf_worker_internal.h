/* wf_worker_internal.h - what the files of libwf-worker share with each other, wf-worker and the
 * worker tests, but not with users. An umbrella: each concept has a header of its own, with its
 * design comment next to the structures it describes.
 *
 *   wf_worker_state.h  the worker (struct wf_worker), its workflows, defaults; the design overview
 *   wf_job.h           the job and its two state machines (exec, lease); the handler's wf_ctx
 *   wf_executor.h      the executor pool, requests from handlers to the loop, reply copies
 *   wf_turn_batch.h    a list gathered during one loop turn, flushed at its end (the batches)
 *   wf_conn.h          the async connections (block, cmd) and routing commands over them
 *   wf_loop.h          the loop's parts: claim, tick, schedules, flow limits, children, loop
 *   wf_steps.h         the durable step engine's entry points (its state: wf_step_engine.h)
 *   wf_greader.h       consumer group reads beside the queues (child runs' ends, webhooks)
 *   wf_registry.h      workflow definitions: the process-wide table, loading modules
 *   wf_log.h           log lines
 *   wf_process.h       recycling a worker process, the supervisor
 *   wf_setup.h         what must exist before the worker shows as registered (sent twice)
 *   wf_ops.h           operations: presence, metrics, health, webhooks
 */
#ifndef WF_WORKER_INTERNAL_H
#define WF_WORKER_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>

#include "wf/wf.h"
#include "wf_internal.h"

#include "wf_log.h"
#include "wf_registry.h"
#include "wf_job.h"
#include "wf_executor.h"
#include "wf_steps.h"
#include "wf_greader.h"
#include "wf_conn.h"
#include "wf_worker_state.h"
#include "wf_loop.h"
#include "wf_process.h"
#include "wf_setup.h"

/* ---- Operations: presence, metrics, health, webhooks (wf_ops.h) ---------------------------- */

#include "wf_ops.h"

#endif
