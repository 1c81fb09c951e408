/* schedule_env.c - the firings of a schedule of echo, read back from its runs' ids
 * (schedule_env.h): written once for the schedule suites, which both wait for firings and check
 * their times. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "schedule_env.h"
#include "wf/client.h"

int schedule_fires(redisContext *c, const char *id, int64_t *out, int max)
{
    char prefix[128];
    int plen = snprintf(prefix, sizeof prefix, "echo:sched-%s-", id), n = 0;
    for (int s = WF_STATE_QUEUED; s <= WF_STATE_TERMINATED; s++) {
        redisReply *r = wf_test_command(c, "ZRANGE wf:{echo}:state:%s 0 -1", wf_state_name(s));
        for (size_t i = 0; r && i < r->elements && n < max; i++) {
            const char *m = r->element[i]->str;
            if (strncmp(m, prefix, (size_t)plen) == 0 && strncmp(m + plen, "now-", 4) != 0)
                out[n++] = strtoll(m + plen, NULL, 10);
        }
        if (r) freeReplyObject(r);
    }
    for (int i = 1; i < n; i++) /* insertion sort: small */
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    int u = 0;
    for (int i = 0; i < n; i++)
        if (u == 0 || out[u - 1] != out[i]) out[u++] = out[i];
    return u;
}

struct fires_wait {
    redisContext *c;
    const char *id;
    int want;
};

static int has_fired(void *arg)
{
    const struct fires_wait *f = arg;
    int64_t t[256];
    return schedule_fires(f->c, f->id, t, 256) >= f->want;
}

int schedule_wait_fires(redisContext *c, const char *id, int want, int timeout_ms)
{
    struct fires_wait f = {c, id, want};
    return wf_test_wait(has_fired, &f, timeout_ms);
}

int64_t schedule_due_at(redisContext *c, const char *id)
{
    char *due = wf_test_cmd_str(c, "ZSCORE wf:{echo}:schedules:due %s", id);
    cr_assert_not_null(due, "schedule %s is not in the due set", id);
    int64_t at = strtoll(due, NULL, 10);
    free(due);
    return at;
}

void schedule_fire_init(schedule_fire *f, const char *id, int64_t at)
{
    wf__sched_run_id("echo", id, at, f->run_id);
    snprintf(f->at_s, sizeof f->at_s, "%lld", (long long)at);
    snprintf(f->next_s, sizeof f->next_s, "%lld", (long long)at + 1000);
    cr_assert_eq(wf__wfkeys_init(&f->wk, "wf", "echo"), WF_OK);
    f->run_key = wf__key_run("wf", "echo", f->run_id);
    cr_assert_not_null(f->run_key);
    for (int i = 0; i < WF__NFIXED; i++) f->keys[i] = f->wk.k[i];
    f->keys[WF__NFIXED] = "wf:{echo}:schedules";
    f->keys[WF__NFIXED + 1] = "wf:{echo}:schedules:due";
    f->keys[WF__NFIXED + 2] = f->run_key;
    const char *args[] = {id, f->at_s, "@every 1s", f->next_s, f->run_id, "echo"};
    memcpy(f->args, args, sizeof args);
}

redisReply *schedule_fire_call(wf_client *cl, const schedule_fire *f)
{
    wf_error err = {0};
    redisReply *r = wf__script_call(wf__client_redis(cl), WF__SCRIPT_FIRE, WF__NFIXED + 3, f->keys,
                                    6, f->args, NULL, &err);
    cr_assert_not_null(r, "fire.lua: %s", err.message);
    return r;
}

void schedule_fire_refused(wf_client *cl, const schedule_fire *f, const char *why)
{
    redisReply *r = schedule_fire_call(cl, f);
    cr_assert_eq(r->element[0]->integer, -1, "fire.lua did not refuse (wanted %s)", why);
    cr_assert_str_eq(r->element[1]->str, why);
    freeReplyObject(r);
}

void schedule_fire_free(schedule_fire *f)
{
    free(f->run_key);
    wf__wfkeys_free(&f->wk);
}
