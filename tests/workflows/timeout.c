/* timeout.c - test workflow with a 200 ms timeout that runs past it (until cancelled, at most
 * 10 s), so the worker terminates the run. */
#include "exec_log.h"

static int overrun(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    (void)input;
    wf_test_exec_log(ctx);
    for (int t = 0; t < 10000 && !wf_ctx_cancelled(ctx); t += 10) wf_test_nap_ms(10);
    msgpack_pack_str(output, 8);
    msgpack_pack_str_body(output, "too late", 8);
    return WF_OK;
}

WF_WORKFLOW(overrun, .timeout_ms = 200);
