/* example_env.h - the environment that test_cli.c and test_example.c share: a real redis-server
 * plus a real `wf-worker` that loads the example workflows (<build>/examples/workflows), ready
 * once publish-draft and order are registered. The code is in example_env.c; a suite that
 * includes this header is linked with it (tests/CMakeLists.txt). */
#ifndef WF_TEST_EXAMPLE_ENV_H
#define WF_TEST_EXAMPLE_ENV_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <wf/wf.h>

#include "harness.h"

typedef struct example_env {
    wf_test_redis redis;
    pid_t worker;
    char worker_log[300];
    char redis_env[160]; /* "WF_REDIS_URL=redis://..." for child processes */
    wf_client *client;   /* for asserting on Redis through the public API */
    redisContext *rc;    /* where the worker's registration is looked for */
} example_env;

/* Starts Redis and a worker for the example workflows; waits until publish-draft and order are
 * registered. Fails the test, leaving nothing behind, when they are not. */
void example_env_start(example_env *env);

/* Stops the worker (printing its log when it did not drain and exit 0) and the server. */
void example_env_stop(example_env *env);

/* Prints a child's log to stderr (to explain a failure). */
void example_env_dump(const char *path);

/* Reads run `id`'s status through the public API. Returns WF_OK and fills `st` (clear it). */
int example_env_status(example_env *env, const char *id, wf_status *st);

#endif
