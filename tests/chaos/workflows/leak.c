/* leak.c - chaos workflow: leaks 4 MiB (touched, so resident) per run and returns "leaked". The
 * worker's --max-rss-mb limit recycles the process before it grows without bound. */
#include <string.h>

#include "../../workflows/exec_log.h"

#define LEAK_BYTES (4 * 1024 * 1024)

static void *volatile leaked;

static int leak(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    (void)input;
    wf_test_exec_log(ctx);
    /* Never freed: that is the point. Chained from a global so the compiler cannot drop it. */
    char *p = malloc(LEAK_BYTES);
    if (p) {
        memset(p, 0x5a, LEAK_BYTES);
        *(void **)p = leaked;
        leaked = p;
    }
    msgpack_pack_str_with_body(output, "leaked", 6);
    return WF_OK;
}

WF_WORKFLOW(leak);
