/* test_web_api.c - the dashboard's JSON API (`wf web`) over real HTTP, with a real Redis and a
 * real wf-worker: the listings, a run in detail, the actions and their refusals, 400/404/405,
 * the page itself, the access checks (loopback Host, Origin, the token) and the refusals at
 * start-up. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <criterion/criterion.h>

#include "ops_env.h"

#define TOKEN "web-api-test-token-0123456789"

static pid_t web, web_token;
static int port, token_port;

/* ---- A minimal blocking HTTP/1.1 client ------------------------------------------------------ */

typedef struct response {
    int status;
    char *head; /* status line and headers */
    char *body;
} response;

static void response_free(response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request to port `p` with extra header lines `headers` (each ending in \r\n, may be NULL;
 * a "Host:" among them replaces the default one). Returns the status or -1. */
static int http_to(int p, const char *method, const char *path, const char *headers, response *res)
{
    memset(res, 0, sizeof *res);
    int fd = wf_test_tcp_connect(p);
    if (fd < 0) return -1;
    char req[2048];
    int has_host = headers && strncmp(headers, "Host:", 5) == 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\n%s%d\r\nConnection: close\r\nContent-Length: 0\r\n%s\r\n",
                     method, path, has_host ? "X-Test: " : "Host: 127.0.0.1:", p,
                     headers ? headers : "");
    int ok = send(fd, req, (size_t)n, MSG_NOSIGNAL) == n;
    if (!ok) {
        close(fd);
        return -1;
    }
    res->status = wf_test_http_read(fd, &res->head, &res->body);
    return res->status;
}

static int http(const char *method, const char *path, response *res)
{
    return http_to(port, method, path, NULL, res);
}

/* The body as JSON; frees the response. */
static json_t *body_json(response *res)
{
    json_t *v = parse(res->body);
    res->body = NULL;
    response_free(res);
    return v;
}

/* GET/POST that must answer `code`; returns the JSON body. */
static json_t *call(const char *method, const char *path, int code)
{
    response res;
    int got = http(method, path, &res);
    cr_assert_eq(got, code, "%s %s: %d, want %d: %s", method, path, got, code,
                 res.body ? res.body : "");
    return body_json(&res);
}

/* ---- Set-up ---------------------------------------------------------------------------------- */

static int answers(void *arg)
{
    int fd = wf_test_tcp_connect(*(int *)arg);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

static pid_t start_web_at(int p, const char *token, const char *base)
{
    char listen[64], log[300];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", p);
    snprintf(log, sizeof log, "%s/web-%d.log", env.redis.dir, p);
    char *bin = wf_test_path("wf");
    const char *argv[11] = {bin, "web", "--listen", listen, "--redis", env.redis.url};
    size_t n = 6;
    if (token) argv[n++] = "--token", argv[n++] = token;
    if (base) argv[n++] = "--base-path", argv[n++] = base;
    pid_t pid = wf_test_spawn(argv, NULL, log);
    free(bin);
    cr_assert(wf_test_wait(answers, &p, 10000), "wf web did not listen on %s", listen);
    return pid;
}

static pid_t start_web(int p, const char *token)
{
    return start_web_at(p, token, NULL);
}

static void setup(void)
{
    ops_env_start();
    port = wf_test_free_port();
    web = start_web(port, NULL);
}

static void teardown(void)
{
    if (web > 0) {
        int status = wf_test_kill(web, SIGTERM, 5000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wf web did not exit cleanly");
    }
    if (web_token > 0) wf_test_kill(web_token, SIGTERM, 5000);
    web = web_token = 0;
    ops_env_stop();
}

TestSuite(web_api, .init = setup, .fini = teardown, .timeout = 120);

/* ---- Reading --------------------------------------------------------------------------------- */

Test(web_api, workflows_runs_and_one_run)
{
    char *done = start_run("publish-draft", "{\"title\":\"Web <b>API</b>\"}", "--wait", NULL, NULL);
    char *waiting = start_run("publish-draft", "--delay", "600000", NULL, NULL);

    json_t *doc = call("GET", "/api/workflows", 200);
    cr_assert_gt(json_integer_value(json_object_get(doc, "now")), 0);
    json_t *w;
    size_t i;
    int seen = 0;
    json_array_foreach(json_object_get(doc, "workflows"), i, w)
    {
        if (strcmp(sfield(w, "workflow"), "publish-draft") != 0) continue;
        json_t *c = json_object_get(w, "counts");
        cr_assert_eq(json_integer_value(json_object_get(c, "completed")), 1);
        cr_assert_eq(json_integer_value(json_object_get(c, "waiting")), 1);
        seen = 1;
    }
    cr_assert(seen, "publish-draft listed");
    json_decref(doc);

    doc = call("GET", "/api/runs", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 2);
    cr_assert_str_eq(sfield(json_array_get(json_object_get(doc, "runs"), 0), "id"), waiting,
                     "newest first");
    json_decref(doc);
    doc = call("GET", "/api/runs?workflow=publish-draft&state=completed&limit=5", 200);
    json_t *runs = json_object_get(doc, "runs");
    cr_assert_eq(json_array_size(runs), 1);
    cr_assert_str_eq(sfield(json_array_get(runs, 0), "id"), done);
    json_decref(doc);
    doc = call("GET", "/api/runs?state=failed", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 0);
    json_decref(doc);

    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s", done);
    doc = call("GET", path, 200);
    cr_assert_str_eq(sfield(doc, "state"), "completed");
    cr_assert_str_eq(sfield(json_object_get(doc, "input"), "title"), "Web <b>API</b>");
    cr_assert_str_eq(sfield(json_object_get(doc, "output"), "slug"), "web-b-api-b-");
    cr_assert(json_is_null(json_object_get(doc, "error")));
    cr_assert(json_is_array(json_object_get(doc, "steps")));
    json_t *timeline = json_object_get(doc, "timeline");
    cr_assert_geq(json_array_size(timeline), 3);
    cr_assert_str_eq(sfield(json_array_get(timeline, 0), "event"), "created");
    cr_assert_str_eq(sfield(json_array_get(timeline, json_array_size(timeline) - 1), "event"),
                     "completed");
    json_decref(doc);

    /* The id percent-encoded, as the page's encodeURIComponent sends it. */
    char enc[300];
    snprintf(enc, sizeof enc, "/api/runs/publish-draft%%3A%s", strchr(waiting, ':') + 1);
    doc = call("GET", enc, 200);
    cr_assert_str_eq(sfield(doc, "state"), "waiting");
    cr_assert_str_eq(sfield(doc, "waitReason"), "delayed start");
    json_decref(doc);

    /* Search: the whole id, its first characters, the part after the workflow's name. */
    char q[300];
    const char *rest = strchr(done, ':') + 1;
    snprintf(q, sizeof q, "/api/runs?q=%s", done);
    doc = call("GET", q, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 1);
    cr_assert_str_eq(sfield(json_array_get(json_object_get(doc, "runs"), 0), "id"), done);
    json_decref(doc);
    snprintf(q, sizeof q, "/api/runs?q=%.*s", (int)strlen(rest) - 2, rest);
    doc = call("GET", q, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 1, "prefix of %s", rest);
    cr_assert_str_eq(sfield(json_array_get(json_object_get(doc, "runs"), 0), "id"), done);
    json_decref(doc);
    doc = call("GET", "/api/runs?q=publish-draft%3A&limit=1", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 1, "limit applies to a search");
    json_decref(doc);
    doc = call("GET", "/api/runs?q=publish-draft%3A&offset=1", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 1, "offset applies to a search");
    json_decref(doc);
    doc = call("GET", "/api/runs?q=zzz-no-such", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 0);
    json_decref(doc);

    doc = call("GET", "/api/workers", 200);
    cr_assert(json_is_array(json_object_get(doc, "workers")));
    json_decref(doc);
    free(done);
    free(waiting);
}

/* ---- Actions --------------------------------------------------------------------------------- */

static json_t *act(const char *id, const char *action, int code)
{
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s/%s", id, action);
    return call("POST", path, code);
}

static void act_state(const char *id, const char *action, const char *state)
{
    json_t *doc = act(id, action, 200);
    cr_assert(json_is_true(json_object_get(doc, "ok")));
    cr_assert_str_eq(sfield(json_object_get(doc, "run"), "state"), state, "after %s", action);
    json_decref(doc);
}

Test(web_api, actions_and_their_conflicts)
{
    char *id = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    act_state(id, "pause", "paused");
    json_t *doc = act(id, "pause", 409);
    cr_assert_not_null(strstr(sfield(doc, "error"), "already paused"), "%s", sfield(doc, "error"));
    cr_assert_eq(json_integer_value(json_object_get(doc, "status")), 409);
    json_decref(doc);
    act_state(id, "resume", "waiting");
    json_decref(act(id, "resume", 409));
    json_decref(act(id, "retry", 409)); /* not ended */
    act_state(id, "stop", "cancelled");
    doc = act(id, "stop", 409);
    cr_assert_not_null(strstr(sfield(doc, "error"), "already cancelled"));
    json_decref(doc);
    doc = act(id, "retry", 200);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "run"), "attempt")), 2);
    json_decref(doc);
    wait_state(id, "completed");
    json_decref(act(id, "retry", 409)); /* completed */
    json_decref(act(id, "pause", 409));
    free(id);
}

Test(web_api, bad_ids_unknown_runs_routes_and_methods)
{
    static const char *const bad[] = {"/api/runs/not%20an%20id", "/api/runs/%7Bx%7D:y",
                                      "/api/runs/publish-draft:a%00b", "/api/runs/nocolon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = call("GET", bad[i], 400);
        cr_assert_gt(strlen(sfield(doc, "error")), 0);
        json_decref(doc);
    }
    json_decref(call("POST", "/api/runs/not%20an%20id/stop", 400));
    json_decref(call("GET", "/api/runs/publish-draft:01AAAAAAAAAAAAAAAAAAAAAAAA", 404));
    json_decref(call("POST", "/api/runs/publish-draft:nope/stop", 404));
    json_decref(call("POST", "/api/runs/publish-draft:nope/explode", 404));
    json_decref(call("GET", "/api/nothing", 404));
    json_decref(call("GET", "/nothing.html", 404));
    json_decref(call("POST", "/api/runs", 405));
    json_decref(call("GET", "/api/runs/publish-draft:nope/stop", 405));
    json_decref(call("POST", "/api/runs/publish-draft:nope", 405));
    json_decref(call("GET", "/api/runs?state=bogus", 400));
    json_decref(call("GET", "/api/runs?limit=0", 400));
    json_decref(call("GET", "/api/runs?limit=abc", 400));
    json_decref(call("GET", "/api/runs?since=soon", 400));
    json_decref(call("GET", "/api/runs?workflow=bad%20name", 400));
}

/* Methods the server does not serve answer a JSON 405 naming what is allowed, on the API and
 * on the page alike, never evhttp's HTML 501. */
Test(web_api, other_methods_answer_a_json_405_with_allow)
{
    char *id = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    char run[300], stop[300];
    snprintf(run, sizeof run, "/api/runs/%s", id);
    snprintf(stop, sizeof stop, "/api/runs/%s/stop", id);
    static const char *const methods[] = {"DELETE", "PUT", "PATCH", "OPTIONS"};
    const struct {
        const char *path, *allow;
    } routes[] = {{run, "Allow: GET, HEAD"},
                  {stop, "Allow: POST"},
                  {"/api/runs", "Allow: GET, HEAD"},
                  {"/api/workflows", "Allow: GET, HEAD"},
                  {"/api/workers", "Allow: GET, HEAD"},
                  {"/", "Allow: GET, HEAD"},
                  {"/app.js", "Allow: GET, HEAD"}};
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
        for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
            response res;
            int got = http(methods[m], routes[r].path, &res);
            cr_assert_eq(got, 405, "%s %s: %d: %s", methods[m], routes[r].path, got,
                         res.body ? res.body : "");
            cr_assert_not_null(strstr(res.head, routes[r].allow), "%s %s: %s", methods[m],
                               routes[r].path, res.head);
            cr_assert_not_null(strstr(res.head, "Content-Type: application/json"), "%s", res.head);
            json_t *doc = body_json(&res);
            cr_assert_eq(json_integer_value(json_object_get(doc, "status")), 405);
            cr_assert_not_null(strstr(sfield(doc, "error"), methods[m]), "%s",
                               sfield(doc, "error"));
            json_decref(doc);
        }
    cr_assert_str_eq(state_of(id), "waiting", "a DELETE changes nothing");
    free(id);
}

/* ---- The page and access --------------------------------------------------------------------- */

Test(web_api, page_is_served_with_a_strict_policy)
{
    static const char *const files[][2] = {
        {"/", "text/html"}, {"/app.js", "text/javascript"}, {"/style.css", "text/css"}};
    for (size_t i = 0; i < 3; i++) {
        response res;
        cr_assert_eq(http("GET", files[i][0], &res), 200, "%s", files[i][0]);
        cr_assert_not_null(strstr(res.head, files[i][1]), "%s", res.head);
        cr_assert_not_null(strstr(res.head, "Content-Security-Policy: default-src 'none'"));
        cr_assert_not_null(strstr(res.head, "X-Content-Type-Options: nosniff"));
        cr_assert_gt(strlen(res.body), 500);
        response_free(&res);
    }
    static const char *const scripts[] = {"/app.js", "/ops.js"};
    for (size_t i = 0; i < 2; i++) {
        response res;
        cr_assert_eq(http("GET", scripts[i], &res), 200, "%s", scripts[i]);
        cr_assert_null(strstr(res.body, "innerHTML"), "%s: data goes into the DOM as text only",
                       scripts[i]);
        response_free(&res);
    }
}

Test(web_api, loopback_host_and_same_origin_posts_only)
{
    response res;
    cr_assert_eq(http_to(port, "GET", "/api/workflows", "Host: evil.example\r\n", &res), 403);
    response_free(&res);
    cr_assert_eq(http_to(port, "GET", "/api/workflows", "Host: localhost\r\n", &res), 200);
    response_free(&res);
    char *id = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s/stop", id);
    cr_assert_eq(http_to(port, "POST", path, "Origin: http://evil.example\r\n", &res), 403);
    response_free(&res);
    cr_assert_str_eq(state_of(id), "waiting", "a cross-site POST changes nothing");
    char origin[128];
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d\r\n", port);
    cr_assert_eq(http_to(port, "POST", path, origin, &res), 200);
    response_free(&res);
    cr_assert_str_eq(state_of(id), "cancelled");
    free(id);
}

Test(web_api, with_a_token_every_api_call_needs_it)
{
    token_port = wf_test_free_port();
    web_token = start_web(token_port, TOKEN);
    response res;
    cr_assert_eq(http_to(token_port, "GET", "/api/runs", NULL, &res), 401);
    cr_assert_not_null(strstr(res.head, "WWW-Authenticate: Bearer"));
    response_free(&res);
    cr_assert_eq(http_to(token_port, "GET", "/api/runs", "Authorization: Bearer nope\r\n", &res),
                 401);
    response_free(&res);
    cr_assert_eq(http_to(token_port, "POST", "/api/runs/publish-draft:x/stop",
                         "Authorization: Basic " TOKEN "\r\n", &res),
                 401);
    response_free(&res);
    cr_assert_eq(
        http_to(token_port, "GET", "/api/runs", "Authorization: Bearer " TOKEN "\r\n", &res), 200);
    response_free(&res);
    cr_assert_eq(http_to(token_port, "GET", "/", NULL, &res), 200, "the page itself is public");
    response_free(&res);
}

/* --base-path: everything under the prefix, the prefix stripped, nothing outside it. */
Test(web_api, base_path_serves_everything_under_its_prefix)
{
    token_port = wf_test_free_port();
    web_token = start_web_at(token_port, NULL, "/ops/wf/");
    response res;
    cr_assert_eq(http_to(token_port, "GET", "/ops/wf/api/workflows", NULL, &res), 200);
    response_free(&res);
    cr_assert_eq(http_to(token_port, "GET", "/ops/wf/api/runs?limit=5", NULL, &res), 200);
    response_free(&res);
    cr_assert_eq(http_to(token_port, "GET", "/ops/wf/", NULL, &res), 200);
    cr_assert_not_null(strstr(res.body, "href=\"style.css\""), "relative URLs in the page");
    cr_assert_null(strstr(res.body, "\"/app.js\""));
    response_free(&res);
    cr_assert_eq(http_to(token_port, "GET", "/ops/wf/app.js", NULL, &res), 200);
    cr_assert_null(strstr(res.body, "fetch('/"), "the page's API calls are relative");
    response_free(&res);
    cr_assert_eq(http_to(token_port, "GET", "/ops/wf", NULL, &res), 301);
    cr_assert_not_null(strstr(res.head, "Location: /ops/wf/"), "%s", res.head);
    response_free(&res);
    static const char *const outside[] = {"/", "/api/workflows", "/app.js", "/ops/wfx/",
                                          "/ops/api/workflows"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        cr_assert_eq(http_to(token_port, "GET", outside[i], NULL, &res), 404, "%s", outside[i]);
        response_free(&res);
    }
    cr_assert_eq(http_to(token_port, "DELETE", "/ops/wf/api/runs", NULL, &res), 405);
    response_free(&res);

    char *bin = wf_test_path("wf"), *out, where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", wf_test_free_port());
    static const char *const bad[] = {"wf", "/a//b", "/a/../b", "/a b", "/.."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {bin,           "web",         "--listen", where, "--redis",
                              env.redis.url, "--base-path", bad[i],     NULL};
        cr_assert_eq(wf_test_run(argv, NULL, NULL, &out, 10000), 1, "--base-path %s", bad[i]);
        free(out);
    }
    free(bin);
}

Test(web_api, refuses_to_start_unsafely)
{
    char *bin = wf_test_path("wf"), *out, busy[64], wide[64];
    snprintf(wide, sizeof wide, "0.0.0.0:%d", wf_test_free_port());
    const char *no_token[] = {bin, "web", "--listen", wide, "--redis", env.redis.url, NULL};
    cr_assert_eq(wf_test_run(no_token, NULL, NULL, &out, 10000), 1, "off loopback, no token");
    free(out);
    const char *short_token[] = {bin,     "web",     "--listen",    wide, "--token",
                                 "short", "--redis", env.redis.url, NULL};
    cr_assert_eq(wf_test_run(short_token, NULL, NULL, &out, 10000), 1);
    free(out);
    snprintf(busy, sizeof busy, "127.0.0.1:%d", port);
    const char *in_use[] = {bin, "web", "--listen", busy, "--redis", env.redis.url, NULL};
    cr_assert_eq(wf_test_run(in_use, NULL, NULL, &out, 10000), 9, "port in use");
    free(out);
    const char *bad[] = {bin, "web", "--listen", "nowhere", NULL};
    cr_assert_eq(wf_test_run(bad, NULL, NULL, &out, 10000), 1);
    free(out);
    free(bin);
}

/* ---- Bulk actions, restart, live workers ------------------------------------------------------
 */

/* A field of a run as the API shows it. */
static long long run_attempt(const char *id)
{
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s", id);
    json_t *doc = call("GET", path, 200);
    long long attempt = json_integer_value(json_object_get(doc, "attempt"));
    json_decref(doc);
    return attempt;
}

typedef struct attempt_wait {
    const char *id;
    long long attempt;
} attempt_wait;

static int failed_again(void *arg)
{
    attempt_wait *w = arg;
    return strcmp(state_of(w->id), "failed") == 0 && run_attempt(w->id) == w->attempt;
}

static json_t *bulk(const char *query, int code)
{
    char path[400];
    snprintf(path, sizeof path, "/api/bulk?%s", query);
    return call("POST", path, code);
}

static long long ifield(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* The dry run counts; acting with its `until` takes exactly the runs counted, not one that failed
 * after the count. */
Test(web_api, bulk_retry_acts_on_the_runs_counted)
{
    char *ids[4];
    for (int i = 0; i < 3; i++) ids[i] = start_run("fatal", "--wait", NULL, NULL, NULL);
    for (int i = 0; i < 3; i++) wait_state(ids[i], "failed");
    json_t *dry = bulk("action=retry&workflow=fatal&state=failed&dry_run=1", 200);
    cr_assert_eq(ifield(dry, "count"), 3);
    cr_assert_eq(ifield(dry, "acted"), 0);
    cr_assert(json_is_true(json_object_get(dry, "dryRun")));
    long long until = ifield(dry, "until");
    cr_assert_gt(until, 0);
    json_decref(dry);
    for (int i = 0; i < 3; i++) cr_assert_eq(run_attempt(ids[i]), 1, "a dry run changes nothing");

    ids[3] = start_run("fatal", "--wait", NULL, NULL, NULL); /* fails after the count */
    wait_state(ids[3], "failed");
    char q[200];
    snprintf(q, sizeof q, "action=retry&workflow=fatal&state=failed&until=%lld", until);
    json_t *done = bulk(q, 200);
    cr_assert_eq(ifield(done, "count"), 3);
    cr_assert_eq(ifield(done, "acted"), 3);
    cr_assert_eq(ifield(done, "failed"), 0);
    json_decref(done);
    for (int i = 0; i < 3; i++) {
        attempt_wait w = {ids[i], 2};
        cr_assert(wf_test_wait(failed_again, &w, 15000), "%s retried once", ids[i]);
    }
    cr_assert_eq(run_attempt(ids[3]), 1, "a run that failed after the count is left alone");
    for (int i = 0; i < 4; i++) free(ids[i]);
}

Test(web_api, bulk_stop_and_its_refusals)
{
    char *a = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    char *b = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    json_t *doc = bulk("action=stop&workflow=publish-draft&state=waiting&dry_run=1", 200);
    cr_assert_eq(ifield(doc, "count"), 2);
    json_decref(doc);
    cr_assert_str_eq(state_of(a), "waiting");
    doc = bulk("action=stop&workflow=publish-draft&state=waiting", 200);
    cr_assert_eq(ifield(doc, "acted"), 2);
    cr_assert_str_eq(sfield(doc, "action"), "stop");
    json_decref(doc);
    cr_assert_str_eq(state_of(a), "cancelled");
    cr_assert_str_eq(state_of(b), "cancelled");
    doc = bulk("action=stop&workflow=publish-draft&state=waiting", 200);
    cr_assert_eq(ifield(doc, "count"), 0, "nothing left to stop");
    json_decref(doc);

    static const char *const bad[] = {"action=explode&workflow=publish-draft&state=failed",
                                      "action=retry&workflow=publish-draft&state=completed",
                                      "action=retry&workflow=publish-draft&state=queued",
                                      "action=stop&workflow=publish-draft&state=failed",
                                      "action=stop&state=queued",
                                      "action=stop&workflow=publish-draft",
                                      "action=stop&workflow=publish-draft&state=queued&until=soon",
                                      "action=stop&workflow=bad%20name&state=queued"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) json_decref(bulk(bad[i], 400));
    json_decref(call("GET", "/api/bulk", 405));
    json_decref(call("DELETE", "/api/bulk", 405));
    free(a);
    free(b);
}

Test(web_api, restart_runs_a_finished_run_again)
{
    char *id = start_run("publish-draft", "{\"title\":\"again\"}", "--wait", NULL, NULL);
    cr_assert_str_eq(state_of(id), "completed");
    json_t *doc = act(id, "restart", 200);
    cr_assert_eq(ifield(json_object_get(doc, "run"), "attempt"), 2);
    json_decref(doc);
    wait_state(id, "completed");
    cr_assert_eq(run_attempt(id), 2);
    free(id);
}

/* Member `key` of `workflow`'s entry in GET /api/workflows (a new reference; fails the test
 * when the workflow or the member is missing). */
static json_t *workflow_member(const char *workflow, const char *key)
{
    json_t *doc = call("GET", "/api/workflows", 200), *w, *v = NULL;
    size_t i;
    json_array_foreach(json_object_get(doc, "workflows"), i, w)
    {
        if (strcmp(sfield(w, "workflow"), workflow) == 0) v = json_incref(json_object_get(w, key));
    }
    json_decref(doc);
    cr_assert_not_null(v, "%s of %s", key, workflow);
    return v;
}

static long long live_workers_of(const char *workflow)
{
    json_t *v = workflow_member(workflow, "liveWorkers");
    long long live = json_integer_value(v);
    json_decref(v);
    return live;
}

/* Runs queued for a workflow no live worker runs: the workflow and the run say so. */
Test(web_api, says_when_no_live_worker_runs_a_workflow)
{
    cr_assert_eq(live_workers_of("publish-draft"), 1);
    int status = wf_test_kill(env.worker, SIGTERM, 15000);
    env.worker = 0;
    cr_assert(WIFEXITED(status), "the worker exits on SIGTERM");
    cr_assert_eq(live_workers_of("publish-draft"), 0, "a worker that left is not live");
    char *id = start_run("publish-draft", "{}", NULL, NULL, NULL);
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s", id);
    json_t *doc = call("GET", path, 200);
    cr_assert_str_eq(sfield(doc, "state"), "queued");
    cr_assert_eq(ifield(doc, "liveWorkers"), 0);
    json_decref(doc);
    free(id);
}

/* Behind a TLS-terminating proxy that forwards /ops/wf/ and the Host: the page's POSTs carry an
 * https Origin of that host, which is this server's own. */
Test(web_api, behind_a_proxy_an_https_origin_may_post)
{
    token_port = wf_test_free_port();
    web_token = start_web_at(token_port, TOKEN, "/ops/wf");
    char *id = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    char path[300];
    snprintf(path, sizeof path, "/ops/wf/api/runs/%s/pause", id);
    response res;
    cr_assert_eq(http_to(token_port, "POST", path,
                         "Host: wf.example.com\r\nOrigin: https://wf.evil.example\r\n"
                         "Authorization: Bearer " TOKEN "\r\n",
                         &res),
                 403);
    response_free(&res);
    cr_assert_str_eq(state_of(id), "waiting");
    cr_assert_eq(http_to(token_port, "POST", path,
                         "Host: wf.example.com\r\nOrigin: https://wf.example.com\r\n"
                         "Authorization: Bearer " TOKEN "\r\n",
                         &res),
                 200, "%s", res.body ? res.body : "");
    response_free(&res);
    cr_assert_str_eq(state_of(id), "paused");
    free(id);
}

/* ---- Schedules ---------------------------------------------------------------------------------
 */

/* Adds schedule `id` of publish-draft with `wf schedule add`. */
static void add_schedule(const char *id, const char *spec, const char *input)
{
    char *out = NULL;
    cr_assert_eq(wf(&out, "schedule", "add", id, "publish-draft", spec, input, NULL), 0);
    free(out);
}

Test(web_api, schedules_are_listed)
{
    add_schedule("nightly", "@daily", "{\"title\":\"Nightly\"}");
    json_t *doc = call("GET", "/api/schedules", 200);
    json_t *list = json_object_get(doc, "schedules");
    cr_assert_eq(json_array_size(list), 1);
    json_t *s = json_array_get(list, 0);
    cr_assert_str_eq(sfield(s, "id"), "nightly");
    cr_assert_str_eq(sfield(s, "workflow"), "publish-draft");
    cr_assert_str_eq(sfield(s, "spec"), "@daily");
    cr_assert_str_eq(sfield(json_object_get(s, "input"), "title"), "Nightly");
    cr_assert_gt(ifield(s, "nextAt"), ifield(s, "createdAt"));
    cr_assert_eq(ifield(s, "fires"), 0);
    json_decref(doc);
    doc = call("GET", "/api/schedules?workflow=slow", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "schedules")), 0);
    json_decref(doc);
    json_decref(call("GET", "/api/schedules?workflow=bad%20name", 400));
    json_decref(call("POST", "/api/schedules", 405));
}

static json_t *only_schedule(void)
{
    json_t *doc = call("GET", "/api/schedules", 200);
    json_t *s = json_incref(json_array_get(json_object_get(doc, "schedules"), 0));
    json_decref(doc);
    cr_assert_not_null(s);
    return s;
}

Test(web_api, schedules_pause_resume_and_trigger)
{
    add_schedule("hourly", "@hourly", "{\"title\":\"Now\"}");
    json_decref(call("POST", "/api/schedules/publish-draft/hourly/pause", 200));
    json_t *s = only_schedule();
    cr_assert(json_is_true(json_object_get(s, "paused")));
    json_decref(s);
    json_t *doc = call("POST", "/api/schedules/publish-draft/hourly/trigger", 200);
    char *run = strdup(sfield(doc, "runId"));
    json_decref(doc);
    cr_assert_not_null(strstr(run, "publish-draft:sched-hourly"), "%s", run);
    wait_state(run, "completed");
    s = only_schedule();
    cr_assert_eq(ifield(s, "fires"), 1);
    cr_assert_str_eq(sfield(s, "lastRun"), run);
    json_decref(s);
    json_decref(call("POST", "/api/schedules/publish-draft/hourly/resume", 200));
    s = only_schedule();
    cr_assert(json_is_false(json_object_get(s, "paused")));
    json_decref(s);

    json_decref(call("POST", "/api/schedules/publish-draft/nope/pause", 404));
    json_decref(call("POST", "/api/schedules/publish-draft/hourly/explode", 404));
    json_decref(call("POST", "/api/schedules/publish-draft/hourly", 404));
    json_decref(call("POST", "/api/schedules/bad%20name/hourly/pause", 400));
    json_decref(call("GET", "/api/schedules/publish-draft/hourly/pause", 405));
    free(run);
}

static int workflow_paused(const char *workflow)
{
    json_t *v = workflow_member(workflow, "paused");
    int paused = json_is_true(v);
    json_decref(v);
    return paused;
}

Test(web_api, a_workflow_pauses_and_resumes)
{
    cr_assert_eq(workflow_paused("publish-draft"), 0);
    json_t *doc = call("POST", "/api/workflows/publish-draft/pause", 200);
    cr_assert(json_is_true(json_object_get(doc, "paused")));
    json_decref(doc);
    cr_assert_eq(workflow_paused("publish-draft"), 1);
    cr_assert_eq(workflow_paused("slow"), 0, "only that workflow");
    char *id = start_run("publish-draft", "{}", NULL, NULL, NULL);
    json_decref(call("POST", "/api/workflows/publish-draft/resume", 200));
    cr_assert_eq(workflow_paused("publish-draft"), 0);
    wait_state(id, "completed");
    json_decref(call("GET", "/api/workflows/publish-draft/pause", 405));
    json_decref(call("POST", "/api/workflows/publish-draft/explode", 404));
    json_decref(call("POST", "/api/workflows/bad%20name/pause", 400));
    free(id);
}

static long long sum(json_t *a)
{
    long long s = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) s += json_integer_value(v);
    return s;
}

Test(web_api, a_workflows_history_per_hour_and_day)
{
    char *id = start_run("publish-draft", "{}", "--wait", NULL, NULL);
    json_t *doc = call("GET", "/api/workflows/publish-draft/history", 200);
    cr_assert_str_eq(sfield(doc, "range"), "1h");
    cr_assert_eq(ifield(doc, "stepMs"), 60000);
    cr_assert_eq(json_array_size(json_object_get(doc, "completed")), 60);
    cr_assert_eq(sum(json_object_get(doc, "started")), 1);
    cr_assert_eq(sum(json_object_get(doc, "completed")), 1);
    cr_assert_eq(sum(json_object_get(doc, "failed")), 0);
    cr_assert_gt(ifield(doc, "from"), 0);
    json_decref(doc);
    doc = call("GET", "/api/workflows/publish-draft/history?range=1d", 200);
    cr_assert_eq(ifield(doc, "stepMs"), 15 * 60000);
    cr_assert_eq(json_array_size(json_object_get(doc, "completed")), 96);
    cr_assert_eq(sum(json_object_get(doc, "completed")), 1);
    json_decref(doc);
    json_decref(call("GET", "/api/workflows/publish-draft/history?range=1y", 400));
    json_decref(call("POST", "/api/workflows/publish-draft/history", 405));
    free(id);
}

/* A stop with a reason: the run's error, and its history, which records what happened. */
Test(web_api, a_stop_with_a_reason_and_the_runs_history)
{
    char *id = start_run("publish-draft", "--delay", "600000", NULL, NULL);
    act_state(id, "pause", "paused");
    act_state(id, "resume", "waiting");
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s/stop?reason=deploy%%20rollback", id);
    json_decref(call("POST", path, 200));
    snprintf(path, sizeof path, "/api/runs/%s", id);
    json_t *doc = call("GET", path, 200);
    cr_assert_str_eq(sfield(doc, "state"), "cancelled");
    cr_assert_not_null(strstr(sfield(doc, "error"), "deploy rollback"), "%s", sfield(doc, "error"));
    json_t *events = json_object_get(doc, "events"), *e;
    size_t i;
    const char *want[] = {"enqueued", "paused", "resumed", "stopped"};
    size_t next = 0;
    json_array_foreach(events, i, e)
    {
        if (next < 4 && strcmp(sfield(e, "kind"), want[next]) == 0) {
            if (next == 3)
                cr_assert_not_null(strstr(sfield(e, "detail"), "deploy rollback"), "%s",
                                   sfield(e, "detail"));
            cr_assert_gt(ifield(e, "at"), 0);
            next++;
        }
    }
    cr_assert_eq(next, 4, "enqueued, paused, resumed, stopped in order (%zu of them found)",
                 json_array_size(events));
    json_decref(doc);
    char *long_reason = malloc(300);
    memset(long_reason, 'x', 299);
    long_reason[299] = '\0';
    char long_path[600];
    snprintf(long_path, sizeof long_path, "/api/runs/%s/stop?reason=%s", id, long_reason);
    json_decref(call("POST", long_path, 400));
    free(long_reason);
    free(id);
}

/* ---- Dead letters ------------------------------------------------------------------------------
 */

static int one_dead_letter(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(env.rc, "LLEN wf:{publish-draft}:dead") == 1;
}

Test(web_api, dead_letters_of_a_workflow)
{
    json_t *doc = call("GET", "/api/dead?workflow=publish-draft", 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "deadLetters")), 0);
    json_decref(doc);
    freeReplyObject(redisCommand(env.rc, "XADD wf:{publish-draft}:queue * x no-record-here"));
    cr_assert(wf_test_wait(one_dead_letter, NULL, 10000), "the worker moves the entry aside");
    doc = call("GET", "/api/dead?workflow=publish-draft&limit=10", 200);
    json_t *list = json_object_get(doc, "deadLetters");
    cr_assert_eq(json_array_size(list), 1);
    json_t *d = json_array_get(list, 0);
    cr_assert_not_null(strstr(sfield(d, "reason"), "no field 'r'"), "%s", sfield(d, "reason"));
    cr_assert(json_is_null(json_object_get(d, "runId")));
    cr_assert_gt(ifield(d, "at"), 0);
    cr_assert_gt(strlen(sfield(d, "entry")), 0);
    json_decref(doc);
    json_t *dead = workflow_member("publish-draft", "dead");
    cr_assert_eq(json_integer_value(dead), 1, "the workflow's stats count it");
    json_decref(dead);
    json_decref(call("GET", "/api/dead", 400));
    json_decref(call("GET", "/api/dead?workflow=publish-draft&limit=0", 400));
    json_decref(call("GET", "/api/dead?workflow=bad%20name", 400));
    json_decref(call("POST", "/api/dead?workflow=publish-draft", 405));
}
