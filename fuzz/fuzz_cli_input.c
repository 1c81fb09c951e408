/* fuzz_cli_input.c - the wf command's JSON input path (cli/input.c, wf__cli_read_input): a JSON
 * argument of `wf run NAME JSON` becomes the run's msgpack input. Accepted input must be one
 * well-formed msgpack value; refusals are exit codes, never crashes. */
#include "fuzz.h"

#include "cli.h"

/* The real one (cli/common.c) prints and maps codes; the input path only needs its return. */
int wf__cli_fail(const wf_error *err)
{
    (void)err;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *arg = fuzz_cstr(data, size);
    if (!strcmp(arg, "-")) { /* means stdin */
        free(arg);
        return 0;
    }
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    /* Its refusals print to stderr: silence them (sanitizer reports write fd 2, unaffected). */
    static FILE *devnull;
    if (!devnull) devnull = fopen("/dev/null", "w");
    FILE *saved = stderr;
    if (devnull) stderr = devnull;
    int rc = wf__cli_read_input(arg, &out);
    stderr = saved;
    if (rc == WF_CLI_OK) {
        wf_error err = {0};
        FUZZ_CHECK(wf_msgpack_check(out.data, out.size, NULL, &err) == WF_OK, "%s", err.message);
    } else {
        FUZZ_CHECK(rc == WF_CLI_BAD_INPUT || rc == 1, "exit code %d", rc);
    }
    msgpack_sbuffer_destroy(&out);
    free(arg);
    return 0;
}
