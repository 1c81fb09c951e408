/* cmd_event.c - `wf send-event NAME [JSON|-]`: record an event that waiting runs can receive. */
#include <stdio.h>

#include "cli.h"

static const char USAGE[] =
    "Usage: wf send-event NAME [JSON|-] [--key KEY]\n"
    "\n"
    "Records event NAME in Redis with an optional JSON payload (the argument, or stdin when it is\n"
    "\"-\"); runs waiting for NAME are woken. With --key, only waits on NAME whose key is KEY "
    "(and\n"
    "waits with no key) receive it. Prints {\"ok\": true, \"event\": NAME}.\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

int wf__cli_cmd_send_event(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_KEY = 1 };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS, {"key", required_argument, NULL, OPT_KEY}, {NULL, 0, NULL, 0}};
    const char *key = NULL;
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c != OPT_KEY) return WF_CLI_USAGE;
        key = optarg;
    }
    int done;
    if (wf__cli_args(cli, argc, "send-event", USAGE, 1, 2,
                     "send-event wants an event name and at most one JSON payload", &done))
        return done;
    int npos = argc - optind;
    const char *name = argv[optind];
    msgpack_sbuffer payload;
    int rc = wf__cli_input_and_connect(cli, npos == 2 ? argv[optind + 1] : NULL, &payload);
    if (rc == WF_CLI_OK) {
        wf_error err = {0};
        if (wf_send_event_keyed(cli->client, name, key, payload.data, payload.size, &err) != WF_OK)
            rc = wf__cli_fail(&err);
        else
            rc = wf__cli_print_json(json_pack("{s:b, s:s}", "ok", 1, "event", name));
    }
    msgpack_sbuffer_destroy(&payload);
    return rc;
}
