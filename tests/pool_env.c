/* pool_env.c - the shared state and set-up of the worker-pool suites (pool_env.h): the server,
 * client, temp folder and logs of one test, the stop-and-check teardown, and waiting for a run's
 * state. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pool_env.h"
#include "wf_internal.h"

wf_test_redis srv;
redisContext *rc;
wf_client *cl;
char dir[256];
char log_path[300], exec_path[300], exec_env[340], port_env[64];
pid_t worker_pid;

void pool_env_setup(const char *tag)
{
    pool_env_setup_with(tag, NULL);
}

void pool_env_setup_with(const char *tag, const char *extra_conf)
{
    cr_assert_eq(wf_test_redis_start(&srv, extra_conf), 0);
    rc = wf_test_redis_connect(&srv);
    cl = wf_test_client(srv.url);
    wf_test_temp_dir(dir, sizeof dir, tag);
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    snprintf(exec_path, sizeof exec_path, "%s/exec.log", dir);
    snprintf(exec_env, sizeof exec_env, "WF_TEST_EXEC_LOG=%s", exec_path);
    snprintf(port_env, sizeof port_env, "WF_TEST_REDIS_PORT=%d", srv.port);
    worker_pid = 0;
}

pid_t pool_env_worker(const char *const *args, const char *extra_env, const char *const *workflows)
{
    const char *env[] = {exec_env, port_env, extra_env, NULL};
    return wf_test_worker_start(&(wf_test_worker){.redis_url = srv.url,
                                                  .extra = args,
                                                  .env = env,
                                                  .log_path = log_path,
                                                  .rc = rc,
                                                  .workflows = workflows});
}

/* Stops the worker with SIGTERM (it must drain and exit within 30 s); returns its wait status,
 * 0 when none ran. */
int pool_env_stop_worker(void)
{
    int status = 0;
    if (worker_pid > 0) status = wf_test_kill(worker_pid, SIGTERM, 30000);
    if (worker_pid <= 0) status = 0;
    worker_pid = 0;
    return status;
}

/* Frees what pool_env_setup made; fails the test when the worker (wait status `status`) did not
 * exit 0 or a sanitizer spoke in its log ($WF_TEST_SHOW_LOG prints the log anyway). */
void pool_env_finish(int status)
{
    int drained = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int clean = wf_test_log_quiet(log_path, !drained);
    wf_client_free(cl);
    cl = NULL;
    if (rc) redisFree(rc);
    rc = NULL;
    wf_test_redis_stop(&srv);
    wf_test_remove_tree(dir);
    cr_assert(clean, "a sanitizer reported an error in a worker process");
    cr_assert(drained, "wf-worker did not drain and exit 0 on SIGTERM (status 0x%x)", status);
}

void pool_env_teardown(void)
{
    pool_env_finish(pool_env_stop_worker());
}

/* ---- waiting for runs ------------------------------------------------------------------------ */

/* Waits up to `ms` for `run` to be in `state`, then fills `st` (caller clears); fails the test
 * with the worker's log when it is not. */
void wait_state(wf_run *run, wf_state state, int ms, wf_status *st)
{
    wf_test_wait_state(run, state, ms, st, log_path);
}

/* The run's output as compact JSON (caller frees). */
char *output_json(const wf_status *st)
{
    char *json = NULL;
    cr_assert_not_null(st->output);
    cr_assert_eq(wf_msgpack_to_json(st->output, st->output_len, &json, NULL), WF_OK);
    return json;
}

/* wait_state, keeping no status. */
void await_state(wf_run *run, wf_state state, int ms)
{
    wf_status st;
    wait_state(run, state, ms, &st);
    wf_status_clear(&st);
}

/* Asserts `run` is in `state` now, without waiting. */
void assert_state_now(wf_run *run, wf_state state)
{
    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, NULL), WF_OK);
    cr_assert_eq(st.state, state, "run %s is %s, not %s", wf_run_id(run), wf_state_name(st.state),
                 wf_state_name(state));
    wf_status_clear(&st);
}

/* Waits up to `ms` for `run` to complete and asserts its output, as compact JSON, is `want`. */
void expect_output(wf_run *run, int ms, const char *want)
{
    wf_status st;
    wait_state(run, WF_STATE_COMPLETED, ms, &st);
    char *json = output_json(&st);
    cr_assert_str_eq(json, want, "run %s's output is %s, not %s", wf_run_id(run), json, want);
    free(json);
    wf_status_clear(&st);
}
