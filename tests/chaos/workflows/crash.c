/* crash.c - chaos workflow: a handler that kills its worker process with SIGSEGV on every attempt.
 * Each crash costs the run a reclaim; after max_reclaims the run fails with a reason that says
 * it may be crashing its worker. */
#include <signal.h>

#include "../../workflows/exec_log.h"

static int crash(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    (void)input;
    (void)output;
    wf_test_exec_log(ctx);
    raise(SIGSEGV);
    return WF_OK;
}

WF_WORKFLOW(crash);
