/* flaky.c - test workflow: the first attempt fails (retriable), the second returns "ok". */
#include "exec_log.h"

static int flaky(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    (void)input;
    wf_test_exec_log(ctx);
    if (wf_ctx_attempt(ctx) == 1)
        return wf_ctx_fail(ctx, WF_ERR_HANDLER, "flaky: attempt %d fails", wf_ctx_attempt(ctx));
    msgpack_pack_str(output, 2);
    msgpack_pack_str_body(output, "ok", 2);
    return WF_OK;
}

WF_WORKFLOW(flaky, .backoff_ms = 50);
