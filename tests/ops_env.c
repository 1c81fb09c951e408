/* ops_env.c - the environment of the `wf` command and dashboard suites (ops_env.h): a server, a
 * worker on a private folder of workflow modules, the client, and the helpers that run `wf` and
 * read runs' states. */
#include "ops_env.h"

ops_env env;

static void ops_link(const char *dir, const char *rel)
{
    char *src = wf_test_path(rel), dst[400];
    const char *base = strrchr(rel, '/');
    snprintf(dst, sizeof dst, "%s/%s", dir, base ? base + 1 : rel);
    cr_assert_eq(symlink(src, dst), 0, "symlink %s", src);
    free(src);
}

static void stop_env(void *arg)
{
    (void)arg;
    ops_env_stop();
}

void ops_env_start(void)
{
    memset(&env, 0, sizeof env);
    cr_assert_eq(wf_test_redis_start(&env.redis, NULL), 0, "redis-server did not start");
    snprintf(env.redis_env, sizeof env.redis_env, "WF_REDIS_URL=%s", env.redis.url);
    snprintf(env.worker_log, sizeof env.worker_log, "%s/worker.log", env.redis.dir);
    env.client = wf_test_client(env.redis.url);
    env.rc = wf_test_redis_connect(&env.redis);
    cr_assert_not_null(env.rc);

    char mods[300];
    snprintf(mods, sizeof mods, "%s/workflows", env.redis.dir);
    cr_assert_eq(mkdir(mods, 0755), 0);
    ops_link(mods, "examples/workflows/publish-draft.so");
    ops_link(mods, "tests/workflows/slow.so");
    ops_link(mods, "tests/workflows/fatal.so");
    ops_link(mods, "tests/workflows/timeout.so");
    const char *envp[] = {env.redis_env, NULL};
    /* A failed .init gets no .fini: ops_env_stop leaves no server behind. */
    env.worker = wf_test_worker_start(
        &(wf_test_worker){.redis_url = env.redis.url,
                          .workflows_dir = mods,
                          .env = envp,
                          .log_path = env.worker_log,
                          .rc = env.rc,
                          .workflows = (const char *[]){"publish-draft", "slow", NULL},
                          .timeout_ms = 15000,
                          .before_failing = stop_env});
}

void ops_env_stop(void)
{
    if (env.worker > 0) wf_test_kill(env.worker, SIGTERM, 15000);
    if (env.rc) redisFree(env.rc);
    wf_client_free(env.client);
    wf_test_redis_stop(&env.redis);
    memset(&env, 0, sizeof env);
}

/* Runs `wf --redis URL ARGS...` (NULL-terminated); returns its exit code, *out its stdout. */
int wf(char **out, ...)
{
    char *bin = wf_test_path("wf");
    const char *argv[32] = {bin, "--redis", env.redis.url};
    int n = 3;
    va_list ap;
    va_start(ap, out);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    int rc = wf_test_run(argv, NULL, NULL, out, 30000);
    free(bin);
    return rc;
}

/* Parses text as JSON and frees it; fails the test when it is not JSON. */
json_t *parse(char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text ? text : "", JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(v, "not JSON (%s): %s", jerr.text, text ? text : "(null)");
    free(text);
    return v;
}

const char *sfield(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Starts a run with `wf run` (args after the name, NULL-terminated; at most 6) and returns its id
 * (malloc'd). */
char *start_run(const char *name, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *out;
    int rc = wf(&out, "run", name, a1, a2, a3, a4, NULL);
    cr_assert(rc == 0 || rc == 4, "wf run %s: exit %d", name, rc);
    json_t *doc = parse(out);
    char *id = strdup(sfield(doc, "runId"));
    json_decref(doc);
    cr_assert(id[0], "no runId");
    return id;
}

/* The run's state through the public API ("" when it cannot be read). */
const char *state_of(const char *id)
{
    wf_run *run = wf_get_workflow_run(env.client, id, NULL);
    if (!run) return "";
    wf_status st = {0};
    wf_state s = wf_run_status(run, &st, NULL) == WF_OK ? st.state : WF_STATE_UNKNOWN;
    wf_status_clear(&st);
    wf_run_free(run);
    return s == WF_STATE_UNKNOWN ? "" : wf_state_name(s);
}

typedef struct state_wait {
    const char *id, *state;
} state_wait;

static int reached(void *arg)
{
    state_wait *w = arg;
    return strcmp(state_of(w->id), w->state) == 0;
}

void wait_state(const char *id, const char *state)
{
    state_wait w = {id, state};
    cr_assert(wf_test_wait(reached, &w, 15000), "%s never became %s (is %s)", id, state,
              state_of(id));
}

/* Redis TIME in ms. */
long long redis_now(void)
{
    return wf_test_redis_ms(env.rc);
}
