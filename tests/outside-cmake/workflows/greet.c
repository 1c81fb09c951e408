/* greet.c - the workflow `greet`: {"name": N} -> {"greeting": "hello, N"}. Built by
 * wf_add_workflows() from the installed CMake package (tests/outside-cmake/CMakeLists.txt). */
#include <string.h>

#include <wf/wf.h>

static int greet(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    const char *name = "world";
    size_t len = 5;
    if (input->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < input->via.map.size; i++) {
            const msgpack_object_kv *kv = &input->via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 4 &&
                memcmp(kv->key.via.str.ptr, "name", 4) == 0 && kv->val.type == MSGPACK_OBJECT_STR) {
                name = kv->val.via.str.ptr;
                len = kv->val.via.str.size;
            }
        }
    char text[128];
    if (len > sizeof text - 8) return wf_ctx_fail(ctx, WF_ERR_FATAL, "name too long");
    memcpy(text, "hello, ", 7);
    memcpy(text + 7, name, len);
    msgpack_pack_map(out, 1);
    msgpack_pack_str_with_body(out, "greeting", 8);
    msgpack_pack_str_with_body(out, text, 7 + len);
    return WF_OK;
}

WF_WORKFLOW(greet, .timeout_ms = 10000);
