/* harness_wf.c - test helpers on top of wf's own API and the worker's files (harness.h): starting
 * a run from JSON, comparing a payload with JSON, counting a run's lines in the test workflows'
 * exec log, and reading a worker's log for sanitizer reports. Written once here because nearly
 * every worker suite needs them. */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "harness.h"

void wf_test_temp_dir(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/wf-test-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

long long wf_test_redis_ms(redisContext *c)
{
    redisReply *r = wf_test_command(c, "TIME");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "Redis TIME");
    long long ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
}

struct redis_clock {
    redisContext *c;
    long long at_ms;
};

static int redis_clock_reached(void *arg)
{
    const struct redis_clock *rc = arg;
    return wf_test_redis_ms(rc->c) >= rc->at_ms;
}

int wf_test_wait_redis_ms(redisContext *c, long long at_ms, int timeout_ms)
{
    struct redis_clock clock = {c, at_ms};
    return wf_test_wait(redis_clock_reached, &clock, timeout_ms);
}

void wf_test_msgpack(const char *json, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    wf_error err = {0};
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, sb, &err), WF_OK, "%s: %s", json,
                 err.message);
}

void wf_test_packer(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

wf_run *wf_test_start_json(wf_client *cl, const char *workflow, const char *json,
                           const wf_run_options *opt)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (json) wf_test_msgpack(json, &sb);
    wf_error err = {0};
    wf_run *run = wf_run_workflow_ex(cl, workflow, sb.data, sb.size, opt, &err);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(run, "%s: %s", workflow, err.message);
    return run;
}

void wf_test_assert_json_is(const void *data, size_t len, const char *expect)
{
    char *out = NULL;
    wf_error err = {0};
    cr_assert_eq(wf_msgpack_to_json(data, len, &out, &err), WF_OK, "%s", err.message);
    cr_assert_str_eq(out, expect);
    free(out);
}

int wf_test_exec_lines(const char *path, const char *id)
{
    char *log = wf_test_slurp(path);
    int n = 0;
    size_t len = strlen(id);
    for (char *p = log; (p = strstr(p, id)); p += len)
        if ((p == log || p[-1] == '\n') && p[len] == ' ') n++;
    free(log);
    return n;
}

int wf_test_log_quiet(const char *path, int show)
{
    char *log = wf_test_slurp(path);
    int quiet = !strstr(log, "Sanitizer") && !strstr(log, "runtime error");
    if (!quiet || show || getenv("WF_TEST_SHOW_LOG")) fprintf(stderr, "%s:\n%s", path, log);
    free(log);
    return quiet;
}

wf_client *wf_test_client(const char *url)
{
    wf_error err = {0};
    wf_client *cl = wf_client_connect(url, &err);
    cr_assert_not_null(cl, "wf_client_connect(%s): %s", url, err.message);
    return cl;
}

void wf_test_status_of(wf_client *cl, const char *id, wf_status *st)
{
    wf_error err = {0};
    wf_run *run = wf_get_workflow_run(cl, id, &err);
    cr_assert_not_null(run, "run %s lost: %s", id, err.message);
    cr_assert_eq(wf_run_status(run, st, &err), WF_OK, "status of %s: %s", id, err.message);
    wf_run_free(run);
}

long long wf_test_raw_field(const wf_status *st, const char *name)
{
    for (size_t f = 0; f < st->raw_len; f++)
        if (strcmp(st->raw[f].name, name) == 0) return atoll(st->raw[f].value);
    return 0;
}

int wf_test_count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, what)); p++) n++;
    return n;
}

long long wf_test_not_completed(redisContext *c, const char *workflow)
{
    static const char *const others[] = {"queued", "running",   "waiting",   "paused",
                                         "failed", "cancelled", "terminated"};
    long long n = 0;
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        n += wf_test_cmd_int(c, "ZCARD wf:{%s}:state:%s", workflow, others[i]);
    return n;
}

int wf_test_completed_with(const wf_status *st, const char *expect)
{
    char *out = NULL;
    int ok = st->state == WF_STATE_COMPLETED && st->output &&
             wf_msgpack_to_json(st->output, st->output_len, &out, NULL) == WF_OK &&
             strcmp(out, expect) == 0;
    free(out);
    return ok;
}

typedef struct state_wait {
    wf_run *run;
    wf_state state;
} state_wait;

static int reached(void *arg)
{
    state_wait *w = arg;
    wf_status st;
    if (wf_run_status(w->run, &st, NULL) != WF_OK) return 0;
    int ok = st.state == w->state;
    wf_status_clear(&st);
    return ok;
}

void wf_test_wait_state(wf_run *run, wf_state state, int ms, wf_status *st, const char *log_path)
{
    state_wait w = {run, state};
    int ok = wf_test_wait(reached, &w, ms);
    cr_assert_eq(wf_run_status(run, st, NULL), WF_OK);
    if (!ok) {
        char *log = log_path ? wf_test_slurp(log_path) : NULL;
        cr_assert_fail("run %s is %s, not %s (error %s)\n%s", wf_run_id(run),
                       wf_state_name(st->state), wf_state_name(state), st->error ? st->error : "-",
                       log ? log : "");
    }
}

const char *wf_test_worker_stop(pid_t worker, const char *log_path)
{
    static char why[160];
    int status = worker > 0 ? wf_test_kill(worker, SIGTERM, 30000) : 0;
    int drained = worker <= 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int quiet = wf_test_log_quiet(log_path, !drained);
    if (quiet && drained) return NULL;
    if (!quiet)
        snprintf(why, sizeof why, "a sanitizer reported an error in a worker process");
    else
        snprintf(why, sizeof why, "wf-worker did not drain and exit 0 on SIGTERM (status 0x%x)",
                 status);
    return why;
}

typedef struct text_wait {
    const char *path, *text;
    int times;
} text_wait;

static int text_seen(void *arg)
{
    text_wait *t = arg;
    char *log = wf_test_slurp(t->path);
    int n = wf_test_count(log, t->text);
    free(log);
    return n >= t->times;
}

void wf_test_wait_log(const char *path, const char *text, int times, int timeout_ms)
{
    text_wait t = {path, text, times};
    if (!wf_test_wait(text_seen, &t, timeout_ms)) {
        char *log = wf_test_slurp(path);
        cr_assert_fail("%s never said \"%s\" %d time(s):\n%s", path, text, times, log);
    }
}
