/* schedule_ctl.c - an operator's hand on one schedule: wf_schedule_pause, wf_schedule_resume and
 * wf_schedule_trigger (include/wf/client.h, "Schedules"), each one call of lua/schedule_ctl.lua on
 * the workflow's slot, atomic with the firings (worker/scheduler.c, lua/fire.lua). What needs the
 * spec (the resume's next firing) is computed here in C, as the firing worker does: Lua never
 * reads a spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "schedule_internal.h"

_Static_assert(WF_RUN_ID_MAX == WF__ID_MAX, "the public run id size is the internal one");

static int check_args(wf_client *client, const char *workflow, const char *id, wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!workflow || !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'",
                            workflow ? workflow : "(null)");
    if (!wf__sched_id_valid(id))
        return wf_error_set(err, WF_ERR_INVALID, "invalid schedule id '%.64s'", id ? id : "(null)");
    return WF_OK;
}

/* Reads and decodes schedule `id` of `workflow` into `rec` (rec->payload points into `*raw`,
 * which the caller frees). WF_ERR_NOT_FOUND when there is none. */
static int read_rec(wf_client *client, const char *hkey, const char *workflow, const char *id,
                    wf__sched_rec *rec, redisReply **raw, wf_error *err)
{
    *raw = wf__client_cmd(client, 1, err, "HGET %s %s", hkey, id);
    if (!*raw) return err ? err->code : WF_ERR_IO;
    if ((*raw)->type != REDIS_REPLY_STRING)
        return wf_error_set(err, WF_ERR_NOT_FOUND, "no schedule '%s' of workflow %s", id, workflow);
    return wf__sched_decode((*raw)->str, (*raw)->len, rec, err);
}

/* schedule_ctl.lua `action` with ARGV 3... = `extra` (nextra of them), the run hash of `run_id`
 * as KEYS[17] for a trigger. Returns the reply (caller frees) or NULL with `err` filled. */
static redisReply *ctl(wf_client *client, const char *workflow, const char *hkey, const char *id,
                       const char *action, const char *const *extra, int nextra, const char *run_id,
                       wf_error *err)
{
    wf__wfkeys wk;
    if (wf__wfkeys_init(&wk, client->url.prefix, workflow) != WF_OK) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    char *zkey = wf__key_wf(client->url.prefix, workflow, "schedules:due");
    char *run = run_id ? wf__key_run(client->url.prefix, workflow, run_id) : NULL;
    redisReply *r = NULL;
    if (!zkey || (run_id && !run)) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    } else if (wf__client_ensure(client, err) == WF_OK) {
        const char *keys[WF__NFIXED + 3];
        for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
        keys[WF__NFIXED] = hkey;
        keys[WF__NFIXED + 1] = zkey;
        keys[WF__NFIXED + 2] = run;
        const char *args[6] = {id, action};
        for (int i = 0; i < nextra && i < 4; i++) args[2 + i] = extra[i];
        r = wf__script_call(client->c, WF__SCRIPT_SCHEDULE_CTL, WF__NFIXED + 2 + (run ? 1 : 0),
                            keys, 2 + nextra, args, NULL, err);
    }
    free(run);
    free(zkey);
    wf__wfkeys_free(&wk);
    return r;
}

/* Pause, resume or trigger (`action`); `run_id` (WF__ID_MAX bytes) gets a trigger's run. */
static int act(wf_client *client, const char *workflow, const char *id, const char *action,
               char *run_id, wf_error *err)
{
    int rc = check_args(client, workflow, id, err);
    if (rc != WF_OK) return rc;
    char *hkey = wf__key_wf(client->url.prefix, workflow, "schedules");
    if (!hkey) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    wf__sched_rec rec;
    memset(&rec, 0, sizeof rec); /* read only after read_rec filled it, but say so */
    redisReply *raw = NULL, *r = NULL;
    int64_t now = 0;
    char next[24] = "", rid[WF__ID_MAX] = "";
    if (strcmp(action, "pause") != 0) {
        /* The spec, for the next firing (resume) and for schedule_ctl.lua's check that the
         * schedule was not replaced meanwhile (both). */
        rc = read_rec(client, hkey, workflow, id, &rec, &raw, err);
        if (rc == WF_OK) rc = wf__client_time(client, &now, err);
    }
    if (rc == WF_OK && strcmp(action, "resume") == 0) {
        wf__cron cron;
        rc = wf__cron_parse(rec.spec, &cron, err);
        int64_t at = rc == WF_OK ? wf__sched_next(&cron, rec.next_at, now) : 0;
        if (rc == WF_OK && at < 0)
            rc = wf_error_set(err, WF_ERR_INVALID, "schedule '%s' never fires again", id);
        snprintf(next, sizeof next, "%lld", (long long)at);
    }
    if (rc == WF_OK && strcmp(action, "trigger") == 0)
        snprintf(rid, sizeof rid, "%s:sched-%s-now-%lld", workflow, id, (long long)now);
    if (rc == WF_OK) {
        const char *extra[3] = {raw ? rec.spec : "", rid[0] ? rid : next, workflow};
        int nextra = strcmp(action, "pause") == 0 ? 0 : rid[0] ? 3 : 2;
        r = ctl(client, workflow, hkey, id, action, extra, nextra, rid[0] ? rid : NULL, err);
        if (!r) rc = err && err->code ? err->code : WF_ERR_IO;
    }
    if (rc == WF_OK && run_id) snprintf(run_id, WF__ID_MAX, "%s", rid);
    if (r) freeReplyObject(r);
    if (raw) freeReplyObject(raw);
    free(hkey);
    return rc;
}

int wf_schedule_pause(wf_client *client, const char *workflow, const char *id, wf_error *err)
{
    return act(client, workflow, id, "pause", NULL, err);
}

int wf_schedule_resume(wf_client *client, const char *workflow, const char *id, wf_error *err)
{
    return act(client, workflow, id, "resume", NULL, err);
}

int wf_schedule_trigger(wf_client *client, const char *workflow, const char *id, char *run_id,
                        wf_error *err)
{
    return act(client, workflow, id, "trigger", run_id, err);
}
