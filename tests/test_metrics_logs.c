/* test_metrics_logs.c - wf-worker --log-format json: its lines carry the run's and the step's
 * fields. Real redis-server, real wf-worker processes (metrics_env.h); every wait polls a
 * condition with a deadline. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics_env.h"

TestSuite(metrics, .init = metrics_setup, .fini = metrics_teardown, .timeout = 120);

static int log_has_run_line(void *arg)
{
    (void)arg;
    char *log = wf_test_slurp(log_path);
    int ok = strstr(log, "\"step\":\"flaky\"") != NULL && strstr(log, "attempt failed") != NULL;
    free(log);
    return ok;
}

Test(metrics, json_logs_carry_run_and_step_fields)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--log-format", "json", NULL});
    wf_run *fatal = start_json("fatal", "null");
    wf_run *steps = start_json("stepper", "{\"n\": 1, \"flaky\": 2}");
    cr_assert(wf_test_wait(log_has_run_line, NULL, 20000), "the run and step lines were logged");
    char *log = wf_test_slurp(log_path), *save = NULL;
    int lines = 0, run_line = 0, step_line = 0;
    for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *o = json_loads(l, 0, &e);
        cr_assert(json_is_object(o), "not a JSON line: %s (%s)", l, e.text);
        cr_assert(json_is_string(json_object_get(o, "ts")), "%s", l);
        cr_assert(json_is_string(json_object_get(o, "level")), "%s", l);
        cr_assert(json_is_integer(json_object_get(o, "pid")), "%s", l);
        cr_assert(json_is_string(json_object_get(o, "msg")), "%s", l);
        const char *run = json_string_value(json_object_get(o, "run"));
        if (run && strcmp(run, wf_run_id(fatal)) == 0) {
            cr_assert_str_eq(json_string_value(json_object_get(o, "workflow")), "fatal");
            cr_assert_eq(json_integer_value(json_object_get(o, "attempt")), 1);
            run_line = 1;
        }
        const char *step = json_string_value(json_object_get(o, "step"));
        if (step && strcmp(step, "flaky") == 0) {
            cr_assert_str_eq(run, wf_run_id(steps));
            step_line = 1;
        }
        json_decref(o);
        lines++;
    }
    free(log);
    cr_assert_gt(lines, 3);
    cr_assert(run_line && step_line, "a run line (%d) and a step line (%d)", run_line, step_line);
    wf_run_free(fatal);
    wf_run_free(steps);
}
