/* app.c - a client built with the installed CMake package (wf::wf): starts a run of `greet`,
 * waits up to 20 s for a worker to complete it, and prints its output as JSON. Exits 0 only when
 * the run completed with the expected greeting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wf/wf.h>

int main(void)
{
    wf_error err = {0};
    wf_client *client = wf_client_connect(NULL, &err); /* $WF_REDIS_URL */
    if (!client) {
        fprintf(stderr, "connect: %s\n", err.message);
        return 1;
    }
    static const char payload[] = "\x81\xa4name\xa7outside"; /* {"name": "outside"} */
    wf_run *run = wf_run_workflow(client, "greet", payload, sizeof payload - 1, &err);
    if (!run) {
        fprintf(stderr, "run: %s (%s)\n", err.message, wf_errname(err.code));
        wf_client_free(client);
        return 1;
    }
    printf("started %s\n", wf_run_id(run));
    int ok = 0;
    for (int i = 0; i < 400; i++) { /* polls every 50 ms, for at most 20 s */
        wf_status st;
        if (wf_run_status(run, &st, &err) != WF_OK) {
            fprintf(stderr, "status: %s\n", err.message);
            break;
        }
        wf_state state = st.state;
        if (state == WF_STATE_COMPLETED) {
            char *json = NULL;
            if (wf_msgpack_to_json(st.output, st.output_len, &json, &err) == WF_OK) {
                printf("completed: %s\n", json);
                ok = strstr(json, "hello, outside") != NULL;
            }
            free(json);
        } else if (state >= WF_STATE_FAILED) {
            fprintf(stderr, "run ended %s: %s\n", wf_state_name(state), st.error ? st.error : "");
        }
        wf_status_clear(&st);
        if (state >= WF_STATE_COMPLETED) break;
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
    wf_run_free(run);
    wf_client_free(client);
    return ok ? 0 : 1;
}
