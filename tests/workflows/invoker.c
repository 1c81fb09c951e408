/* invoker.c - test workflow for child workflows (wf_step_invoke), driven by its input map:
 *   workflow    the child's workflow (default "stepper")
 *   input       the child's input (any msgpack value; default none)
 *   timeout_ms  the invoke's timeout (default 0: none)
 *   keep        1: stopping this run leaves the child running
 *   fail_first  1: attempt 1 fails (retryable) after the child's result came back, so attempt 2
 *               replays the invoke
 *   sleep_ms    a durable sleep "after" once the child's result came back (another replay)
 * Output: {"child": the child's output} when it completed, {"error": the error text, "code":
 * the error name} when it failed, was cancelled, terminated or the wait timed out.
 * Every execution appends "RUNID ATTEMPT" to $WF_TEST_EXEC_LOG (exec_log.h).
 */
#include <string.h>

#include "exec_log.h"

static int key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static int invoker(wf_ctx *ctx, const msgpack_object *in, msgpack_packer *out)
{
    wf_test_exec_log(ctx);
    char workflow[129] = "stepper";
    const msgpack_object *child_in = NULL;
    wf_invoke_options o = {0};
    int fail_first = 0;
    int64_t sleep_ms = 0;
    for (uint32_t i = 0; in->type == MSGPACK_OBJECT_MAP && i < in->via.map.size; i++) {
        const msgpack_object *k = &in->via.map.ptr[i].key, *v = &in->via.map.ptr[i].val;
        int64_t num = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : 0;
        if (key_is(k, "workflow") && v->type == MSGPACK_OBJECT_STR && v->via.str.size < 129) {
            memcpy(workflow, v->via.str.ptr, v->via.str.size);
            workflow[v->via.str.size] = '\0';
        }
        if (key_is(k, "input")) child_in = v;
        if (key_is(k, "timeout_ms")) o.timeout_ms = num;
        if (key_is(k, "keep")) o.keep_running = (int)num;
        if (key_is(k, "fail_first")) fail_first = (int)num;
        if (key_is(k, "sleep_ms")) sleep_ms = num;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (child_in) msgpack_pack_object(&pk, *child_in);
    const msgpack_object *result = NULL;
    int rc = wf_step_invoke_ex(ctx, "child", workflow, sb.data, sb.size, &o, &result);
    msgpack_sbuffer_destroy(&sb);
    if (rc == WF_ERR_CHILD || rc == WF_ERR_TIMEOUT) {
        const char *text = wf_ctx_error(ctx), *code = wf_errname(rc);
        msgpack_pack_map(out, 2);
        msgpack_pack_str_with_body(out, "error", 5);
        msgpack_pack_str_with_body(out, text, strlen(text));
        msgpack_pack_str_with_body(out, "code", 4);
        msgpack_pack_str_with_body(out, code, strlen(code));
        return WF_OK;
    }
    if (rc) return rc;
    if (fail_first && wf_ctx_attempt(ctx) == 1) {
        wf_ctx_retry_after(ctx, 50);
        return wf_ctx_fail(ctx, WF_ERR_HANDLER, "first attempt fails on purpose");
    }
    if (sleep_ms && (rc = wf_step_sleep(ctx, "after", sleep_ms))) return rc;
    msgpack_pack_map(out, 1);
    msgpack_pack_str_with_body(out, "child", 5);
    return msgpack_pack_object(out, *result) == 0 ? WF_OK : WF_ERR_NOMEM;
}

WF_WORKFLOW(invoker, .max_attempts = 3, .backoff_ms = 50);
