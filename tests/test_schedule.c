/* test_schedule.c - schedules: the cron parser and stepper (edge cases, in UTC), the catch-up
 * plan, fire.lua's compare-and-set, and real wf-worker processes firing schedules against a real
 * redis-server: exactly one run per firing with 4 worker processes racing, the catch-up policies
 * after a time with no worker, and `wf schedule remove` stopping the firings. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "schedule_env.h"
#include "schedule_internal.h"
#include "wf_internal.h"

/* ---- cron: parsing and stepping (no Redis) ----------------------------------------------------
 */

/* ms since the epoch of a UTC date. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm) * 1000;
}

static int64_t next_of(const char *spec, int64_t after)
{
    wf__cron c;
    wf_error err = {0};
    cr_assert_eq(wf__cron_parse(spec, &c, &err), WF_OK, "'%s': %s", spec, err.message);
    return wf__cron_next(&c, after);
}

Test(cron, steps_ranges_lists_and_names)
{
    cr_assert_eq(next_of("*/15 * * * *", utc(2026, 3, 1, 12, 7)), utc(2026, 3, 1, 12, 15));
    cr_assert_eq(next_of("10-20/5 * * * *", utc(2026, 3, 1, 12, 16)), utc(2026, 3, 1, 12, 20));
    cr_assert_eq(next_of("10-20/5 * * * *", utc(2026, 3, 1, 12, 21)), utc(2026, 3, 1, 13, 10));
    cr_assert_eq(next_of("5/20 * * * *", utc(2026, 3, 1, 12, 26)), utc(2026, 3, 1, 12, 45));
    cr_assert_eq(next_of("0 9,17 * * *", utc(2026, 3, 1, 9, 0)), utc(2026, 3, 1, 17, 0));
    /* 2026-03-02 is a Monday; January and July only, weekdays. */
    cr_assert_eq(next_of("0 9 * jan,jul mon-fri", utc(2026, 3, 2, 0, 0)), utc(2026, 7, 1, 9, 0));
    cr_assert_eq(next_of("0 9 * JAN,Jul MON-fri", utc(2026, 3, 2, 0, 0)), utc(2026, 7, 1, 9, 0));
    /* Day 7 is Sunday like 0; 2026-03-08 is a Sunday. */
    cr_assert_eq(next_of("0 12 * * 7", utc(2026, 3, 2, 0, 0)), utc(2026, 3, 8, 12, 0));
    cr_assert_eq(next_of("0 12 * * 0", utc(2026, 3, 2, 0, 0)), utc(2026, 3, 8, 12, 0));
    cr_assert_eq(next_of("0 0 * * 5-7", utc(2026, 3, 2, 0, 0)), utc(2026, 3, 6, 0, 0));
    /* Macros. */
    cr_assert_eq(next_of("@hourly", utc(2026, 3, 1, 12, 0)), utc(2026, 3, 1, 13, 0));
    cr_assert_eq(next_of("@daily", utc(2026, 3, 1, 12, 0)), utc(2026, 3, 2, 0, 0));
    cr_assert_eq(next_of("@weekly", utc(2026, 3, 2, 0, 0)), utc(2026, 3, 8, 0, 0));
    cr_assert_eq(next_of("@monthly", utc(2026, 3, 2, 0, 0)), utc(2026, 4, 1, 0, 0));
    cr_assert_eq(next_of("@yearly", utc(2026, 3, 2, 0, 0)), utc(2027, 1, 1, 0, 0));
}

Test(cron, boundaries)
{
    /* Strictly after, in whole minutes: exactly on a match gives the next one. */
    cr_assert_eq(next_of("* * * * *", utc(2026, 3, 1, 12, 0)), utc(2026, 3, 1, 12, 1));
    cr_assert_eq(next_of("* * * * *", utc(2026, 3, 1, 12, 0) + 59999), utc(2026, 3, 1, 12, 1));
    /* Year and month rollover. */
    cr_assert_eq(next_of("0 0 1 1 *", utc(2026, 12, 31, 23, 59)), utc(2027, 1, 1, 0, 0));
    cr_assert_eq(next_of("30 23 31 * *", utc(2026, 4, 1, 0, 0)), utc(2026, 5, 31, 23, 30));
    /* February 29 comes every four years. */
    cr_assert_eq(next_of("0 0 29 2 *", utc(2025, 3, 1, 0, 0)), utc(2028, 2, 29, 0, 0));
    /* Never: February 30, April 31. */
    cr_assert_eq(next_of("0 0 30 2 *", utc(2026, 1, 1, 0, 0)), -1);
    cr_assert_eq(next_of("0 0 31 4 *", utc(2026, 1, 1, 0, 0)), -1);
}

Test(cron, day_of_month_or_day_of_week)
{
    /* Both restricted: either matches (Vixie cron). 2026-01-02 is a Friday, before the 13th. */
    cr_assert_eq(next_of("0 0 13 * fri", utc(2026, 1, 1, 0, 0)), utc(2026, 1, 2, 0, 0));
    cr_assert_eq(next_of("0 0 13 * fri", utc(2026, 1, 12, 0, 0)), utc(2026, 1, 13, 0, 0));
    /* One starts with '*': both must match. Mondays that are the 1st, 11th, 21st or 31st:
     * 2026-05-11 is one. */
    cr_assert_eq(next_of("0 0 */10 * mon", utc(2026, 3, 1, 0, 0)), utc(2026, 5, 11, 0, 0));
}

Test(cron, intervals_keep_their_phase)
{
    wf__cron c;
    cr_assert_eq(wf__cron_parse("@every 1m30s", &c, NULL), WF_OK);
    cr_assert_eq(c.every_ms, 90000);
    cr_assert_eq(wf__sched_next(&c, 1000, 1000), 91000);
    cr_assert_eq(wf__sched_next(&c, 1000, 1000 + 3 * 90000 + 5), 1000 + 4 * 90000);
    cr_assert_eq(wf__sched_next(&c, 1000, 500), 1000);
    cr_assert_eq(wf__cron_parse("  @every   2h ", &c, NULL), WF_OK);
    cr_assert_eq(c.every_ms, 7200000);
    cr_assert_eq(wf__cron_parse("@every 1500ms", &c, NULL), WF_OK);
    cr_assert_eq(c.every_ms, 1500);
}

Test(cron, refuses_bad_specs)
{
    static const char *const bad[] = {
        "",           "* * * *",      "* * * * * *", "60 * * * *",  "* 24 * * *",   "* * 0 * *",
        "* * * 13 *", "* * * * 8",    "5-2 * * * *", "*/0 * * * *", "a * * * *",    "1,,2 * * * *",
        "1- * * * *", "* * * foo *",  "@every",      "@every 0s",   "@every 500ms", "@every 1x",
        "@every s",   "@fortnightly", "@every 400d",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wf__cron c;
        wf_error err = {0};
        cr_assert_eq(wf__cron_parse(bad[i], &c, &err), WF_ERR_INVALID, "'%s' was accepted", bad[i]);
        cr_assert_neq(err.message[0], '\0', "'%s' has a message", bad[i]);
    }
}

Test(cron, catch_up_plans)
{
    wf__cron c;
    cr_assert_eq(wf__cron_parse("@every 1s", &c, NULL), WF_OK);
    int fire;
    int64_t next;
    /* On time: every policy fires, next is one interval on. */
    for (int p = 0; p <= WF_CATCH_UP_NONE; p++) {
        wf__sched_plan(&c, (wf_catch_up)p, 10000, 10050, &fire, &next);
        cr_assert_eq(fire, 1, "policy %d fires on time", p);
        cr_assert_eq(next, 11000);
    }
    /* 3.5 firings behind: */
    wf__sched_plan(&c, WF_CATCH_UP_ALL, 10000, 13500, &fire, &next);
    cr_assert(fire && next == 11000, "all: fire this one, the next missed one follows");
    wf__sched_plan(&c, WF_CATCH_UP_ONE, 10000, 13500, &fire, &next);
    cr_assert(fire && next == 14000, "one: fire once, then the first one after now");
    wf__sched_plan(&c, WF_CATCH_UP_NONE, 10000, 13500, &fire, &next);
    cr_assert(!fire && next == 14000, "none: skip, then the first one after now");
    /* none: a lone firing more than the grace late is missed too. */
    cr_assert_eq(wf__cron_parse("@daily", &c, NULL), WF_OK);
    wf__sched_plan(&c, WF_CATCH_UP_NONE, utc(2026, 3, 1, 0, 0), utc(2026, 3, 1, 0, 5), &fire,
                   &next);
    cr_assert(!fire && next == utc(2026, 3, 2, 0, 0));
    wf__sched_plan(&c, WF_CATCH_UP_NONE, utc(2026, 3, 1, 0, 0), utc(2026, 3, 1, 0, 0) + 2000, &fire,
                   &next);
    cr_assert(fire);
}

/* ---- against Redis and real workers ---------------------------------------------------------- */

static wf_test_redis srv;
static redisContext *rc;
static wf_client *cl;
static char dir[256];
static char exec_env[340], exec_path[300];
static pid_t workers[4];
static int nworkers;

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0, "redis-server must start");
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    wf_test_temp_dir(dir, sizeof dir, "schedule");
    snprintf(exec_path, sizeof exec_path, "%s/exec.log", dir);
    snprintf(exec_env, sizeof exec_env, "WF_TEST_EXEC_LOG=%s", exec_path);
    /* Schedules need their workflow registered; a worker that ran before did that. */
    cr_assert_eq(wf_test_cmd_int(rc, "HSET wf:workflows echo {}"), 1);
    cl = wf_test_client(srv.url);
    nworkers = 0;
}

static int log_is_clean(void)
{
    int clean = 1;
    for (int i = 0; i < 4; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/worker%d.log", dir, i);
        if (!wf_test_log_quiet(path, 0)) clean = 0;
    }
    return clean;
}

static void stop_workers(void)
{
    for (int i = 0; i < nworkers; i++) {
        if (workers[i] <= 0) continue;
        int status = wf_test_kill(workers[i], SIGTERM, 30000);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d drained (0x%x)", i,
                  status);
    }
    nworkers = 0;
}

static void teardown(void)
{
    stop_workers();
    int clean = log_is_clean();
    wf_client_free(cl);
    redisFree(rc);
    wf_test_redis_stop(&srv);
    wf_test_remove_tree(dir);
    cr_assert(clean, "a sanitizer reported an error in a worker process");
}

TestSuite(schedule, .init = setup, .fini = teardown, .timeout = 90);

/* Starts a wf-worker supervisor with `processes` processes, in its own process group (as if on
 * its own host), logging to worker<i>.log, and waits until echo is registered: adding a schedule
 * of a workflow no worker registered is refused (a test adding one right after starting the
 * worker raced its registration). */
static void start_worker(const char *processes)
{
    char log[320];
    snprintf(log, sizeof log, "%s/worker%d.log", dir, nworkers);
    const char *names[] = {"echo", NULL};
    const char *extra[] = {"--processes", processes, NULL};
    const char *env[] = {exec_env, NULL};
    workers[nworkers++] = wf_test_worker_start(&(wf_test_worker){.redis_url = srv.url,
                                                                 .extra = extra,
                                                                 .env = env,
                                                                 .log_path = log,
                                                                 .rc = rc,
                                                                 .workflows = names});
}

static int all_completed(void *arg)
{
    (void)arg;
    long long done = wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed");
    long long other =
        wf_test_cmd_int(rc, "XLEN wf:{echo}:queue") + wf_test_cmd_int(rc, "ZCARD wf:{echo}:leases");
    return done > 0 && other == 0;
}

static int exec_count(const char *run_id)
{
    return wf_test_exec_lines(exec_path, run_id);
}

Test(schedule, fire_lua_is_compare_and_set)
{
    wf_error err = {0};
    cr_assert_eq(wf_schedule_add(cl, "cas", "echo", "@every 1s", NULL, 0, &err), WF_OK, "%s",
                 err.message);
    int64_t seen = schedule_due_at(rc, "cas");
    schedule_fire f;
    schedule_fire_init(&f, "cas", seen);

    /* Not due yet by Redis's clock: refused. */
    schedule_fire_refused(cl, &f, "early");
    cr_assert(wf_test_wait_redis_ms(rc, seen, 3000));

    redisReply *r = schedule_fire_call(cl, &f);
    cr_assert_eq(r->element[0]->integer, 1, "first caller fires");
    cr_assert_str_eq(r->element[1]->str, f.run_id);
    freeReplyObject(r);
    /* The same firing again (a racing worker that saw the same next_at): no second run. */
    schedule_fire_refused(cl, &f, "moved");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 1, "one run");
    char *input = wf_test_cmd_str(rc, "HGET %s schedule", f.run_key);
    cr_assert_str_eq(input, "cas");
    free(input);

    wf_schedule_info *s = NULL;
    size_t n = 0;
    cr_assert_eq(wf_schedule_list(cl, "echo", &s, &n, &err), WF_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(s[0].fires, 1);
    cr_assert_eq(s[0].last_at_ms, seen);
    cr_assert_eq(s[0].next_at_ms, seen + 1000);
    cr_assert_str_eq(s[0].last_run, f.run_id);
    wf_schedules_free(s, n);
    schedule_fire_free(&f);
}

/* The pids that logged a firing of `id` in worker<w>.log; returns how many (at most 8). */
static int firing_pids(int w, const char *id, long *pids)
{
    char path[320], needle[128];
    snprintf(path, sizeof path, "%s/worker%d.log", dir, w);
    snprintf(needle, sizeof needle, "msg=\"schedule %s of workflow echo fired", id);
    char *log = wf_test_slurp(path);
    int n = 0;
    for (char *p = log; (p = strstr(p, needle)); p++) {
        char *line = p;
        while (line > log && line[-1] != '\n') line--;
        char *pid = strstr(line, "pid=");
        long v = pid && pid < p ? strtol(pid + 4, NULL, 10) : 0;
        int k = 0;
        while (k < n && pids[k] != v) k++;
        if (k == n && n < 8) pids[n++] = v;
    }
    free(log);
    return n;
}

Test(schedule, each_firing_starts_one_run_with_four_processes)
{
    /* Two supervisors with two processes each, as if on two hosts: four schedulers racing. */
    start_worker("2");
    start_worker("2");
    msgpack_sbuffer in;
    msgpack_sbuffer_init(&in);
    wf_error err = {0};
    cr_assert_eq(wf_json_to_msgpack("{\"tick\":true}", 13, NULL, &in, &err), WF_OK);
    cr_assert_eq(wf_schedule_add(cl, "every-second", "echo", "@every 1s", in.data, in.size, &err),
                 WF_OK, "%s", err.message);
    msgpack_sbuffer_destroy(&in);
    cr_assert(schedule_wait_fires(rc, "every-second", 5, 15000), "5 firings within 15 s");
    /* Whichever process wins the race (the one whose tick comes first after the due time, so
     * usually the same one): stop its whole "host"; the other two take over, with no gap. */
    long pids[8];
    int gone = firing_pids(0, "every-second", pids) > 0 ? 0 : 1;
    int status = wf_test_kill(workers[gone], SIGTERM, 30000);
    workers[gone] = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "supervisor %d drained", gone);
    cr_assert(schedule_wait_fires(rc, "every-second", 10, 15000), "10 firings within 15 s");
    cr_assert_eq(wf_schedule_remove(cl, "echo", "every-second", &err), WF_OK, "%s", err.message);
    cr_assert(wf_test_wait(all_completed, NULL, 10000));

    int64_t t[256];
    int n = schedule_fires(rc, "every-second", t, 256);
    cr_assert_geq(n, 10);
    for (int i = 1; i < n; i++)
        cr_assert_eq(t[i] - t[i - 1], 1000,
                     "firings %d and %d are one interval apart (no gap, no duplicate): %lld %lld",
                     i - 1, i, (long long)t[i - 1], (long long)t[i]);
    for (int i = 0; i < n; i++) {
        char run_id[WF__ID_MAX];
        wf__sched_run_id("echo", "every-second", t[i], run_id);
        cr_assert_eq(exec_count(run_id), 1, "run %s executed once", run_id);
    }
    long long completed = wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed");
    cr_assert_eq(completed, n, "exactly one run per firing: %d firings, %lld runs", n, completed);
    int firing = firing_pids(0, "every-second", pids) + firing_pids(1, "every-second", pids);
    printf("schedule test: %d firings, %lld runs, fired by %d processes of 2 hosts\n", n, completed,
           firing);
    cr_assert_geq(firing, 2, "the surviving host took over the firings");
}

Test(schedule, catch_up_policies_after_no_worker_ran)
{
    wf_error err = {0};
    static const char *const ids[] = {"one", "all", "none"};
    for (int p = 0; p <= WF_CATCH_UP_NONE; p++) {
        wf_schedule_options o = {(wf_catch_up)p};
        cr_assert_eq(wf_schedule_add_ex(cl, ids[p], "echo", "@every 1s", NULL, 0, &o, &err), WF_OK,
                     "%s", err.message);
    }
    int64_t created = wf_test_redis_ms(rc);
    /* No worker for 3.5 s: three firings of each schedule pass. */
    struct timespec gap = {3, 500 * 1000000L};
    nanosleep(&gap, NULL);
    int64_t start = wf_test_redis_ms(rc);
    start_worker("1");
    /* Then on time again: wait for a firing at least a second after the worker started. */
    for (int p = 0; p <= WF_CATCH_UP_NONE; p++) {
        cr_assert(schedule_wait_fires(rc, ids[p], p == WF_CATCH_UP_ALL ? 5 : 2, 15000),
                  "%s fires again", ids[p]);
    }
    int64_t t[256];
    int missed_runs[3], ontime[3];
    for (int p = 0; p <= WF_CATCH_UP_NONE; p++) {
        int n = schedule_fires(rc, ids[p], t, 256);
        missed_runs[p] = ontime[p] = 0;
        for (int i = 0; i < n; i++) {
            if (t[i] < start - 1000) missed_runs[p]++; /* due over a second before any worker */
            if (t[i] >= start + 1000) ontime[p]++;
        }
    }
    int missed = (int)((start - 1000 - created) / 1000); /* firings due over a second earlier */
    printf("catch-up test: %d firings missed; runs for them: one=%d all=%d none=%d\n", missed,
           missed_runs[0], missed_runs[1], missed_runs[2]);
    cr_assert_geq(missed, 2);
    cr_assert_eq(missed_runs[WF_CATCH_UP_ONE], 1, "one: a single run for the missed firings");
    cr_assert_geq(missed_runs[WF_CATCH_UP_ALL], missed, "all: a run for each missed firing");
    cr_assert_eq(missed_runs[WF_CATCH_UP_NONE], 0, "none: missed firings skipped");
    for (int p = 0; p <= WF_CATCH_UP_NONE; p++)
        cr_assert_geq(ontime[p] + (p == WF_CATCH_UP_ALL), 1, "%s continues on time", ids[p]);
}

Test(schedule, remove_stops_firing_cli)
{
    start_worker("1");
    char *wf = wf_test_path("wf");
    char *out = NULL;
    const char *add[] = {wf,     "--redis",   srv.url,     "schedule",   "add", "gone-soon",
                         "echo", "@every 1s", "{\"x\":1}", "--catch-up", "all", NULL};
    cr_assert_eq(wf_test_run(add, NULL, NULL, &out, 10000), 0, "%s", out);
    free(out);
    const char *list[] = {wf, "--redis", srv.url, "--json", "schedule", "list", NULL};
    cr_assert_eq(wf_test_run(list, NULL, NULL, &out, 10000), 0);
    cr_assert(strstr(out, "\"id\":\"gone-soon\"") && strstr(out, "\"catchUp\":\"all\"") &&
                  strstr(out, "\"input\":{\"x\":1}"),
              "%s", out);
    free(out);
    const char *bad[] = {wf,  "--redis", srv.url,      "schedule", "add",
                         "x", "echo",    "61 * * * *", NULL};
    cr_assert_eq(wf_test_run(bad, NULL, NULL, &out, 10000), 6, "a bad spec is bad input");
    free(out);

    cr_assert(schedule_wait_fires(rc, "gone-soon", 2, 10000));
    const char *rm[] = {wf, "--redis", srv.url, "schedule", "remove", "gone-soon", NULL};
    cr_assert_eq(wf_test_run(rm, NULL, NULL, &out, 10000), 0, "%s", out);
    free(out);
    int64_t t[256];
    int before = schedule_fires(rc, "gone-soon", t, 256);
    struct timespec gap = {2, 500 * 1000000L};
    nanosleep(&gap, NULL);
    cr_assert_eq(schedule_fires(rc, "gone-soon", t, 256), before, "no firing after remove");
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{echo}:schedules:due"), 0);
    cr_assert_eq(wf_test_run(rm, NULL, NULL, &out, 10000), 2, "removing it again: not found");
    free(out);
    free(wf);
}
