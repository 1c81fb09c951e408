/* slow.c - test workflow: sleeps for its input (milliseconds, default 1000) in 10 ms steps,
 * stopping early when the run is cancelled; returns the string "slept". The input may also be a
 * map {"ms": N, "fail_first": true}: sleep N ms, and fail the first attempt (retriable, before
 * sleeping), so the run is retried after the default backoff. */
#include <string.h>

#include "exec_log.h"

static int key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static int slow(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    wf_test_exec_log(ctx);
    int ms = input->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int)input->via.u64 : 1000;
    int fail_first = 0;
    if (input->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < input->via.map.size; i++) {
            const msgpack_object *k = &input->via.map.ptr[i].key, *v = &input->via.map.ptr[i].val;
            if (key_is(k, "ms") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) ms = (int)v->via.u64;
            if (key_is(k, "fail_first") && v->type == MSGPACK_OBJECT_BOOLEAN)
                fail_first = v->via.boolean;
        }
    if (fail_first && wf_ctx_attempt(ctx) == 1)
        return wf_ctx_fail(ctx, WF_ERR_HANDLER, "slow: the first attempt fails");
    for (int t = 0; t < ms; t += 10) {
        if (wf_ctx_cancelled(ctx)) return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "cancelled");
        wf_test_nap_ms(10);
    }
    msgpack_pack_str(output, 5);
    msgpack_pack_str_body(output, "slept", 5);
    return WF_OK;
}

WF_WORKFLOW(slow);
