/* fuzz_msgpack_check.c - wf_msgpack_check, differentially: it must accept exactly what msgpack-c
 * decodes as one value of the whole input (within the depth msgpack-c supports), so that nothing
 * it lets through can later fail to decode in a worker, and it must never let msgpack-c allocate
 * for counts the bytes cannot hold (ASan's allocation limits catch that). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wf_error err = {0};
    int rc = wf_msgpack_check(data, size, NULL, &err);
    if (rc != WF_OK) {
        FUZZ_CHECK(rc == WF_ERR_BAD_PAYLOAD || rc == WF_ERR_TOO_LARGE, "code %d", rc);
        return 0;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)data, size, &off);
    FUZZ_CHECK(r == MSGPACK_UNPACK_SUCCESS && off == size, "accepted, msgpack-c says %d at %zu",
               (int)r, off);
    char *json = NULL;
    rc = wf_object_to_json(&u.data, &json, &err);
    FUZZ_CHECK(rc == WF_OK || rc == WF_ERR_BAD_PAYLOAD, "to_json code %d", rc);
    free(json);
    msgpack_unpacked_destroy(&u);
    return 0;
}
