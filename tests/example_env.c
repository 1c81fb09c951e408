/* example_env.c - the example workflows' environment (example_env.h): a server and a worker on
 * <build>/examples/workflows. */
#include "example_env.h"

void example_env_dump(const char *path)
{
    char *log = wf_test_slurp(path);
    fprintf(stderr, "---- %s ----\n%s", path, log);
    free(log);
}

static void stop_env(void *arg)
{
    example_env_stop(arg);
}

void example_env_start(example_env *env)
{
    memset(env, 0, sizeof *env);
    cr_assert_eq(wf_test_redis_start(&env->redis, NULL), 0, "redis-server did not start");
    snprintf(env->redis_env, sizeof env->redis_env, "WF_REDIS_URL=%s", env->redis.url);
    snprintf(env->worker_log, sizeof env->worker_log, "%s/worker.log", env->redis.dir);
    env->client = wf_test_client(env->redis.url);
    env->rc = wf_test_redis_connect(&env->redis);
    cr_assert_not_null(env->rc);
    char *workflows = wf_test_path("examples/workflows");
    const char *envp[] = {env->redis_env, NULL};
    /* A failed .init gets no .fini: example_env_stop leaves no server behind. */
    env->worker = wf_test_worker_start(
        &(wf_test_worker){.redis_url = env->redis.url,
                          .workflows_dir = workflows,
                          .env = envp,
                          .log_path = env->worker_log,
                          .rc = env->rc,
                          .workflows = (const char *[]){"publish-draft", "order", NULL},
                          .timeout_ms = 15000,
                          .before_failing = stop_env,
                          .before_failing_arg = env});
    free(workflows);
}

void example_env_stop(example_env *env)
{
    if (env->worker > 0) {
        int status = wf_test_kill(env->worker, SIGTERM, 15000);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) example_env_dump(env->worker_log);
    }
    if (env->rc) redisFree(env->rc);
    wf_client_free(env->client);
    wf_test_redis_stop(&env->redis);
    memset(env, 0, sizeof *env);
}

int example_env_status(example_env *env, const char *id, wf_status *st)
{
    wf_run *run = wf_get_workflow_run(env->client, id, NULL);
    if (!run) return WF_ERR_NOT_FOUND;
    int rc = wf_run_status(run, st, NULL);
    wf_run_free(run);
    return rc;
}
