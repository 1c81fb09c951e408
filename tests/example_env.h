/* example_env.h - the environment that test_cli.c and test_example.c share: a real redis-server
 * plus a real `wf-worker` that loads the example workflows (<build>/examples/workflows), ready
 * once publish-draft and order are registered. Header-only: each test program includes it once. */
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
} example_env;

/* Prints a child's log to stderr (to explain a failed wait). */
static inline void example_env_dump(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    fprintf(stderr, "---- %s ----\n", path);
    while (fgets(line, sizeof line, f)) fputs(line, stderr);
    fclose(f);
}

static inline int example_env_registered(void *arg)
{
    example_env *env = arg;
    char **names = NULL;
    size_t count = 0;
    if (wf_list_workflows(env->client, &names, &count, NULL) != WF_OK) return 0;
    int found = 0;
    for (size_t i = 0; i < count; i++)
        found |= (strcmp(names[i], "publish-draft") == 0) | (strcmp(names[i], "order") == 0) << 1;
    wf_list_free(names, count);
    return found == 3;
}

static inline void example_env_stop(example_env *env);

/* Starts Redis and a worker for the example workflows; waits until publish-draft is registered. */
static inline void example_env_start(example_env *env)
{
    memset(env, 0, sizeof *env);
    cr_assert_eq(wf_test_redis_start(&env->redis, NULL), 0, "redis-server did not start");
    snprintf(env->redis_env, sizeof env->redis_env, "WF_REDIS_URL=%s", env->redis.url);
    snprintf(env->worker_log, sizeof env->worker_log, "%s/worker.log", env->redis.dir);
    wf_error err = {0};
    env->client = wf_client_connect(env->redis.url, &err);
    cr_assert_not_null(env->client, "connect: %s", err.message);

    char *worker = wf_test_path("wf-worker");
    char *workflows = wf_test_path("examples/workflows");
    const char *argv[] = {worker, "--workflows", workflows, NULL};
    const char *envp[] = {env->redis_env, NULL};
    env->worker = wf_test_spawn(argv, envp, env->worker_log);
    free(worker);
    free(workflows);
    cr_assert_gt(env->worker, 0, "cannot spawn wf-worker");
    if (!wf_test_wait(example_env_registered, env, 15000)) {
        example_env_dump(env->worker_log);
        /* Criterion runs no .fini after a failed .init: leave no worker behind. */
        example_env_stop(env);
        cr_assert_fail("wf-worker did not register publish-draft within 15 s");
    }
}

static inline void example_env_stop(example_env *env)
{
    if (env->worker > 0) {
        int status = wf_test_kill(env->worker, SIGTERM, 15000);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) example_env_dump(env->worker_log);
    }
    wf_client_free(env->client);
    wf_test_redis_stop(&env->redis);
    memset(env, 0, sizeof *env);
}

/* Reads run `id`'s status through the public API. Returns WF_OK and fills `st` (clear it). */
static inline int example_env_status(example_env *env, const char *id, wf_status *st)
{
    wf_run *run = wf_get_workflow_run(env->client, id, NULL);
    if (!run) return WF_ERR_NOT_FOUND;
    int rc = wf_run_status(run, st, NULL);
    wf_run_free(run);
    return rc;
}

#endif
