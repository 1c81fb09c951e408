/* noop.c - the benchmark's no-op workflow: does nothing, so what is measured is wf itself.
 *
 * With input `true` (msgpack 0xc3) it returns the wall-clock time at which the handler started,
 * in microseconds since the epoch (CLOCK_REALTIME), so wf-bench can measure enqueue-to-start
 * below Redis's millisecond timestamps; the bench and the worker run on one host, one clock.
 * With any other input it returns nothing (a nil output).
 */
#include <time.h>

#include <wf/wf.h>

static int noop(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    (void)ctx;
    if (input->type == MSGPACK_OBJECT_BOOLEAN && input->via.boolean) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        msgpack_pack_int64(out, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    }
    return WF_OK;
}

WF_WORKFLOW(noop);
