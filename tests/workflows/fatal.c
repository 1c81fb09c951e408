/* fatal.c - test workflow: fails at once without retry (WF_ERR_FATAL). */
#include "exec_log.h"

static int fatal(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    (void)input;
    (void)output;
    wf_test_exec_log(ctx);
    return wf_ctx_fail(ctx, WF_ERR_FATAL, "card declined (attempt %d)", wf_ctx_attempt(ctx));
}

WF_WORKFLOW(fatal, .max_attempts = 5, .backoff_ms = 10);
