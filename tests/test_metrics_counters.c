/* test_metrics_counters.c - wf-worker --http's health, readiness and Prometheus metrics whose
 * counters match the runs done (every family well formed, the dashboards' and alerts' names
 * present), and a queue entry of a deleted run logged and counted. Real redis-server, real
 * wf-worker processes (metrics_env.h); every wait polls a condition with a deadline. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics_env.h"

TestSuite(metrics, .init = metrics_setup, .fini = metrics_teardown, .timeout = 120);

/* 1 when no client is blocked in Redis (INFO clients, every master on a cluster). */
static int no_blocked_reader(void *arg)
{
    (void)arg;
    char *info = wf_test_cmd_str(rc, "INFO clients");
    int blocked = 0;
    for (const char *p = info; p && (p = strstr(p, "blocked_clients:")); p++)
        blocked += atoi(p + strlen("blocked_clients:"));
    int ok = info && blocked == 0;
    free(info);
    return ok;
}

Test(metrics, health_readiness_and_counters_match_the_runs)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--concurrency", "4", NULL});
    wait_http(http_port, "/healthz", 200);
    wait_http(http_port, "/readyz", 200);
    char *body = NULL;
    cr_assert_eq(http_get(http_port, "/healthz", NULL, &body), 200);
    cr_assert_str_eq(body, "ok\n");
    free(body);
    cr_assert_eq(http_get(http_port, "/nope", NULL, NULL), 404);

    enum { N = 20 };
    wf_run *runs[N];
    for (int i = 0; i < N; i++) runs[i] = start_json("echo", "{\"n\": 1}");
    count_wait c = {"wf:{echo}:state:completed", N};
    cr_assert(wf_test_wait(zcard_is, &c, 30000), "the echo runs completed");
    wait_metric("wf_runs_completed_total", "workflow=\"echo\"", N);
    cr_assert_eq(value(&scraped, "wf_attempts_started_total", "workflow=\"echo\""), N);
    cr_assert_eq(value(&scraped, "wf_runs_failed_total", "workflow=\"echo\""), 0);
    const char *echo_ok = "workflow=\"echo\",outcome=\"completed\"";
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count", echo_ok), N);
    char inf[128];
    snprintf(inf, sizeof inf, "%s,le=\"+Inf\"", echo_ok);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_bucket", inf), N);
    cr_assert_str_eq(family_type(&scraped, "wf_attempt_duration_seconds"), "histogram");
    cr_assert_str_eq(family_type(&scraped, "wf_attempts_started_total"), "counter");
    /* The old names stay for one release, with the same values, marked deprecated. */
    cr_assert_eq(value(&scraped, "wf_runs_started_total", "workflow=\"echo\""), N);
    cr_assert_eq(value(&scraped, "wf_run_duration_seconds_count", "workflow=\"echo\""), N);
    cr_assert_eq(value(&scraped, "wf_run_duration_seconds_bucket", "workflow=\"echo\",le=\"+Inf\""),
                 N);
    cr_assert(strstr(scraped_text, "# HELP wf_runs_started_total Deprecated: use "
                                   "wf_attempts_started_total"),
              "wf_runs_started_total is marked deprecated");
    cr_assert(strstr(scraped_text, "# HELP wf_run_duration_seconds Deprecated: use "
                                   "wf_attempt_duration_seconds"),
              "wf_run_duration_seconds is marked deprecated");
    cr_assert_eq(value(&scraped, "wf_runs_in_flight", "workflow=\"echo\""), 0);
    cr_assert_eq(value(&scraped, "wf_worker_concurrency", ""), 4);
    cr_assert_eq(value(&scraped, "wf_worker_ready", ""), 1);
    cr_assert_str_eq(family_type(&scraped, "wf_run_duration_seconds"), "histogram");
    cr_assert_str_eq(family_type(&scraped, "wf_runs_completed_total"), "counter");
    cr_assert_str_eq(family_type(&scraped, "wf_queue_depth"), "gauge");

    /* Which build answers, and the process_* metrics of the Prometheus client libraries. */
    char build[128];
    snprintf(build, sizeof build, "version=\"%s\",schema=\"2\"", WF_VERSION);
    cr_assert_eq(value(&scraped, "wf_build_info", build), 1, "wf_build_info{%s}", build);
    cr_assert_str_eq(family_type(&scraped, "wf_build_info"), "gauge");
    cr_assert_str_eq(family_type(&scraped, "process_cpu_seconds_total"), "counter");
    cr_assert_geq(value(&scraped, "process_cpu_seconds_total", ""), 0);
    double rss = value(&scraped, "process_resident_memory_bytes", "");
    cr_assert(rss > 1e5 && rss < 1e10, "resident memory %g", rss);
    cr_assert_gt(value(&scraped, "process_virtual_memory_bytes", ""), rss);
    double started = value(&scraped, "process_start_time_seconds", ""), now = (double)time(NULL);
    cr_assert(started > now - 600 && started <= now + 2, "started at %f, now %f", started, now);
    double fds = value(&scraped, "process_open_fds", ""),
           max_fds = value(&scraped, "process_max_fds", "");
    cr_assert(fds >= 3 && fds <= max_fds, "%g open fds of %g", fds, max_fds);

    wf_run *fatal = start_json("fatal", "null");
    wait_metric("wf_runs_failed_total", "workflow=\"fatal\"", 1);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count",
                       "workflow=\"fatal\",outcome=\"failed\""),
                 1);
    cr_assert(isnan(value(&scraped, "wf_attempt_duration_seconds_count",
                          "workflow=\"fatal\",outcome=\"completed\"")),
              "no series for an outcome not seen");
    cr_assert_eq(value(&scraped, "wf_runs_completed_total", "workflow=\"fatal\""), 0);
    cr_assert_eq(value(&scraped, "wf_runs_completed_total", "workflow=\"echo\""), N);

    /* A retried attempt, then its completion; a timeout; and durable steps. */
    wf_run *flaky = start_json("flaky", "null");
    wait_metric("wf_runs_completed_total", "workflow=\"flaky\"", 1);
    cr_assert_eq(value(&scraped, "wf_runs_retried_total", "workflow=\"flaky\""), 1);
    cr_assert_eq(value(&scraped, "wf_attempts_started_total", "workflow=\"flaky\""), 2);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count",
                       "workflow=\"flaky\",outcome=\"retried\""),
                 1);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count",
                       "workflow=\"flaky\",outcome=\"completed\""),
                 1);
    wf_run *overrun = start_json("timeout", "null");
    wait_metric("wf_runs_terminated_total", "workflow=\"timeout\"", 1);
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"timeout\",outcome=\"terminated\"",
                1);
    wf_run *steps = start_json("stepper", "{\"n\": 3}");
    wait_metric("wf_step_duration_seconds_count", "workflow=\"stepper\"", 3);
    /* A durable sleep suspends the attempt; a second attempt completes the run. */
    wf_run *napper = start_json("stepper", "{\"n\": 2, \"sleep_ms\": 300}");
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"stepper\",outcome=\"suspended\"",
                1);
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"stepper\",outcome=\"completed\"",
                2);

    double rtt = value(&scraped, "wf_redis_rtt_seconds", "");
    cr_assert(rtt >= 0 && rtt < 5, "rtt %g", rtt);
    wait_metric("wf_queue_depth", "workflow=\"echo\"", 0); /* refreshed every second */

    /* Gauges of a backlog: four slow runs hold every slot, three echo runs wait in the queue,
     * one on each priority lane: the depth counts them all. */
    wf_run *slow[4], *queued[3];
    for (int i = 0; i < 4; i++) slow[i] = start_json("slow", "6000");
    wait_metric("wf_runs_in_flight", "workflow=\"slow\"", 4);
    /* With every slot taken no read is re-armed; on a cluster a workflow's blocking read armed
     * while slots were free may still be waiting (up to its 1 s BLOCK) and would take the echo
     * runs: wait until Redis holds no blocked reader. */
    cr_assert(wf_test_wait(no_blocked_reader, NULL, 5000), "a read is still blocked in Redis");
    for (int i = 0; i < 3; i++) queued[i] = start_prio("echo", "2", i - 1);
    wait_metric("wf_queue_depth", "workflow=\"echo\"", 3);
    cr_assert_geq(value(&scraped, "wf_queue_oldest_age_seconds", "workflow=\"echo\""), 0);
    /* A run stopped while its handler runs: the attempt ends cancelled. */
    wf_error err = {0};
    cr_assert_eq(wf_run_stop(slow[0], &err), WF_OK, "%s", err.message);
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"slow\",outcome=\"cancelled\"", 1);
    for (int i = 0; i < 4; i++) wf_run_free(slow[i]);
    for (int i = 0; i < 3; i++) wf_run_free(queued[i]);
    for (int i = 0; i < N; i++) wf_run_free(runs[i]);
    wf_run_free(fatal);
    wf_run_free(flaky);
    wf_run_free(overrun);
    wf_run_free(steps);
    wf_run_free(napper);

    /* The alert rules and the Grafana dashboard shipped in docs/monitoring name only metrics
     * that exist (the last scrape has every family, the attempt outcomes included). */
    cr_assert_gt(names_in_scrape("docs/monitoring/wf-alerts.yml"), 10);
    cr_assert_gt(names_in_scrape("docs/monitoring/wf-grafana.json"), 20);
}

/* A queue entry whose run hash is gone (expired, or deleted by hand) is dropped with a warning
 * that says so and counted, not skipped in silence. */
Test(metrics, queue_entry_of_a_deleted_run_is_logged_and_counted)
{
    cr_assert_geq(wf_test_cmd_int(rc, "HSET wf:workflows echo {}"), 0); /* before any worker */
    wf_run *gone[2], *kept = NULL;
    /* Runs with hashes (a caller's ids: not lean, schema 2), whose hashes then go. */
    for (int i = 0; i < 2; i++)
        gone[i] = wf_test_start_json(cl, "echo", "{\"n\": 1}",
                                     &(wf_run_options){.id = i ? "gone-1" : "gone-0"});
    kept = start_json("echo", "{\"n\": 2}");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(wf_test_cmd_int(rc, "DEL wf:{echo}:run:%s", wf_run_id(gone[i])), 1);
        wf_run_free(gone[i]);
    }
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wait_metric("wf_queue_entries_orphaned_total", "workflow=\"echo\"", 2);
    count_wait c = {"wf:{echo}:state:completed", 1};
    cr_assert(wf_test_wait(zcard_is, &c, 15000), "the run that still exists completed");
    wf_run_free(kept);
    char *log = wf_test_slurp(log_path);
    int warned = 0;
    for (const char *p = log; p && (p = strstr(p, "does not exist any more")); p++) warned++;
    free(log);
    cr_assert_eq(warned, 2, "one warning per dropped entry");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0, "the entries are gone");
}
