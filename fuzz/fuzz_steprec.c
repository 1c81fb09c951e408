/* fuzz_steprec.c - wf__steprec_decode: a step record read back from a run's steps hash on replay.
 * A record that decodes must survive encode -> decode unchanged in its fixed fields. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wf__steprec rec, again;
    wf_error err = {0};
    if (wf__steprec_decode(data, size, &rec, &err) != WF_OK) return 0;
    if (rec.result)
        FUZZ_CHECK((const uint8_t *)rec.result >= data &&
                       (const uint8_t *)rec.result + rec.result_len <= data + size,
                   "result outside the input");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    FUZZ_CHECK(wf__steprec_encode(&rec, &sb) == WF_OK, "encode");
    FUZZ_CHECK(wf__steprec_decode(sb.data, sb.size, &again, &err) == WF_OK, "%s", err.message);
    FUZZ_CHECK(!strcmp(rec.kind, again.kind) && !strcmp(rec.status, again.status) &&
                   rec.attempts == again.attempts && rec.t0 == again.t0 && rec.t1 == again.t1 &&
                   rec.result_len == again.result_len,
               "round trip changed the record");
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
