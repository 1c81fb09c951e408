/* test_metrics_http.c - wf-worker --http as an operator meets it: /readyz saying why while Redis
 * is unreachable, the token rule, the supervisor's one port for the host (its counters add up
 * the processes and outlive a killed one), the queue gauges exported by one process of the
 * deployment, and each process's entry in P:workers.
 * Real redis-server, real wf-worker processes (metrics_env.h); every wait polls a condition with
 * a deadline. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
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

/* The counters of the host, from the supervisor's one port: `want` completed echo runs. */
static void wait_completed(double want)
{
    wait_metric("wf_runs_completed_total", "workflow=\"echo\"", want);
}

static void complete_echo_runs(int n)
{
    for (int i = 0; i < n; i++) {
        wf_run *run = start_json("echo", "{\"n\": 1}");
        wf_run_free(run);
    }
}

Test(metrics, the_supervisor_serves_the_host_on_one_port_and_registers_processes)
{
    worker_pid = start_worker(
        (const char *[]){"--processes", "2", "--concurrency", "3", "--lease-ms", "900", NULL});
    wait_http(http_port, "/readyz", 200);
    cr_assert_eq(http_get(http_port + 1, "/healthz", NULL, NULL), 0,
                 "no second port: the processes serve nothing of their own");
    workers_wait ww = {2, NULL, 0};
    cr_assert(wf_test_wait(workers_are, &ww, 10000), "two live workers in P:workers");
    char served[64];
    snprintf(served, sizeof served, "\"http\":\"http://127.0.0.1:%d/\"", http_port);
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
        cr_assert(strstr(json, served), "names the supervisor's address: %s", json);
        free(json);
    }
    wf_workers_free(ww.list, ww.n);
    wait_metric("wf_worker_processes", "ready=\"true\"", 2);
    wait_metric("wf_worker_concurrency", "", 6);
    cr_assert_eq(value(&scraped, "wf_worker_ready", ""), 1);
    cr_assert(!isnan(value(&scraped, "wf_worker_process_resident_memory_bytes", "process=\"1\"")),
              "each process's memory");
    /* A clean exit removes the entries. */
    int status = wf_test_kill(worker_pid, SIGTERM, 30000);
    worker_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    cr_assert_eq(wf_test_cmd_int(rc, "HLEN wf:workers"), 0, "P:workers is empty after the drain");
}

/* A pid of a worker process under the supervisor (from P:workers), and that it is not `not`. */
typedef struct child_wait {
    long long not_pid, pid;
} child_wait;

static int a_child_other_than(void *arg)
{
    child_wait *c = arg;
    wf_worker_info *list = NULL;
    size_t n = 0;
    wf_error err = {0};
    c->pid = 0;
    if (wf_list_workers(cl, 0, &list, &n, &err) != WF_OK) return 0;
    for (size_t i = 0; i < n && !c->pid; i++)
        if (list[i].pid != c->not_pid && list[i].pid != worker_pid) c->pid = list[i].pid;
    wf_workers_free(list, n);
    return c->pid != 0;
}

Test(metrics, host_counters_add_up_processes_and_outlive_a_killed_one)
{
    worker_pid = start_worker((const char *[]){"--processes", "2", "--lease-ms", "900", NULL});
    wait_metric("wf_worker_processes", "ready=\"true\"", 2);
    complete_echo_runs(20);
    wait_completed(20);
    /* Per-process counters would lose what the killed process counted; the host's do not. */
    child_wait c = {0, 0};
    cr_assert(wf_test_wait(a_child_other_than, &c, 10000));
    cr_assert_eq(kill((pid_t)c.pid, SIGKILL), 0);
    child_wait fresh = {c.pid, 0};
    cr_assert(wf_test_wait(a_child_other_than, &fresh, 15000), "the supervisor restarted it");
    wait_metric("wf_worker_processes", "ready=\"true\"", 2);
    cr_assert_eq(value(&scraped, "wf_runs_completed_total", "workflow=\"echo\""), 20,
                 "a killed process's counts stay");
    complete_echo_runs(5);
    wait_completed(25);
}

/* The number of the two scrapes (ports a and b) that carry wf_queue_depth{workflow="echo"}. */
typedef struct depth_wait {
    int port[2];
    int want;
    int holder; /* the port that has it, when exactly one does */
} depth_wait;

static int depth_exported_by(void *arg)
{
    depth_wait *d = arg;
    int n = 0;
    d->holder = 0;
    for (int i = 0; i < 2; i++) {
        if (!d->port[i]) continue;
        char *body = NULL;
        if (http_get(d->port[i], "/metrics", NULL, &body) == 200 &&
            strstr(body, "\nwf_queue_depth{workflow=\"echo\"} ")) {
            n++;
            d->holder = d->port[i];
        }
        free(body);
    }
    return n == d->want;
}

Test(metrics, queue_gauges_come_from_one_process_of_the_deployment)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    int other_port = wf_test_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", other_port);
    const char *registers_echo[] = {"echo", NULL};
    pid_t other = wf_test_worker_start(
        &(wf_test_worker){.redis_url = srv.url,
                          .extra = (const char *[]){"--processes", "1", "--http", listen, NULL},
                          .log_path = log_path,
                          .rc = rc,
                          .workflows = registers_echo});
    wait_http(other_port, "/readyz", 200);
    depth_wait d = {{http_port, other_port}, 1, 0};
    cr_assert(wf_test_wait(depth_exported_by, &d, 15000), "exactly one exports the queue depth");
    /* Stop the holder: the other takes the gauge lease over (6 s lease, renewed every 2 s). */
    pid_t holder = d.holder == http_port ? worker_pid : other;
    int status = wf_test_kill(holder, SIGTERM, 30000);
    cr_assert(WIFEXITED(status), "status 0x%x", status);
    if (holder == worker_pid) worker_pid = 0;
    d.port[d.holder == http_port ? 0 : 1] = 0;
    cr_assert(wf_test_wait(depth_exported_by, &d, 20000), "the survivor exports it");
    if (holder != other) wf_test_kill(other, SIGTERM, 30000);
}
