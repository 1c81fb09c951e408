/* echo.c - test workflow: returns its input unchanged. */
#include "exec_log.h"

static int echo(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    wf_test_exec_log(ctx);
    return msgpack_pack_object(output, *input) == 0 ? WF_OK : WF_ERR_NOMEM;
}

WF_WORKFLOW(echo);
