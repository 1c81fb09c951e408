/* test_cli.c - the built `wf` command line against a real Redis and a real wf-worker running the
 * example workflows: outputs (parsed with jansson) and every documented exit code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "example_env.h"

static example_env env;

static void setup(void)
{
    example_env_start(&env);
}

static void teardown(void)
{
    example_env_stop(&env);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 120);

#define MAX_ARGS 24

/* Runs `wf --redis URL ARGS...` (args NULL-terminated) with `input` on stdin; returns its exit
 * code and sets *out to its stdout (caller frees). */
static int wf_run_cli(char **out, const char *input, const char *redis_url, va_list ap)
{
    char *bin = wf_test_path("wf");
    const char *argv[MAX_ARGS] = {bin, "--redis", redis_url};
    int n = 3;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < MAX_ARGS - 1) argv[n++] = a;
    argv[n] = NULL;
    int rc = wf_test_run(argv, NULL, input, out, 30000);
    free(bin);
    return rc;
}

static int wf(char **out, const char *input, ...)
{
    va_list ap;
    va_start(ap, input);
    int rc = wf_run_cli(out, input, env.redis.url, ap);
    va_end(ap);
    return rc;
}

/* Like wf() but with another Redis URL. */
static int wf_at(const char *url, char **out, ...)
{
    va_list ap;
    va_start(ap, out);
    int rc = wf_run_cli(out, NULL, url, ap);
    va_end(ap);
    return rc;
}

/* Parses a command's stdout as JSON (freeing the text); fails the test if it is not JSON. */
static json_t *parse(char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(v, "output is not JSON (%s): %s", jerr.text, text);
    free(text);
    return v;
}

static const char *str_field(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    cr_assert_not_null(s, "field %s missing or not a string", key);
    return s;
}

/* `wf run`'s answer: asserts it exited 0 and returns the run id (caller frees), with the parsed
 * answer in *doc (caller frees) when doc is not NULL. */
static char *started(int rc, char *out, json_t **doc)
{
    cr_assert_eq(rc, 0, "wf run: exit %d", rc);
    json_t *d = parse(out);
    char *id = strdup(str_field(d, "runId"));
    if (doc)
        *doc = d;
    else
        json_decref(d);
    return id;
}

static void assert_output(json_t *status, const char *title, const char *slug)
{
    json_t *want = json_pack("{s:s, s:s}", "title", title, "slug", slug);
    json_t *got = json_object_get(status, "output");
    char *text = json_dumps(got, JSON_ENCODE_ANY);
    cr_assert(json_equal(got, want), "output is %s", text ? text : "(none)");
    free(text);
    json_decref(want);
}

/* ---- run ---------------------------------------------------------------------------------- */

Test(cli, run_wait_prints_completed_output)
{
    char *out;
    int rc = wf(&out, NULL, "run", "publish-draft", "{\"title\":\"Hello World\"}", "--wait",
                "--timeout", "30", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    json_t *doc = parse(out);
    const char *id = str_field(doc, "runId");
    cr_assert_eq(strncmp(id, "publish-draft:", 14), 0, "runId %s", id);
    json_t *st = json_object_get(doc, "status");
    cr_assert_str_eq(str_field(st, "state"), "completed");
    cr_assert_str_eq(str_field(st, "id"), id);
    cr_assert_str_eq(str_field(st, "workflow"), "publish-draft");
    cr_assert_eq(json_integer_value(json_object_get(st, "attempt")), 1);
    cr_assert(json_is_null(json_object_get(st, "error")));
    json_int_t created = json_integer_value(json_object_get(st, "createdAt"));
    json_int_t finished = json_integer_value(json_object_get(st, "finishedAt"));
    cr_assert_gt(created, 0);
    cr_assert_geq(finished, created);
    assert_output(st, "Hello World", "hello-world");
    json_decref(doc);
}

Test(cli, run_reads_json_from_stdin_and_the_title_is_trimmed)
{
    char *out;
    int rc = wf(&out, "{\"title\": \"  Ship it: v2.0!  \"}", "run", "publish-draft", "-", "--wait",
                NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    json_t *doc = parse(out);
    assert_output(json_object_get(doc, "status"), "Ship it: v2.0!", "ship-it-v2-0-");
    json_decref(doc);
}

Test(cli, run_without_input_uses_the_default_title)
{
    char *out;
    int rc = wf(&out, NULL, "run", "publish-draft", "--wait", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    json_t *doc = parse(out);
    assert_output(json_object_get(doc, "status"), "Untitled draft", "untitled-draft");
    json_decref(doc);
}

typedef struct poll_arg {
    const char *id;
    const char *state;
    json_t *last;
} poll_arg;

/* `wf status ID` reports `state`; keeps the last document. */
static int status_is(void *arg)
{
    poll_arg *p = arg;
    char *out;
    if (wf(&out, NULL, "status", p->id, NULL) != 0) {
        free(out);
        return 0;
    }
    json_decref(p->last);
    p->last = parse(out);
    const char *s = json_string_value(json_object_get(p->last, "state"));
    return s && strcmp(s, p->state) == 0;
}

Test(cli, run_with_id_then_status_until_completed)
{
    char *out;
    int rc =
        wf(&out, NULL, "run", "publish-draft", "{\"title\":\"Fixed Id\"}", "--id", "fixed-1", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    json_t *doc = parse(out);
    cr_assert_str_eq(str_field(doc, "runId"), "publish-draft:fixed-1");
    const char *state = str_field(json_object_get(doc, "status"), "state");
    cr_assert(strcmp(state, "queued") == 0 || strcmp(state, "running") == 0 ||
                  strcmp(state, "completed") == 0,
              "state %s", state);
    json_decref(doc);

    poll_arg p = {"publish-draft:fixed-1", "completed", NULL};
    cr_assert(wf_test_wait(status_is, &p, 15000), "run never completed");
    assert_output(p.last, "Fixed Id", "fixed-id");
    cr_assert_str_eq(str_field(p.last, "id"), "publish-draft:fixed-1");
    cr_assert_not_null(json_string_value(json_object_get(p.last, "worker")));
    json_decref(p.last);

    /* Starting the same id again returns that run, not a new one. */
    rc = wf(&out, NULL, "run", "publish-draft", "{\"title\":\"Other\"}", "--id", "fixed-1", NULL);
    cr_assert_eq(rc, 0);
    doc = parse(out);
    cr_assert_str_eq(str_field(doc, "runId"), "publish-draft:fixed-1");
    assert_output(json_object_get(doc, "status"), "Fixed Id", "fixed-id");
    json_decref(doc);
}

Test(cli, run_with_priority_shows_it_in_status)
{
    char *out;
    int rc = wf(&out, NULL, "run", "publish-draft", "{\"title\":\"Urgent\"}", "--id", "urgent",
                "--priority", "high", "--wait", "--timeout", "30", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    json_decref(parse(out));
    rc = wf(&out, NULL, "status", "publish-draft:urgent", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    json_t *doc = parse(out);
    cr_assert_str_eq(str_field(doc, "priority"), "high");
    json_decref(doc);
    rc = wf(&out, NULL, "status", "publish-draft:urgent", "--text", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    cr_assert(strstr(out, "\nPriority   high\n"), "%s", out);
    free(out);
    /* A normal run says nothing about it in the text, "normal" in JSON. */
    rc = wf(&out, NULL, "run", "publish-draft", "{\"title\":\"Plain\"}", "--id", "plain",
            "--priority", "normal", "--wait", "--timeout", "30", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    free(out);
    rc = wf(&out, NULL, "status", "publish-draft:plain", "--text", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    cr_assert_null(strstr(out, "Priority"), "%s", out);
    free(out);
    rc = wf(&out, NULL, "status", "publish-draft:plain", NULL);
    doc = parse(out);
    cr_assert_str_eq(str_field(doc, "priority"), "normal");
    json_decref(doc);
    /* Anything else is a usage error, and nothing starts. */
    rc = wf(&out, NULL, "run", "publish-draft", "{\"title\":\"No\"}", "--id", "nope", "--priority",
            "urgent", NULL);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    free(out);
    rc = wf(&out, NULL, "status", "publish-draft:nope", NULL);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, out);
    free(out);
}

Test(cli, wait_timeout_exits_7)
{
    char *out;
    int rc = wf(&out, NULL, "run", "publish-draft", "--delay", "60000", "--wait", "--timeout",
                "0.3", NULL);
    cr_assert_eq(rc, 7, "exit %d: %s", rc, out);
    json_t *doc = parse(out);
    cr_assert_str_eq(str_field(json_object_get(doc, "status"), "state"), "waiting");
    json_decref(doc);
}

typedef struct child {
    pid_t pid;
    int status;
} child;

static int child_exited(void *arg)
{
    child *c = arg;
    return waitpid(c->pid, &c->status, WNOHANG) == c->pid;
}

Test(cli, wait_on_a_run_that_gets_cancelled_exits_4)
{
    char *bin = wf_test_path("wf");
    const char *argv[] = {bin,    "--redis", env.redis.url, "run",   "publish-draft",
                          "--id", "stop-me", "--delay",     "60000", "--wait",
                          NULL};
    child c = {wf_test_spawn(argv, NULL, "/dev/null"), 0};
    free(bin);
    poll_arg p = {"publish-draft:stop-me", "waiting", NULL};
    cr_assert(wf_test_wait(status_is, &p, 10000), "delayed run never showed up as waiting");
    json_decref(p.last);
    char *out;
    cr_assert_eq(wf(&out, NULL, "stop", "publish-draft:stop-me", NULL), 0);
    free(out);
    cr_assert(wf_test_wait(child_exited, &c, 10000), "wf run --wait did not notice the stop");
    cr_assert(WIFEXITED(c.status));
    cr_assert_eq(WEXITSTATUS(c.status), 4);
}

/* ---- stop --------------------------------------------------------------------------------- */

Test(cli, stop_cancels_then_stop_again_exits_5)
{
    char *out;
    json_t *doc;
    int rc = wf(&out, NULL, "run", "publish-draft", "--delay", "60000", NULL);
    char *id = started(rc, out, &doc);
    cr_assert_str_eq(str_field(json_object_get(doc, "status"), "state"), "waiting");
    json_decref(doc);

    rc = wf(&out, NULL, "stop", id, NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    doc = parse(out);
    cr_assert_str_eq(str_field(doc, "state"), "cancelled");
    cr_assert_str_eq(str_field(doc, "id"), id);
    cr_assert(json_is_null(json_object_get(doc, "output")));
    json_decref(doc);

    rc = wf(&out, NULL, "stop", id, NULL);
    cr_assert_eq(rc, 5, "second stop: exit %d", rc);
    cr_assert_str_eq(out, "", "nothing on stdout, got %s", out);
    free(out);
    free(id);
}

Test(cli, stop_on_a_completed_run_exits_5)
{
    char *out;
    int rc = wf(&out, NULL, "run", "publish-draft", "{\"title\":\"Done\"}", "--wait", NULL);
    char *id = started(rc, out, NULL);
    rc = wf(&out, NULL, "stop", id, NULL);
    cr_assert_eq(rc, 5, "exit %d", rc);
    free(out);
    rc = wf(&out, NULL, "status", id, NULL);
    cr_assert_eq(rc, 0);
    json_t *doc = parse(out);
    cr_assert_str_eq(str_field(doc, "state"), "completed");
    json_decref(doc);
    free(id);
}

/* ---- list, workflows, send-event ---------------------------------------------------------- */

Test(cli, list_json_and_table)
{
    char *out;
    cr_assert_eq(wf(&out, NULL, "run", "publish-draft", "{\"title\":\"A\"}", "--id", "list-a",
                    "--wait", NULL),
                 0);
    free(out);
    cr_assert_eq(wf(&out, NULL, "run", "publish-draft", "--id", "list-b", "--delay", "60000", NULL),
                 0);
    free(out);

    int rc = wf(&out, NULL, "list", "--json", "--workflow", "publish-draft", NULL);
    cr_assert_eq(rc, 0, "exit %d", rc);
    json_t *runs = parse(out);
    cr_assert(json_is_array(runs));
    cr_assert_eq(json_array_size(runs), 2);
    int seen = 0;
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        const char *id = str_field(r, "id");
        if (strcmp(id, "publish-draft:list-a") == 0) {
            cr_assert_str_eq(str_field(r, "state"), "completed");
            seen |= 1;
        } else if (strcmp(id, "publish-draft:list-b") == 0) {
            cr_assert_str_eq(str_field(r, "state"), "waiting");
            cr_assert_gt(json_integer_value(json_object_get(r, "wakeAt")), 0);
            seen |= 2;
        }
    }
    cr_assert_eq(seen, 3, "both runs listed");
    json_decref(runs);

    /* --json as a global option before the command, with filters. */
    rc = wf(&out, NULL, "--json", "list", "--state", "completed", "--limit", "5", NULL);
    cr_assert_eq(rc, 0);
    runs = parse(out);
    cr_assert_eq(json_array_size(runs), 1);
    cr_assert_str_eq(str_field(json_array_get(runs, 0), "id"), "publish-draft:list-a");
    json_decref(runs);

    rc = wf(&out, NULL, "list", "--limit", "1", NULL);
    cr_assert_eq(rc, 0);
    cr_assert_eq(strncmp(out, "ID ", 3), 0, "table header, got %s", out);
    cr_assert_not_null(strstr(out, "publish-draft:list-"));
    cr_assert_not_null(strstr(out, "STATE"));
    free(out);

    cr_assert_eq(wf(&out, NULL, "list", "--state", "bogus", NULL), 1);
    free(out);
}

Test(cli, workflows_lists_the_example_workflows)
{
    char *out;
    cr_assert_eq(wf(&out, NULL, "workflows", NULL), 0);
    cr_assert_str_eq(out, "order\npublish-draft\n", "sorted, one per line");
    free(out);
    cr_assert_eq(wf(&out, NULL, "workflows", "--json", NULL), 0);
    json_t *names = parse(out);
    cr_assert_eq(json_array_size(names), 2);
    cr_assert_str_eq(json_string_value(json_array_get(names, 1)), "publish-draft");
    json_decref(names);
}

Test(cli, send_event_records_the_event)
{
    char *out;
    int rc = wf(&out, NULL, "send-event", "draft-reviewed", "{\"ok\":true}", NULL);
    cr_assert_eq(rc, 0, "exit %d", rc);
    json_t *doc = parse(out);
    cr_assert(json_is_true(json_object_get(doc, "ok")));
    cr_assert_str_eq(str_field(doc, "event"), "draft-reviewed");
    json_decref(doc);
    /* Some key of the event now exists in Redis (the layout is libwf's business). */
    redisContext *c = wf_test_redis_connect(&env.redis);
    cr_assert_not_null(c);
    redisReply *keys = wf_test_command(c, "KEYS *draft-reviewed*");
    cr_assert(keys && keys->type == REDIS_REPLY_ARRAY && keys->elements >= 1, "no event key");
    freeReplyObject(keys);
    redisFree(c);
}

/* ---- exit codes --------------------------------------------------------------------------- */

Test(cli, bad_input_exits_6)
{
    char *out;
    cr_assert_eq(wf(&out, NULL, "run", "publish-draft", "{\"title\":", NULL), 6);
    free(out);
    cr_assert_eq(wf(&out, "not json", "run", "publish-draft", "-", NULL), 6);
    free(out);
    cr_assert_eq(wf(&out, NULL, "run", "no-such-workflow", "{}", NULL), 6);
    free(out);
    cr_assert_eq(wf(&out, NULL, "run", "bad name!", "{}", NULL), 6);
    free(out);
    size_t n = (size_t)2 * 1024 * 1024; /* a JSON string twice the default max_payload */
    char *big = malloc(n + 2);
    cr_assert_not_null(big);
    memset(big, 'x', n);
    big[0] = '"';
    strcpy(big + n, "\"");
    cr_assert_eq(wf(&out, big, "run", "publish-draft", "-", NULL), 6, "over max_payload");
    free(out);
    free(big);
    /* Nothing was started by any of these. */
    cr_assert_eq(wf(&out, NULL, "list", "--json", NULL), 0);
    json_t *runs = parse(out);
    cr_assert_eq(json_array_size(runs), 0);
    json_decref(runs);
}

Test(cli, bad_or_unknown_id_exits_2)
{
    char *out;
    cr_assert_eq(wf(&out, NULL, "status", "not an id", NULL), 2);
    free(out);
    cr_assert_eq(wf(&out, NULL, "status", "{publish-draft}:x", NULL), 2);
    free(out);
    cr_assert_eq(wf(&out, NULL, "status", "publish-draft:01AAAAAAAAAAAAAAAAAAAAAAAA", NULL), 2);
    cr_assert_str_eq(out, "");
    free(out);
    cr_assert_eq(wf(&out, NULL, "stop", "publish-draft:01AAAAAAAAAAAAAAAAAAAAAAAA", NULL), 2);
    free(out);
}

Test(cli, redis_down_fails_fast_with_3)
{
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", wf_test_free_port());
    char *out;
    /* wf_test_run gives -2 if it hangs past 5 s. */
    cr_assert_eq(wf_at(url, &out, "status", "publish-draft:x", NULL), 3);
    free(out);
    cr_assert_eq(wf_at(url, &out, "run", "publish-draft", "{}", "--wait", NULL), 3);
    free(out);
    cr_assert_eq(wf_at(url, &out, "list", NULL), 3);
    free(out);
    cr_assert_eq(wf_at("http://nope", &out, "workflows", NULL), 3, "bad URL");
    free(out);
}

Test(cli, usage_help_and_version)
{
    char *out;
    cr_assert_eq(wf(&out, NULL, NULL), 1, "no command");
    free(out);
    cr_assert_eq(wf(&out, NULL, "frobnicate", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, NULL, "run", NULL), 1, "run without a name");
    free(out);
    cr_assert_eq(wf(&out, NULL, "run", "publish-draft", "--timeout", "3", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, NULL, "status", "--nope", "x", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, NULL, "--help", NULL), 0);
    cr_assert_not_null(strstr(out, "Exit codes"));
    free(out);
    cr_assert_eq(wf(&out, NULL, "run", "--help", NULL), 0);
    cr_assert_not_null(strstr(out, "--wait"));
    free(out);
    cr_assert_eq(wf(&out, NULL, "help", "list", NULL), 0);
    cr_assert_not_null(strstr(out, "--state"));
    free(out);
    cr_assert_eq(wf(&out, NULL, "--version", NULL), 0);
    cr_assert_str_eq(out, "wf " WF_VERSION "\n");
    free(out);
}
