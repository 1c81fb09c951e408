/* app.c - a program outside the wf tree, built only against the installed headers and
 * libraries: `cc app.c $(pkg-config --cflags --libs wf)`. It starts a run, reattaches to it by id,
 * reads its status and stops it, and prints one line per step. scripts/test builds and runs it
 * against an installed copy of wf (see scripts/outside-test). */
#include <stdio.h>
#include <string.h>

#include <wf/wf.h>

int main(int argc, char **argv)
{
    const char *workflow = argc > 1 ? argv[1] : "publish-draft";
    wf_error err = {0};
    wf_client *client = wf_client_connect(NULL, &err); /* $WF_REDIS_URL */
    if (!client) {
        fprintf(stderr, "connect: %s\n", err.message);
        return 1;
    }
    /* {"title": "From outside"} as msgpack */
    static const char payload[] = "\x81\xa5title\xac"
                                  "From outside";
    wf_run_options opt = {.delay_ms = 60000}; /* waits, so the stop below finds it unfinished */
    wf_run *run = wf_run_workflow_ex(client, workflow, payload, sizeof payload - 1, &opt, &err);
    if (!run) {
        fprintf(stderr, "run: %s (%s)\n", err.message, wf_errname(err.code));
        wf_client_free(client);
        return 1;
    }
    printf("started %s on %s\n", wf_run_id(run), wf_run_provider(run));
    wf_run *again = wf_get_workflow_run(client, wf_run_id(run), &err);
    if (!again) {
        fprintf(stderr, "reattach: %s\n", err.message);
        return 1;
    }
    wf_status st;
    if (wf_run_status(again, &st, &err) != WF_OK) {
        fprintf(stderr, "status: %s\n", err.message);
        return 1;
    }
    printf("reattached: %s\n", wf_state_name(st.state));
    wf_status_clear(&st);
    int rc = wf_run_stop(again, &err);
    if (rc != WF_OK) {
        fprintf(stderr, "stop: %s\n", err.message);
        return 1;
    }
    if (wf_run_status(run, &st, &err) != WF_OK) return 1;
    printf("stopped: %s\n", wf_state_name(st.state));
    int ok = st.state == WF_STATE_CANCELLED;
    wf_status_clear(&st);
    wf_run_free(again);
    wf_run_free(run);
    wf_client_free(client);
    return ok ? 0 : 1;
}
