/* cli_ops_env.c - the shared set-up and helpers of the `wf` operator-verb suites (cli_ops_env.h).
 */
#include <criterion/criterion.h>

#include "cli_ops_env.h"
#include "wf_internal.h"

void cli_ops_setup(void)
{
    ops_env_start();
}

void cli_ops_teardown(void)
{
    ops_env_stop();
}

/* A workflow that is registered but has no worker: its runs stay queued. */
char *queued_run(void)
{
    redisReply *r = wf_test_command(env.rc, "HSET wf:workflows idle {}");
    freeReplyObject(r);
    return start_run("idle", NULL, NULL, NULL, NULL);
}

/* Writes a step record into run `id`'s steps hash, as the worker's step engine would. */
void put_step(const char *id, const char *name, const char *kind, const char *status, long long t0,
              long long t1, const char *error, const char *result_json)
{
    wf__steprec rec = {0};
    snprintf(rec.kind, sizeof rec.kind, "%s", kind);
    snprintf(rec.status, sizeof rec.status, "%s", status);
    rec.attempts = 1;
    rec.t0 = t0;
    rec.t1 = t1;
    rec.error = error;
    msgpack_sbuffer result;
    msgpack_sbuffer_init(&result);
    if (result_json) {
        cr_assert_eq(wf_json_to_msgpack(result_json, strlen(result_json), NULL, &result, NULL),
                     WF_OK);
        rec.result = result.data;
        rec.result_len = result.size;
    }
    if (strcmp(kind, "event") == 0) snprintf(rec.event, sizeof rec.event, "approved");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(wf__steprec_encode(&rec, &sb), WF_OK);
    char wfname[WF__NAME_MAX + 1];
    cr_assert_eq(wf__runid_parse(id, wfname, NULL), WF_OK);
    char *key = wf__key_steps("wf", wfname, id);
    redisReply *r = wf_test_command(env.rc, "HSET %s %s %b", key, name, sb.data, sb.size);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    free(key);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&result);
}

long long run_key_exists(char *(*key_of)(const char *, const char *, const char *), const char *id)
{
    char wfname[WF__NAME_MAX + 1];
    wf__runid_parse(id, wfname, NULL);
    char *key = key_of("wf", wfname, id);
    long long n = wf_test_cmd_int(env.rc, "EXISTS %s", key);
    free(key);
    return n;
}

long long steps_exist(const char *id)
{
    return run_key_exists(wf__key_steps, id);
}

/* Runs `/bin/sh -c CMD` where CMD is `fmt` formatted; "$WF" in it is the built wf with --redis.
 * Returns the exit code, *out the shell's stdout (caller frees). */
int sh(char **out, const char *fmt, ...)
{
    char *bin = wf_test_path("wf"), cmd[2048], prefix[600];
    snprintf(prefix, sizeof prefix, "WF='%s --redis %s'; ", bin, env.redis.url);
    size_t n = strlen(prefix);
    memcpy(cmd, prefix, n + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - n, fmt, ap);
    va_end(ap);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    int rc = wf_test_run(argv, NULL, NULL, out, 30000);
    free(bin);
    return rc;
}

json_int_t ifield(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}
