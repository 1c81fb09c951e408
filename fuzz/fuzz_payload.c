/* fuzz_payload.c - wf_read_validated_payload on untrusted bytes, as an HTTP service hands them
 * over: the first byte picks the format (auto, msgpack, JSON) and a small or default size limit.
 * What it keeps must be exactly one well-formed msgpack value that converts to JSON. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    wf_payload_format fmt = (wf_payload_format)(data[0] % 3);
    wf_payload_limits limits = {(data[0] & 0x80) ? 256 : 0, (data[0] & 0x40) ? 4 : 0};
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    wf_error err = {0};
    int rc = wf_read_validated_payload(data + 1, size - 1, fmt, &limits, NULL, NULL, &out, &err);
    if (rc == WF_OK) {
        FUZZ_CHECK(wf_msgpack_check(out.data, out.size, NULL, &err) == WF_OK, "%s", err.message);
        char *json = NULL;
        rc = wf_msgpack_to_json(out.data, out.size, &json, &err);
        /* JSON cannot carry every msgpack value (NaN, huge unsigned): refused with a message. */
        FUZZ_CHECK(rc == WF_OK || rc == WF_ERR_BAD_PAYLOAD, "to_json code %d", rc);
        free(json);
    } else {
        FUZZ_CHECK(rc == WF_ERR_BAD_PAYLOAD || rc == WF_ERR_TOO_LARGE, "code %d: %s", rc,
                   err.message);
        FUZZ_CHECK(err.message[0], "no message for code %d", rc);
    }
    msgpack_sbuffer_destroy(&out);
    return 0;
}
