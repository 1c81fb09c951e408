/* ops_env.h - what the suites of the `wf` command (test_cli_ops_*.c) and the dashboard's API
 * (test_web_api.c) share: a real redis-server, a real wf-worker running publish-draft and the test
 * workflows (slow, fatal, timeout, ...), the built `wf` command, and small Redis helpers. The
 * worker loads a private folder of links to exactly those modules, so other modules under
 * development in examples/workflows cannot break these tests. The state lives in ops_env.c; a
 * suite that includes this header is linked with it (tests/CMakeLists.txt). */
#ifndef WF_TEST_OPS_ENV_H
#define WF_TEST_OPS_ENV_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <wf/wf.h>

#include "harness.h"

typedef struct ops_env {
    wf_test_redis redis;
    pid_t worker;
    char worker_log[300];
    char redis_env[160]; /* "WF_REDIS_URL=redis://..." */
    wf_client *client;
    redisContext *rc; /* raw connection for asserting on keys */
} ops_env;

/* The test's environment, set by ops_env_start. */
extern ops_env env;

/* Starts the server, the client, the raw connection and the worker, and waits until the worker
 * registered; fails the test (leaving nothing behind) when it does not. */
void ops_env_start(void);

/* Stops and frees all of it. */
void ops_env_stop(void);

/* Runs `wf --redis URL ARGS...` (NULL-terminated); returns its exit code, *out its stdout. */
int wf(char **out, ...);

/* Parses text as JSON and frees it; fails the test when it is not JSON. */
json_t *parse(char *text);

/* The string member `key` of o, "" when there is none. */
const char *sfield(json_t *o, const char *key);

/* Starts a run with `wf run` (args after the name, NULL-terminated; at most 6) and returns its id
 * (malloc'd). */
char *start_run(const char *name, const char *a1, const char *a2, const char *a3, const char *a4);

/* The run's state through the public API ("" when it cannot be read). */
const char *state_of(const char *id);

/* Waits up to 15 s for run `id` to be in `state`; fails the test when it is not. */
void wait_state(const char *id, const char *state);

/* Redis TIME in ms. */
long long redis_now(void);

#endif
