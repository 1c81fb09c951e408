/* control.c - pause, resume and restart: one script each, on the run's keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "cluster.h"

/* Calls `script` with the workflow's fixed keys, the run hash and its steps hash, and ARGV
 * {id, extra...}. Returns the reply or NULL with err filled. */
static redisReply *call_on_run(wf_run *run, wf__script script, const char *extra, wf_error *err)
{
    wf_client *client = run->client;
    if (wf__client_ensure(client, err) != WF_OK) return NULL;
    wf__wfkeys wk;
    if (wf__wfkeys_init(&wk, client->url.prefix, run->workflow) != WF_OK) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    char *steps = wf__key_steps(client->url.prefix, run->workflow, run->id);
    const char *keys[WF__NFIXED + 2];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
    keys[WF__NFIXED] = run->key;
    keys[WF__NFIXED + 1] = steps ? steps : "";
    const char *args[2] = {run->id, extra};
    redisReply *r =
        wf__script_call(client->c, script, WF__NFIXED + 2, keys, extra ? 2 : 1, args, NULL, err);
    free(steps);
    wf__wfkeys_free(&wk);
    return r;
}

static int finish_call(wf_run *run, redisReply *r, const char *verb, wf_error *err)
{
    if (r) {
        freeReplyObject(r);
        return WF_OK;
    }
    if (err->code == WF_ERR_FINAL) {
        char state[32];
        snprintf(state, sizeof state, "%s", err->message + 6); /* "FINAL <state>" */
        return wf_error_set(err, WF_ERR_FINAL, "run '%s' is already %s; cannot %s it", run->id,
                            state, verb);
    }
    return err->code ? err->code : WF_ERR_IO;
}

int wf_run_pause(wf_run *run, wf_error *err)
{
    if (!run) return wf_error_set(err, WF_ERR_INVALID, "run is NULL");
    wf_error e = {0};
    int rc = finish_call(run, call_on_run(run, WF__SCRIPT_PAUSE, NULL, &e), "pause", &e);
    if (rc != WF_OK && err) *err = e;
    return rc;
}

int wf_run_resume(wf_run *run, wf_error *err)
{
    if (!run) return wf_error_set(err, WF_ERR_INVALID, "run is NULL");
    wf_error e = {0};
    int rc = finish_call(run, call_on_run(run, WF__SCRIPT_RESUME, NULL, &e), "resume", &e);
    if (rc != WF_OK && err) *err = e;
    return rc;
}

int wf_run_restart(wf_run *run, int clear_steps, wf_error *err)
{
    if (!run) return wf_error_set(err, WF_ERR_INVALID, "run is NULL");
    wf_error e = {0};
    int rc = finish_call(run, call_on_run(run, WF__SCRIPT_RESTART, clear_steps ? "1" : "0", &e),
                         "restart", &e);
    if (rc != WF_OK && err) *err = e;
    return rc;
}
