/* http_call.c - test workflow for wf_step_http: POSTs "ping" to the URL given as input (a
 * string), retrying a 5xx after 50 ms, and returns [status, body, content type]. */
#include <string.h>

#include "exec_log.h"

static int http_call(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    wf_test_exec_log(ctx);
    char url[256] = "";
    if (input->type == MSGPACK_OBJECT_STR && input->via.str.size < sizeof url)
        memcpy(url, input->via.str.ptr, input->via.str.size);
    const char *headers[] = {"Content-Type: text/plain", "X-Test: 1", NULL};
    wf_step_options retry = {.max_attempts = 3, .base_delay_ms = 50};
    wf_http_request req = {.method = "POST",
                           .url = url,
                           .headers = headers,
                           .body = "ping",
                           .body_len = 4,
                           .timeout_ms = 5000,
                           .retry = &retry};
    wf_http_response resp;
    int rc = wf_step_http(ctx, "call", &req, &resp);
    if (rc) return rc;
    msgpack_pack_array(output, 3);
    msgpack_pack_int(output, resp.status);
    msgpack_pack_str_with_body(output, resp.body, resp.body_len);
    msgpack_pack_str_with_body(output, resp.content_type, strlen(resp.content_type));
    return WF_OK;
}

WF_WORKFLOW(http_call);
