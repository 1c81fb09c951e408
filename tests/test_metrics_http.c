/* test_metrics_http.c - wf-worker --http as an operator meets it: /readyz saying why while Redis
 * is unreachable, the token rule, one port per process and each process's entry in P:workers.
 * Real redis-server, real wf-worker processes (metrics_env.h); every wait polls a condition with
 * a deadline. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics_env.h"

TestSuite(metrics, .init = metrics_setup, .fini = metrics_teardown, .timeout = 120);

typedef struct body_wait {
    int port;
    const char *path;
    long status;
    const char *text;
} body_wait;

static int body_has(void *arg)
{
    body_wait *b = arg;
    char *body = NULL;
    long s = http_get(b->port, b->path, NULL, &body);
    int ok = s == b->status && strstr(body, b->text);
    free(body);
    return ok;
}

Test(metrics, readyz_says_why_while_redis_is_unreachable)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wait_http(http_port, "/readyz", 200);
    /* Cut the worker off: drop its connections and refuse new ones (only ours stays). */
    redisReply *r = wf_test_command(rc, "CONFIG SET maxclients 1");
    if (r) freeReplyObject(r);
    r = wf_test_command(rc, "CLIENT KILL TYPE normal");
    if (r) freeReplyObject(r);
    body_wait b = {http_port, "/readyz", 503, "not ready: "};
    cr_assert(wf_test_wait(body_has, &b, 10000), "readyz turned 503 with a reason");
    wait_metric("wf_worker_ready", "", 0);
    wait_http(http_port, "/healthz", 200); /* alive all the same */
    r = wf_test_command(rc, "CONFIG SET maxclients 10000");
    if (r) freeReplyObject(r);
    wait_http(http_port, "/readyz", 200);
    wait_metric("wf_worker_ready", "", 1);
}

Test(metrics, token_rule)
{
    char *wfdir = wf_test_path("tests/workflows");
    char all[64], other[64];
    snprintf(all, sizeof all, "0.0.0.0:%d", http_port);
    snprintf(other, sizeof other, "10.1.2.3:%d", http_port);
    char *out = NULL;
    cr_assert_eq(
        wf_test_run_worker(
            (const char *[]){"--redis", srv.url, "--workflows", wfdir, "--http", all, NULL}, &out),
        2, "beyond loopback without a token is refused: %s", out);
    cr_assert(strstr(out, "token"), "the message names the token: %s", out);
    free(out);
    cr_assert_eq(
        wf_test_run_worker((const char *[]){"--redis", srv.url, "--workflows", wfdir, "--http",
                                            other, "--http-token", "short", NULL},
                           NULL),
        2, "a short token is refused");
    cr_assert_eq(wf_test_run_worker((const char *[]){"--redis", srv.url, "--workflows", wfdir,
                                                     "--http", "nonsense", NULL},
                                    NULL),
                 2, "not HOST:PORT");
    free(wfdir);

    const char *token = "0123456789abcdef-test-token";
    worker_pid = start_worker((const char *[]){"--processes", "1", "--http-token", token, NULL});
    http_wait h = {http_port, "/healthz", token, 200};
    cr_assert(wf_test_wait(answers, &h, 15000), "healthz with the token");
    cr_assert_eq(http_get(http_port, "/healthz", NULL, NULL), 401, "no token: 401");
    cr_assert_eq(http_get(http_port, "/metrics", "0123456789abcdef-test-tokeX", NULL), 401);
    cr_assert_eq(http_get(http_port, "/metrics", token, NULL), 200);
}

typedef struct workers_wait {
    size_t want;
    wf_worker_info *list;
    size_t n;
} workers_wait;

static int workers_are(void *arg)
{
    workers_wait *w = arg;
    wf_workers_free(w->list, w->n);
    w->list = NULL;
    w->n = 0;
    wf_error err = {0};
    if (wf_list_workers(cl, 0, &w->list, &w->n, &err) != WF_OK) return 0;
    return w->n == w->want;
}

Test(metrics, processes_take_consecutive_ports_and_register_in_p_workers)
{
    worker_pid = start_worker(
        (const char *[]){"--processes", "2", "--concurrency", "3", "--lease-ms", "900", NULL});
    wait_http(http_port, "/healthz", 200);
    wait_http(http_port + 1, "/healthz", 200);
    workers_wait ww = {2, NULL, 0};
    cr_assert(wf_test_wait(workers_are, &ww, 10000), "two live workers in P:workers");
    for (size_t i = 0; i < ww.n; i++) {
        const wf_worker_info *w = &ww.list[i];
        cr_assert_eq(w->concurrency, 3);
        cr_assert_neq(w->pid, worker_pid, "a child, not the supervisor");
        char pid[32];
        snprintf(pid, sizeof pid, ":%lld:", w->pid);
        cr_assert(strstr(w->name, pid), "the consumer name %s carries the pid", w->name);
        cr_assert_not_null(w->host);
        cr_assert(!w->stale);
        int echo = 0;
        for (size_t k = 0; k < w->nworkflows; k++) echo |= strcmp(w->workflows[k], "echo") == 0;
        cr_assert(echo, "lists its workflows");
        cr_assert_gt(w->started_at_ms, 0);
        cr_assert_geq(w->last_seen_ms, w->started_at_ms);
        char *json = wf_test_cmd_str(rc, "HGET wf:workers %s", w->name);
        cr_assert_not_null(json);
        cr_assert(strstr(json, "\"http\":\"http://127.0.0.1:"), "%s", json);
        free(json);
    }
    wf_workers_free(ww.list, ww.n);
    /* A clean exit removes the entries. */
    int status = wf_test_kill(worker_pid, SIGTERM, 30000);
    worker_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    cr_assert_eq(wf_test_cmd_int(rc, "HLEN wf:workers"), 0, "P:workers is empty after the drain");
}
