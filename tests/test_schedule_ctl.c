/* test_schedule_ctl.c - an operator's hand on a schedule (wf_schedule_pause / _resume / _trigger,
 * `wf schedule pause|resume|trigger`, lua/schedule_ctl.lua): a real wf-worker on the test
 * workflows (worker_env.h) fires an @every 1s schedule; paused, it fires no more (and fire.lua
 * refuses a firing planned before the pause); resumed, its next firing is the first one after the
 * resume, with no run for the firings missed meanwhile even under catch-up "all"; a trigger
 * starts one run now without moving the next firing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule_env.h"
#include "schedule_internal.h"
#include "worker_env.h"

TestSuite(schedctl, .init = worker_setup, .fini = worker_teardown, .timeout = 120);

static wf_schedule_info one_schedule(const char *id, wf_schedule_info **all, size_t *n)
{
    wf_error err = {0};
    cr_assert_eq(wf_schedule_list(cl, "echo", all, n, &err), WF_OK, "%s", err.message);
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*all)[i].id, id) == 0) return (*all)[i];
    cr_assert_fail("no schedule %s", id);
    return (wf_schedule_info){0};
}

Test(schedctl, pause_stops_firing_and_resume_skips_the_missed)
{
    worker_pid = start_worker(NULL);
    wf_error err = {0};
    wf_schedule_options all = {WF_CATCH_UP_ALL};
    cr_assert_eq(wf_schedule_add_ex(cl, "tick", "echo", "@every 1s", NULL, 0, &all, &err), WF_OK,
                 "%s", err.message);
    cr_assert(schedule_wait_fires(rc, "tick", 1, 10000), "the schedule fires");
    cr_assert_eq(wf_schedule_pause(cl, "echo", "tick", &err), WF_OK, "%s", err.message);
    int64_t paused_at = wf_test_redis_ms(rc);
    int64_t t[128];
    int before = schedule_fires(rc, "tick", t, 128);
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:schedules:due"), 0, "off the due set");
    wf_schedule_info *s = NULL;
    size_t n = 0;
    cr_assert_eq(one_schedule("tick", &s, &n).paused, 1);
    wf_schedules_free(s, n);
    cr_assert_eq(wf_schedule_pause(cl, "echo", "tick", &err), WF_OK, "idempotent");

    /* Three firings' worth of Redis time pass: none starts a run. */
    int64_t until = paused_at + 3000;
    cr_assert(wf_test_wait_redis_ms(rc, until, 5000));
    cr_assert_eq(schedule_fires(rc, "tick", t, 128), before, "no firing while paused");

    cr_assert_eq(wf_schedule_resume(cl, "echo", "tick", &err), WF_OK, "%s", err.message);
    int64_t resumed_at = wf_test_redis_ms(rc);
    wf_schedule_info info = one_schedule("tick", &s, &n);
    cr_assert_eq(info.paused, 0);
    cr_assert_gt(info.next_at_ms, resumed_at - 50, "the next firing is after the resume");
    cr_assert_leq(info.next_at_ms, resumed_at + 1000);
    wf_schedules_free(s, n);
    cr_assert(schedule_wait_fires(rc, "tick", before + 2, 10000), "it fires again");
    int got = schedule_fires(rc, "tick", t, 128), missed = 0;
    for (int i = 0; i < got; i++) missed += t[i] > paused_at && t[i] < resumed_at - 50;
    cr_assert_eq(missed, 0, "no run for the firings missed while paused (catch-up all)");
}

Test(schedctl, fire_lua_refuses_a_firing_planned_before_the_pause)
{
    wf_error err = {0};
    cr_assert_eq(wf_test_cmd_int(rc, "HSET wf:workflows echo {}"), 1);
    cr_assert_eq(wf_schedule_add(cl, "cas", "echo", "@every 1s", NULL, 0, &err), WF_OK, "%s",
                 err.message);
    int64_t seen = schedule_due_at(rc, "cas");
    cr_assert_eq(wf_schedule_pause(cl, "echo", "cas", &err), WF_OK, "%s", err.message);
    cr_assert(wf_test_wait_redis_ms(rc, seen, 3000));
    schedule_fire f;
    schedule_fire_init(&f, "cas", seen);
    schedule_fire_refused(cl, &f, "paused");
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS %s", f.run_key), 0, "no run");
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:schedules:due"), 0, "not re-armed");
    schedule_fire_free(&f);
}

Test(schedctl, trigger_starts_a_run_now_and_keeps_the_next_firing)
{
    worker_pid = start_worker(NULL);
    wf_error err = {0};
    cr_assert_eq(wf_schedule_add(cl, "daily", "echo", "0 3 * * *", "\x2a", 1, &err), WF_OK, "%s",
                 err.message);
    wf_schedule_info *s = NULL;
    size_t n = 0;
    int64_t next = one_schedule("daily", &s, &n).next_at_ms;
    wf_schedules_free(s, n);
    char run_id[WF_RUN_ID_MAX] = "";
    cr_assert_eq(wf_schedule_trigger(cl, "echo", "daily", run_id, &err), WF_OK, "%s", err.message);
    cr_assert_eq(strncmp(run_id, "echo:sched-daily-now-", 21), 0, "%s", run_id);
    wf_run *run = wf_get_workflow_run(cl, run_id, &err);
    cr_assert_not_null(run, "%s", err.message);
    expect_output(run, 10000, "42");
    wf_run_free(run);
    char *sched = wf_test_cmd_str(rc, "HGET wf:{echo}:run:%s schedule", run_id);
    cr_assert_str_eq(sched, "daily");
    free(sched);
    wf_schedule_info info = one_schedule("daily", &s, &n);
    cr_assert_eq(info.next_at_ms, next, "the next firing did not move");
    cr_assert_eq(info.fires, 1);
    cr_assert_str_eq(info.last_run, run_id);
    wf_schedules_free(s, n);
    /* A paused schedule can be triggered too, and stays paused. */
    cr_assert_eq(wf_schedule_pause(cl, "echo", "daily", &err), WF_OK, "%s", err.message);
    char second[WF_RUN_ID_MAX];
    cr_assert_eq(wf_schedule_trigger(cl, "echo", "daily", second, &err), WF_OK, "%s", err.message);
    info = one_schedule("daily", &s, &n);
    cr_assert_eq(info.paused, 1);
    cr_assert_eq(info.fires, 2);
    wf_schedules_free(s, n);

    cr_assert_eq(wf_schedule_trigger(cl, "echo", "nope", NULL, &err), WF_ERR_NOT_FOUND);
    cr_assert_eq(wf_schedule_pause(cl, "echo", "nope", &err), WF_ERR_NOT_FOUND);
    cr_assert_eq(wf_schedule_resume(cl, "echo", "nope", &err), WF_ERR_NOT_FOUND);
    cr_assert_eq(wf_schedule_pause(cl, "bad name", "daily", &err), WF_ERR_BAD_NAME);
    cr_assert_eq(wf_schedule_pause(cl, "echo", "bad id", &err), WF_ERR_INVALID);
}

Test(schedctl, cli_pause_resume_trigger)
{
    worker_pid = start_worker(NULL);
    char *out = NULL;
    cr_assert_eq(
        wf_cli(&out, (const char *[]){"schedule", "add", "nightly", "echo", "0 2 * * *", NULL}), 0,
        "%s", out);
    free(out);
    cr_assert_eq(wf_cli(&out, (const char *[]){"schedule", "pause", "nightly", NULL}), 0, "%s",
                 out);
    cr_assert(strstr(out, "schedule nightly of echo paused"), "%s", out);
    free(out);
    cr_assert_eq(wf_cli(&out, (const char *[]){"schedule", "list", NULL}), 0, "%s", out);
    cr_assert(strstr(out, "paused"), "%s", out);
    free(out);
    cr_assert_eq(wf_cli(&out, (const char *[]){"--json", "schedule", "trigger", "nightly",
                                               "--workflow", "echo", NULL}),
                 0, "%s", out);
    cr_assert(strstr(out, "echo:sched-nightly-now-"), "%s", out);
    free(out);
    cr_assert_eq(wf_cli(&out, (const char *[]){"schedule", "resume", "nightly", NULL}), 0, "%s",
                 out);
    free(out);
    cr_assert_eq(wf_cli(&out, (const char *[]){"--json", "schedule", "list", NULL}), 0, "%s", out);
    cr_assert(strstr(out, "\"paused\":false") || strstr(out, "\"paused\": false"), "%s", out);
    free(out);
    cr_assert_eq(wf_cli(&out, (const char *[]){"schedule", "pause", "nope", NULL}), 2, "%s", out);
    free(out);
}
