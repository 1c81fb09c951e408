/* fuzz_json.c - wf_json_to_msgpack and back: JSON from HTTP bodies and command lines. What it
 * produces must pass wf_msgpack_check, and converting that back to JSON and again to msgpack must
 * give the same bytes (a fixed point after one round). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    wf_error err = {0};
    int rc = wf_json_to_msgpack((const char *)data, size, NULL, &a, &err);
    if (rc == WF_OK) {
        FUZZ_CHECK(wf_msgpack_check(a.data, a.size, NULL, &err) == WF_OK, "%s", err.message);
        char *json = NULL;
        FUZZ_CHECK(wf_msgpack_to_json(a.data, a.size, &json, &err) == WF_OK, "%s", err.message);
        FUZZ_CHECK(wf_json_to_msgpack(json, strlen(json), NULL, &b, &err) == WF_OK, "%s: %s",
                   err.message, json);
        char *json2 = NULL;
        FUZZ_CHECK(wf_msgpack_to_json(b.data, b.size, &json2, &err) == WF_OK, "%s", err.message);
        FUZZ_CHECK(!strcmp(json, json2), "not a fixed point: %s vs %s", json, json2);
        free(json);
        free(json2);
    } else {
        FUZZ_CHECK(rc == WF_ERR_BAD_PAYLOAD || rc == WF_ERR_TOO_LARGE, "code %d", rc);
    }
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
    return 0;
}
