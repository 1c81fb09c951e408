/* web_env.c - the fixture of the dashboard API suites (web_env.h): `wf web` started on a free port
 * over ops_env's Redis and worker, and a minimal blocking HTTP/1.1 client to call it. */
#include "web_env.h"

#include <sys/socket.h>

pid_t web, web_token;
int port, token_port;

void response_free(response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request to port `p` with extra header lines `headers` (each ending in \r\n, may be NULL;
 * a "Host:" among them replaces the default one). Returns the status or -1. */
int http_to(int p, const char *method, const char *path, const char *headers, response *res)
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

int http(const char *method, const char *path, response *res)
{
    return http_to(port, method, path, NULL, res);
}

/* The body as JSON; frees the response. */
json_t *body_json(response *res)
{
    json_t *v = parse(res->body);
    res->body = NULL;
    response_free(res);
    return v;
}

/* GET/POST that must answer `code`; returns the JSON body. */
json_t *call(const char *method, const char *path, int code)
{
    response res;
    int got = http(method, path, &res);
    cr_assert_eq(got, code, "%s %s: %d, want %d: %s", method, path, got, code,
                 res.body ? res.body : "");
    return body_json(&res);
}

static int answers(void *arg)
{
    int fd = wf_test_tcp_connect(*(int *)arg);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

pid_t start_web_at(int p, const char *token, const char *base)
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

pid_t start_web(int p, const char *token)
{
    return start_web_at(p, token, NULL);
}

json_t *act(const char *id, const char *action, int code)
{
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s/%s", id, action);
    return call("POST", path, code);
}

void act_state(const char *id, const char *action, const char *state)
{
    json_t *doc = act(id, action, 200);
    cr_assert(json_is_true(json_object_get(doc, "ok")));
    cr_assert_str_eq(sfield(json_object_get(doc, "run"), "state"), state, "after %s", action);
    json_decref(doc);
}

/* A field of a run as the API shows it. */
long long run_attempt(const char *id)
{
    char path[300];
    snprintf(path, sizeof path, "/api/runs/%s", id);
    json_t *doc = call("GET", path, 200);
    long long attempt = json_integer_value(json_object_get(doc, "attempt"));
    json_decref(doc);
    return attempt;
}

long long ifield(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Member `key` of `workflow`'s entry in GET /api/workflows (a new reference; fails the test
 * when the workflow or the member is missing). */
json_t *workflow_member(const char *workflow, const char *key)
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

void web_setup(void)
{
    ops_env_start();
    port = wf_test_free_port();
    web = start_web(port, NULL);
}

void web_teardown(void)
{
    if (web > 0) {
        int status = wf_test_kill(web, SIGTERM, 5000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wf web did not exit cleanly");
    }
    if (web_token > 0) wf_test_kill(web_token, SIGTERM, 5000);
    web = web_token = 0;
    ops_env_stop();
}
