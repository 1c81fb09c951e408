/* wf/wf.h - durable workflow runs for C services, on Redis. The one header users include.
 *
 *   client.h    connect, start runs (runWorkflow / deferWorkflow), reattach, status, stop
 *   payload.h   readValidatedPayload, msgpack <-> JSON
 *   workflow.h  defineWorkflow: handlers, options, the execution context
 *   worker.h    the worker pool that executes runs
 *   step.h      durable steps: checkpoints, sleeps, event waits
 */
#ifndef WF_WF_H
#define WF_WF_H

#define WF_VERSION_MAJOR 0
#define WF_VERSION_MINOR 1
#define WF_VERSION_PATCH 0
#define WF_VERSION       "0.1.0"

#include "error.h"
#include "client.h"
#include "payload.h"
#include "workflow.h"
#include "worker.h"
#include "step.h"

#endif
