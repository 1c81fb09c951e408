/* schedule_env.h - what the schedule suites (test_schedule.c, test_schedule_ctl.c) read back of a
 * schedule of the test workflow echo: the firings it made, from the ids of the runs it started
 * (echo:sched-ID-MS, wf__sched_run_id) in the state indexes. */
#ifndef WF_TEST_SCHEDULE_ENV_H
#define WF_TEST_SCHEDULE_ENV_H

#include <stdint.h>

#include <hiredis/hiredis.h>

#include "schedule_internal.h"
#include "wf_internal.h"

/* The fire times (Redis ms) of the runs echo's schedule `id` started on its own (a trigger's
 * runs, echo:sched-ID-now-..., are not firings), ascending, each once: the state sets are read
 * one after another, so a run that moved on between two reads is seen twice. Returns how many;
 * fills at most `max`. */
int schedule_fires(redisContext *c, const char *id, int64_t *out, int max);

/* 1 once echo's schedule `id` made at least `want` firings (schedule_fires), 0 after
 * timeout_ms. */
int schedule_wait_fires(redisContext *c, const char *id, int want, int timeout_ms);

/* The next firing (Redis ms) of echo's schedule `id`, its score in the due set; fails the test
 * when it has none. */
int64_t schedule_due_at(redisContext *c, const char *id);

/* fire.lua's call for the firing of echo's schedule `id` ("@every 1s") planned at `at`, as the
 * worker's scheduler makes it: the fixed keys, the schedules and due set, the run it starts. */
typedef struct schedule_fire {
    char run_id[WF__ID_MAX]; /* the run the firing starts */
    char *run_key;           /* its run hash */
    char at_s[24], next_s[24];
    wf__wfkeys wk;
    const char *keys[WF__NFIXED + 3];
    const char *args[6];
} schedule_fire;

void schedule_fire_init(schedule_fire *f, const char *id, int64_t at);
/* Runs the call on `cl`'s connection; fails the test when there is no reply. */
redisReply *schedule_fire_call(wf_client *cl, const schedule_fire *f);
/* Runs the call and checks that fire.lua refused it with reason `why` ({-1, why}). */
void schedule_fire_refused(wf_client *cl, const schedule_fire *f, const char *why);
void schedule_fire_free(schedule_fire *f);

#endif
