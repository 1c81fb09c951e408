/* fuzz_runid.c - wf__runid_parse: ids come from users, URLs and command lines and become key
 * names. An accepted id must hold no byte that could change a key's meaning, and its workflow part
 * must be the text before the first colon. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *id = fuzz_cstr(data, size);
    char wfname[WF__NAME_MAX + 1];
    wf_error err = {0};
    if (wf__runid_parse(id, wfname, &err) == WF_OK) {
        for (const char *p = id; *p; p++)
            FUZZ_CHECK(strchr("{}*?[] \t\r\n\"\\", *p) == NULL && (unsigned char)*p > ' ' &&
                           (unsigned char)*p < 0x7f,
                       "byte 0x%02x accepted", (unsigned char)*p);
        size_t wl = strlen(wfname);
        FUZZ_CHECK(wl > 0 && !strncmp(id, wfname, wl) && id[wl] == ':', "workflow part");
        FUZZ_CHECK(wf__name_valid(wfname), "workflow name");
        char *key = wf__key_run("wf", wfname, id);
        FUZZ_CHECK(key != NULL, "key");
        free(key);
    } else {
        FUZZ_CHECK(err.code == WF_ERR_BAD_ID && err.message[0], "code %d", err.code);
    }
    free(id);
    return 0;
}
