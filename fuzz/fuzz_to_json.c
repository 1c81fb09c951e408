/* fuzz_to_json.c - wf_msgpack_to_json on raw bytes (what `wf status` does with a run's output as
 * stored in Redis): never crashes, and answers WF_OK with a string or WF_ERR_BAD_PAYLOAD. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = NULL;
    wf_error err = {0};
    int rc = wf_msgpack_to_json(data, size, &json, &err);
    FUZZ_CHECK((rc == WF_OK && json) || (rc == WF_ERR_BAD_PAYLOAD && !json), "code %d", rc);
    free(json);
    return 0;
}
