/* test_web_api.c - the dashboard's JSON API (`wf web`) over real HTTP, with a real Redis and a
 * real wf-worker: the listings, a run in detail, the actions and their refusals, 400/404/405,
 * the page itself, the access checks (loopback Host, Origin, the token, an https Origin behind
 * a proxy) and the refusals at start-up; restart and the live-worker count. Bulk actions,
 * schedules, workflows and dead letters are in test_web_ops.c. */
#include <criterion/criterion.h>

#include "web_env.h"

TestSuite(web_api, .init = web_setup, .fini = web_teardown, .timeout = 120);

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

/* ---- Dead letters ------------------------------------------------------------------------------
 */
