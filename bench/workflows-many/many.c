/* many.c - a module that defines K no-op workflows, "many000" .. "many<K-1>", for the benchmark
 * of 1 / 10 / 100 workflows active in one worker. K comes from $WF_BENCH_WORKFLOWS (default 1,
 * at most 1000), read when the module is loaded.
 *
 * It registers its definitions with wf_workflow_register() itself instead of WF_WORKFLOW, since
 * one file makes many workflows; the definitions are static, as the registry requires.
 */
#include <stdio.h>
#include <stdlib.h>

#include <wf/wf.h>

#define MANY_MAX 1000

static int many_noop(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)ctx;
    (void)input;
    (void)out;
    return WF_OK;
}

static char names[MANY_MAX][16];
static wf_workflow_def defs[MANY_MAX];

__attribute__((constructor)) static void many_register(void)
{
    const char *s = getenv("WF_BENCH_WORKFLOWS");
    int k = s ? atoi(s) : 1;
    if (k < 1) k = 1;
    if (k > MANY_MAX) k = MANY_MAX;
    for (int i = 0; i < k; i++) {
        snprintf(names[i], sizeof names[i], "many%03d", i);
        defs[i].name = names[i];
        defs[i].handler = many_noop;
        (void)wf_workflow_register(&defs[i]);
    }
}
