/* steps5.c - the benchmark's five-step workflow: five durable no-op steps (wf_step_run), each
 * recording a small integer, so a run costs its claim and finish plus five step records.
 *
 * Built only when the step engine (wf_step_run in worker/) is part of libwf-worker; see
 * bench/CMakeLists.txt.
 */
#include <stdint.h>

#include <wf/wf.h>

static int step_body(wf_ctx *ctx, void *arg, msgpack_packer *result)
{
    (void)ctx;
    msgpack_pack_int(result, (int)(intptr_t)arg);
    return WF_OK;
}

static int steps5(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)input;
    static const char *const names[5] = {"one", "two", "three", "four", "five"};
    for (int i = 0; i < 5; i++) {
        int rc = wf_step_run(ctx, names[i], step_body, (void *)(intptr_t)i, NULL);
        if (rc != WF_OK) return rc;
    }
    msgpack_pack_int(out, 5);
    return WF_OK;
}

WF_WORKFLOW(steps5);
