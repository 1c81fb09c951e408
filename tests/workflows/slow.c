/* slow.c - test workflow: sleeps for its input (milliseconds, default 1000) in 10 ms steps,
 * stopping early when the run is cancelled; returns the string "slept". */
#include <string.h>

#include "exec_log.h"

static int slow(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    wf_test_exec_log(ctx);
    int ms = input->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int)input->via.u64 : 1000;
    for (int t = 0; t < ms; t += 10) {
        if (wf_ctx_cancelled(ctx)) return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "cancelled");
        wf_test_nap_ms(10);
    }
    msgpack_pack_str(output, 5);
    msgpack_pack_str_body(output, "slept", 5);
    return WF_OK;
}

WF_WORKFLOW(slow);
