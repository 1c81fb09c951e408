/* fuzz_record.c - wf__record_decode: the msgpack run record of a stream entry (field "r"), which
 * anyone with write access to the stream can forge. Whatever it accepts must be a valid run id. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[WF__ID_MAX], wfname[WF__NAME_MAX + 1];
    int attempt = 0;
    wf_error err = {0};
    if (wf__record_decode(data, size, id, &attempt, &err) == WF_OK) {
        FUZZ_CHECK(wf__runid_parse(id, wfname, NULL) == WF_OK, "accepted id '%s'", id);
        FUZZ_CHECK(attempt >= 0 && attempt <= 1000000, "attempt %d", attempt);
    } else {
        FUZZ_CHECK(err.code == WF_ERR_BAD_PAYLOAD && err.message[0], "code %d", err.code);
    }
    return 0;
}
