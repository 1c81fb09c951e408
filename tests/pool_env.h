/* pool_env.h - what the end-to-end suites that run real wf-worker pools on the test workflows
 * share (test_steps.c, test_invoke.c, test_metrics_*.c, test_webhook.c, test_worker_*.c): a real
 * redis-server, a client, a temp folder with the worker's log and the step bodies' execution log
 * ($WF_TEST_EXEC_LOG, $WF_TEST_REDIS_PORT for tests/workflows/stepper.c), and a teardown that fails
 * the test when the worker did not drain and exit 0 or a sanitizer spoke in its log. The state
 * lives in pool_env.c; a suite that includes this header is linked with it (tests/CMakeLists.txt).
 */
#ifndef WF_TEST_POOL_ENV_H
#define WF_TEST_POOL_ENV_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "wf_internal.h"

/* The test's server, raw connection, client and temp folder; set by pool_env_setup. */
extern wf_test_redis srv;
extern redisContext *rc;
extern wf_client *cl;
extern char dir[256];
/* dir/worker.log, dir/exec.log, "WF_TEST_EXEC_LOG=...", "WF_TEST_REDIS_PORT=..." */
extern char log_path[300], exec_path[300], exec_env[340], port_env[64];
/* The worker pool_env_stop_worker stops (0: none). */
extern pid_t worker_pid;

/* `tag` names the temp folder: /tmp/wf-test-TAG-XXXXXX. */
void pool_env_setup(const char *tag);
/* The same with lines for the server's config (wf_test_redis_start's extra_conf). */
void pool_env_setup_with(const char *tag, const char *extra_conf);

/* Starts wf-worker on srv with the test workflows and `args` (NULL-terminated), its log at
 * log_path, exec_env and port_env in its environment plus `extra_env` (NULL: none), and waits
 * until `workflows` are registered (NULL: no wait). Returns its pid. */
pid_t pool_env_worker(const char *const *args, const char *extra_env, const char *const *workflows);

/* Stops the worker with SIGTERM (it must drain and exit within 30 s); returns its wait status,
 * 0 when none ran. */
int pool_env_stop_worker(void);

/* Frees what pool_env_setup made; fails the test when the worker (wait status `status`) did not
 * exit 0 or a sanitizer spoke in its log ($WF_TEST_SHOW_LOG prints the log anyway). */
void pool_env_finish(int status);

/* pool_env_finish(pool_env_stop_worker()). */
void pool_env_teardown(void);

/* Waits up to `ms` for `run` to be in `state`, then fills `st` (caller clears); fails the test
 * with the worker's log when it is not. */
void wait_state(wf_run *run, wf_state state, int ms, wf_status *st);

/* The run's output as compact JSON (caller frees). */
char *output_json(const wf_status *st);

/* wait_state, keeping no status. */
void await_state(wf_run *run, wf_state state, int ms);

/* Asserts `run` is in `state` now, without waiting. */
void assert_state_now(wf_run *run, wf_state state);

/* Waits up to `ms` for `run` to complete and asserts its output, as compact JSON, is `want`. */
void expect_output(wf_run *run, int ms, const char *want);

#endif
