/* hang.c - chaos workflow: a handler that never returns and ignores wf_ctx_cancelled(). Its 500 ms
 * timeout terminates the run; the thread stays stuck, so the worker process must be recycled
 * (worker/recycle.c) to get its slot back. Only ever loaded by the chaos suite. */
#include "../../workflows/exec_log.h"

static int hang(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    (void)input;
    (void)output;
    wf_test_exec_log(ctx);
    for (;;) wf_test_nap_ms(50);
    return WF_OK;
}

WF_WORKFLOW(hang, .timeout_ms = 500, .max_attempts = 1);
