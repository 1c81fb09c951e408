/* sender.c - test workflow: records the event "test-event" with its input as payload through
 * wf_ctx_send_event (a Redis call made from the handler's thread), returns "sent". */
#include "exec_log.h"

static int sender(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    wf_test_exec_log(ctx);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *input);
    wf_error err = {0};
    int rc = wf_ctx_send_event(ctx, "test-event", sb.data, sb.size, &err);
    msgpack_sbuffer_destroy(&sb);
    if (rc != WF_OK) return wf_ctx_fail(ctx, rc, "send_event: %s", err.message);
    msgpack_pack_str(output, 4);
    msgpack_pack_str_body(output, "sent", 4);
    return WF_OK;
}

WF_WORKFLOW(sender);
