/* test_example.c - the drafts-service example over real HTTP, with a real Redis and a real
 * wf-worker running the publish-draft workflow: start a run, reattach to it, defer one, and the
 * error answers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "example_env.h"

static example_env env;
static pid_t service;
static int port;
static char service_log[300];

/* ---- A minimal blocking HTTP/1.1 client ------------------------------------------------------ */

typedef struct response {
    int status;
    char *body; /* malloc'd, NUL-terminated */
} response;

static int connect_service(void)
{
    return wf_test_tcp_connect(port);
}

/* Sends one request (Connection: close) whose Content-Length says `declared` bytes, then `body`,
 * and reads the whole answer. Returns the status code, or -1 when the exchange failed. */
static int exchange(const char *method, const char *path, const char *body, size_t declared,
                    response *res)
{
    memset(res, 0, sizeof *res);
    int fd = connect_service();
    if (fd < 0) return -1;
    size_t blen = body ? strlen(body) : 0;
    char head[512];
    int hlen = snprintf(head, sizeof head,
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                        method, path, declared);
    int ok = send(fd, head, (size_t)hlen, MSG_NOSIGNAL) == hlen;
    for (size_t off = 0; ok && off < blen;) {
        ssize_t w = send(fd, body + off, blen - off, MSG_NOSIGNAL);
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    if (!ok) {
        close(fd);
        return -1;
    }
    res->status = wf_test_http_read(fd, NULL, &res->body);
    return res->status;
}

static int http(const char *method, const char *path, const char *body, response *res)
{
    return exchange(method, path, body, body ? strlen(body) : 0, res);
}

/* The answer's body as JSON (fails the test if it is not); frees the body. */
static json_t *json_body(response *res)
{
    json_error_t jerr;
    json_t *v = json_loads(res->body, 0, &jerr);
    cr_assert_not_null(v, "body is not JSON (%s): %s", jerr.text, res->body);
    free(res->body);
    res->body = NULL;
    return v;
}

/* ---- Set-up ---------------------------------------------------------------------------------- */

static int service_answers(void *arg)
{
    int fd = connect_service();
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

static void setup(void)
{
    example_env_start(&env);
    port = wf_test_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(service_log, sizeof service_log, "%s/service.log", env.redis.dir);
    char *bin = wf_test_path("examples/drafts-service");
    const char *argv[] = {bin, "--listen", listen, "--redis", env.redis.url, NULL};
    service = wf_test_spawn(argv, NULL, service_log);
    free(bin);
    if (!wf_test_wait(service_answers, NULL, 10000)) {
        example_env_dump(service_log);
        /* Criterion runs no .fini after a failed .init: leave no process behind. */
        wf_test_kill(service, SIGKILL, 5000);
        service = 0;
        example_env_stop(&env);
        cr_assert_fail("drafts-service did not listen on %s", listen);
    }
}

static void teardown(void)
{
    if (service > 0) wf_test_kill(service, SIGKILL, 5000);
    service = 0;
    example_env_stop(&env);
}

TestSuite(example, .init = setup, .fini = teardown, .timeout = 120);

/* ---- POST /drafts, GET /runs/:id ------------------------------------------------------------- */

typedef struct run_poll {
    char path[300];
    json_t *last;
} run_poll;

static int run_completed(void *arg)
{
    run_poll *p = arg;
    response res;
    if (http("GET", p->path, NULL, &res) != 200) {
        free(res.body);
        return 0;
    }
    json_decref(p->last);
    p->last = json_body(&res);
    json_t *st = json_object_get(p->last, "status");
    const char *state = json_string_value(json_object_get(st, "state"));
    return state && strcmp(state, "completed") == 0;
}

Test(example, post_draft_then_reattach_until_completed)
{
    response res;
    cr_assert_eq(http("POST", "/drafts", "{\"title\":\"  Hello World \"}", &res), 200, "%s",
                 res.body);
    json_t *doc = json_body(&res);
    const char *id = json_string_value(json_object_get(doc, "runId"));
    cr_assert_not_null(id);
    cr_assert_eq(strncmp(id, "publish-draft:", 14), 0, "runId %s", id);
    json_t *st = json_object_get(doc, "status");
    cr_assert_str_eq(json_string_value(json_object_get(st, "id")), id);
    cr_assert_not_null(json_string_value(json_object_get(st, "state")));

    run_poll p = {{0}, NULL};
    snprintf(p.path, sizeof p.path, "/runs/%s", id);
    json_decref(doc);
    cr_assert(wf_test_wait(run_completed, &p, 15000), "run never completed");
    cr_assert(json_is_true(json_object_get(p.last, "found")));
    json_t *want = json_pack("{s:s, s:s}", "title", "Hello World", "slug", "hello-world");
    cr_assert(json_equal(json_object_get(json_object_get(p.last, "status"), "output"), want));
    json_decref(want);
    json_decref(p.last);
}

Test(example, bad_bodies_get_400_with_the_message)
{
    static const char *const bodies[] = {
        "{}", "{\"title\":\"   \"}", "{\"title\":5}", "{\"title\":null}", "[]", "\"x\"", "not json",
        "",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        response res;
        cr_assert_eq(http("POST", "/drafts", bodies[i], &res), 400, "body '%s'", bodies[i]);
        json_t *doc = json_body(&res);
        json_t *want = json_pack("{s:i, s:s}", "statusCode", 400, "statusMessage",
                                 "Enter a title for the draft.");
        cr_assert(json_equal(doc, want), "body '%s'", bodies[i]);
        json_decref(want);
        json_decref(doc);
    }
    /* None of them started a run. */
    char **ids = NULL;
    size_t count = 99;
    cr_assert_eq(wf_list_runs(env.client, NULL, &ids, &count, NULL), WF_OK);
    cr_assert_eq(count, 0);
    wf_list_free(ids, count);
}

Test(example, unknown_and_malformed_ids_are_not_found)
{
    static const char *const paths[] = {
        "/runs/publish-draft:01AAAAAAAAAAAAAAAAAAAAAAAA",
        "/runs/not-an-id",
        "/runs/%7Bpublish-draft%7D:x",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        response res;
        cr_assert_eq(http("GET", paths[i], NULL, &res), 200, "%s", paths[i]);
        json_t *doc = json_body(&res);
        json_t *want = json_pack("{s:b}", "found", 0);
        cr_assert(json_equal(doc, want), "%s", paths[i]);
        json_decref(want);
        json_decref(doc);
    }
}

/* ---- POST /drafts/deferred ------------------------------------------------------------------- */

/* A completed run whose output title is the deferred one exists. */
static int deferred_run_completed(void *arg)
{
    char **ids = NULL;
    size_t count = 0;
    int found = 0;
    if (wf_list_runs(env.client, NULL, &ids, &count, NULL) != WF_OK) return 0;
    for (size_t i = 0; i < count && !found; i++) {
        wf_status st = {0};
        if (example_env_status(&env, ids[i], &st) != WF_OK) continue;
        char *json = NULL;
        if (st.state == WF_STATE_COMPLETED &&
            wf_msgpack_to_json(st.output, st.output_len, &json, NULL) == WF_OK)
            found = strcmp(json, "{\"title\":\"Hello from waitUntil\",\"slug\":\"hello-from-"
                                 "waituntil\"}") == 0;
        free(json);
        wf_status_clear(&st);
    }
    wf_list_free(ids, count);
    return found;
}

Test(example, deferred_answers_ok_and_the_run_happens)
{
    response res;
    cr_assert_eq(http("POST", "/drafts/deferred", "", &res), 200);
    json_t *doc = json_body(&res);
    json_t *want = json_pack("{s:b}", "ok", 1);
    cr_assert(json_equal(doc, want));
    json_decref(want);
    json_decref(doc);
    cr_assert(wf_test_wait(deferred_run_completed, NULL, 15000),
              "the deferred run never completed");
}

/* ---- Errors of the HTTP layer, and shutdown -------------------------------------------------- */

Test(example, wrong_route_method_and_size)
{
    response res;
    cr_assert_eq(http("GET", "/nope", NULL, &res), 404);
    free(res.body);
    cr_assert_eq(http("GET", "/drafts", NULL, &res), 405);
    free(res.body);
    /* Refused on its Content-Length alone, before any of the body is read. */
    cr_assert_eq(exchange("POST", "/drafts", NULL, (size_t)128 * 1024, &res), 413);
    free(res.body);
}

Test(example, sigterm_exits_cleanly)
{
    int status = wf_test_kill(service, SIGTERM, 5000);
    service = 0;
    cr_assert(WIFEXITED(status), "killed instead of exiting (status %d)", status);
    cr_assert_eq(WEXITSTATUS(status), 0);
}
