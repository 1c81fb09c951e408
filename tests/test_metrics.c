/* test_metrics.c - operating a worker: wf-worker --http (health, readiness, Prometheus metrics
 * whose counters match the runs done, the token rule, one port per process), its entry in
 * P:workers, and --log-format json. Real redis-server, real wf-worker processes; every wait polls
 * a condition with a deadline. */
#include <ctype.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops_http.h"
#include "pool_env.h"

static int http_port;
static char *scraped_text; /* the body of the last /metrics scrape */

/* A free port whose successor is free too (two worker processes take PORT and PORT+1). */
static int free_port_pair(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int p = wf_test_free_port();
        if (p > 0 && p < 65535 && wf_test_port_free(p + 1)) return p;
    }
    return wf_test_free_port();
}

static void setup(void)
{
    pool_env_setup("metrics");
    http_port = free_port_pair();
}

static void teardown(void)
{
    pool_env_teardown();
    free(scraped_text);
    scraped_text = NULL;
}

TestSuite(metrics, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers --------------------------------------------------------------------------------- */

static int registered(void *arg)
{
    (void)arg;
    static const char *const names[] = {"echo", "fatal", "flaky", "slow", "stepper", "timeout"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (wf_test_cmd_int(rc, "HEXISTS wf:workflows %s", names[i]) != 1) return 0;
    return 1;
}

static pid_t start_worker(const char *const *extra)
{
    char *bin = wf_test_path("wf-worker");
    char *wfdir = wf_test_path("tests/workflows");
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", http_port);
    const char *argv[40] = {bin, "--redis", srv.url, "--workflows", wfdir, "--http", listen};
    int n = 7;
    for (; extra && *extra && n < 38; extra++) argv[n++] = *extra;
    argv[n] = NULL;
    pid_t pid = wf_test_spawn(argv, NULL, log_path);
    free(bin);
    free(wfdir);
    cr_assert_gt(pid, 0);
    cr_assert(wf_test_wait(registered, NULL, 10000), "worker never registered its workflows");
    return pid;
}

typedef struct http_wait {
    int port;
    const char *path, *token;
    long want;
} http_wait;

static int answers(void *arg)
{
    http_wait *h = arg;
    return http_get(h->port, h->path, h->token, NULL) == h->want;
}

static void wait_http(int port, const char *path, long want)
{
    http_wait h = {port, path, NULL, want};
    if (!wf_test_wait(answers, &h, 15000)) {
        char *body = NULL;
        long got = http_get(port, path, NULL, &body);
        cr_assert_fail("GET %s on port %d: %ld (%s), not %ld", path, port, got, body, want);
    }
}

/* Starts a run of `workflow` with a JSON input and priority `priority`. */
/* 1 when no client is blocked in Redis (INFO clients, every master on a cluster). */
static int no_blocked_reader(void *arg)
{
    (void)arg;
    char *info = wf_test_cmd_str(rc, "INFO clients");
    int blocked = 0;
    for (const char *p = info; p && (p = strstr(p, "blocked_clients:")); p++)
        blocked += atoi(p + strlen("blocked_clients:"));
    int ok = info && blocked == 0;
    free(info);
    return ok;
}

static wf_run *start_prio(const char *workflow, const char *json, int priority)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, &sb, &err), WF_OK, "%s", err.message);
    wf_run_options opt = {.priority = priority};
    wf_run *run = wf_run_workflow_ex(cl, workflow, sb.data, sb.size, &opt, &err);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(run, "start %s: %s", workflow, err.message);
    return run;
}

static wf_run *start_json(const char *workflow, const char *json)
{
    return start_prio(workflow, json, WF_PRIORITY_NORMAL);
}

typedef struct count_wait {
    const char *key;
    long long want;
} count_wait;

static int zcard_is(void *arg)
{
    count_wait *c = arg;
    return wf_test_cmd_int(rc, "ZCARD %s", c->key) == c->want;
}

/* ---- a Prometheus text parser ------------------------------------------------------------ */

typedef struct sample {
    char name[128], labels[256];
    double value;
} sample;

typedef struct expo {
    sample s[2048];
    int n;
    char family[128][128], type[128][32];
    int nfam;
} expo;

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':')) return 0;
    return 1;
}

static const char *family_type(const expo *e, const char *name)
{
    for (int i = 0; i < e->nfam; i++)
        if (strcmp(e->family[i], name) == 0) return e->type[i];
    return NULL;
}

/* The family a sample belongs to: its name, or for a histogram the name without the suffix. */
static const char *sample_type(const expo *e, const char *name)
{
    const char *t = family_type(e, name);
    if (t) return t;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int k = 0; k < 3; k++) {
        size_t nl = strlen(name), sl = strlen(sfx[k]);
        if (nl > sl && strcmp(name + nl - sl, sfx[k]) == 0) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(nl - sl), name);
            t = family_type(e, base);
            if (t && strcmp(t, "histogram") == 0) return t;
        }
    }
    return NULL;
}

/* Parses the exposition; asserts on every malformed line. */
static void parse(const char *text, expo *e)
{
    memset(e, 0, sizeof *e);
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *nm = line + 7;
            cr_assert(name_ok(nm, strcspn(nm, " ")), "bad HELP line: %s", line);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char nm[128], ty[32];
            cr_assert_eq(sscanf(line + 7, "%127s %31s", nm, ty), 2, "bad TYPE line: %s", line);
            cr_assert(name_ok(nm, strlen(nm)), "bad metric name: %s", line);
            cr_assert(strcmp(ty, "counter") == 0 || strcmp(ty, "gauge") == 0 ||
                          strcmp(ty, "histogram") == 0 || strcmp(ty, "summary") == 0 ||
                          strcmp(ty, "untyped") == 0,
                      "bad type: %s", line);
            cr_assert_null(family_type(e, nm), "TYPE given twice: %s", line);
            cr_assert_lt(e->nfam, 128);
            snprintf(e->family[e->nfam], 128, "%s", nm);
            snprintf(e->type[e->nfam++], 32, "%s", ty);
            continue;
        }
        cr_assert_neq(line[0], '#', "unknown comment line: %s", line);
        size_t nl = strcspn(line, "{ ");
        cr_assert(name_ok(line, nl), "bad sample name: %s", line);
        cr_assert_lt(e->n, 2048);
        sample *s = &e->s[e->n++];
        snprintf(s->name, sizeof s->name, "%.*s", (int)nl, line);
        const char *p = line + nl;
        if (*p == '{') {
            const char *q = p + 1;
            while (*q != '}') { /* name="value", with \" \\ \n escapes */
                size_t ln = strcspn(q, "=");
                cr_assert(name_ok(q, ln) && q[ln] == '=' && q[ln + 1] == '"', "bad label: %s",
                          line);
                q += ln + 2;
                while (*q && *q != '"') q += *q == '\\' ? 2 : 1;
                cr_assert_eq(*q, '"', "unterminated label value: %s", line);
                q++;
                if (*q == ',') q++;
                cr_assert(*q == '}' || isalpha((unsigned char)*q), "bad label list: %s", line);
            }
            snprintf(s->labels, sizeof s->labels, "%.*s", (int)(q - p - 1), p + 1);
            p = q + 1;
        }
        cr_assert_eq(*p, ' ', "no value: %s", line);
        char *end;
        s->value = strtod(p + 1, &end);
        cr_assert(end != p + 1 && (*end == '\0' || *end == ' '), "bad value: %s", line);
        cr_assert_not_null(sample_type(e, s->name), "sample before its TYPE: %s", line);
    }
    free(copy);
}

/* The value of name{labels} (labels exactly as printed), NAN when absent. */
static double value(const expo *e, const char *name, const char *labels)
{
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, name) == 0 && strcmp(e->s[i].labels, labels) == 0)
            return e->s[i].value;
    return NAN;
}

static expo scraped;

static void scrape(int port)
{
    char *body = NULL;
    cr_assert_eq(http_get(port, "/metrics", NULL, &body), 200, "GET /metrics: %s", body);
    parse(body, &scraped);
    free(scraped_text);
    scraped_text = body;
}

typedef struct metric_wait {
    const char *name, *labels;
    double want;
} metric_wait;

static int metric_is(void *arg)
{
    metric_wait *m = arg;
    scrape(http_port);
    return value(&scraped, m->name, m->labels) == m->want;
}

static void wait_metric(const char *name, const char *labels, double want)
{
    metric_wait m = {name, labels, want};
    cr_assert(wf_test_wait(metric_is, &m, 15000), "%s{%s} is %g, not %g", name, labels,
              value(&scraped, name, labels), want);
}

/* Every wf_* and process_* name that the file `rel` (under the source tree) mentions is a
 * family of the last scrape (a histogram's _bucket/_sum/_count count as its family). Returns how
 * many names were checked. */
static int names_in_scrape(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", WF_SOURCE_DIR, rel);
    char *text = wf_test_slurp(path);
    cr_assert(text && *text, "cannot read %s", path);
    int checked = 0;
    for (const char *p = text; *p; p++) {
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) continue;
        if (strncmp(p, "wf_", 3) != 0 && strncmp(p, "process_", 8) != 0) continue;
        size_t n = 0;
        while (isalnum((unsigned char)p[n]) || p[n] == '_') n++;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        cr_assert_not_null(sample_type(&scraped, name), "%s names %s, which /metrics does not have",
                           rel, name);
        checked++;
        p += n - 1;
    }
    free(text);
    return checked;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

Test(metrics, health_readiness_and_counters_match_the_runs)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--concurrency", "4", NULL});
    wait_http(http_port, "/healthz", 200);
    wait_http(http_port, "/readyz", 200);
    char *body = NULL;
    cr_assert_eq(http_get(http_port, "/healthz", NULL, &body), 200);
    cr_assert_str_eq(body, "ok\n");
    free(body);
    cr_assert_eq(http_get(http_port, "/nope", NULL, NULL), 404);

    enum { N = 20 };
    wf_run *runs[N];
    for (int i = 0; i < N; i++) runs[i] = start_json("echo", "{\"n\": 1}");
    count_wait c = {"wf:{echo}:state:completed", N};
    cr_assert(wf_test_wait(zcard_is, &c, 30000), "the echo runs completed");
    wait_metric("wf_runs_completed_total", "workflow=\"echo\"", N);
    cr_assert_eq(value(&scraped, "wf_attempts_started_total", "workflow=\"echo\""), N);
    cr_assert_eq(value(&scraped, "wf_runs_failed_total", "workflow=\"echo\""), 0);
    const char *echo_ok = "workflow=\"echo\",outcome=\"completed\"";
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count", echo_ok), N);
    char inf[128];
    snprintf(inf, sizeof inf, "%s,le=\"+Inf\"", echo_ok);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_bucket", inf), N);
    cr_assert_str_eq(family_type(&scraped, "wf_attempt_duration_seconds"), "histogram");
    cr_assert_str_eq(family_type(&scraped, "wf_attempts_started_total"), "counter");
    /* The old names stay for one release, with the same values, marked deprecated. */
    cr_assert_eq(value(&scraped, "wf_runs_started_total", "workflow=\"echo\""), N);
    cr_assert_eq(value(&scraped, "wf_run_duration_seconds_count", "workflow=\"echo\""), N);
    cr_assert_eq(value(&scraped, "wf_run_duration_seconds_bucket", "workflow=\"echo\",le=\"+Inf\""),
                 N);
    cr_assert(strstr(scraped_text, "# HELP wf_runs_started_total Deprecated: use "
                                   "wf_attempts_started_total"),
              "wf_runs_started_total is marked deprecated");
    cr_assert(strstr(scraped_text, "# HELP wf_run_duration_seconds Deprecated: use "
                                   "wf_attempt_duration_seconds"),
              "wf_run_duration_seconds is marked deprecated");
    cr_assert_eq(value(&scraped, "wf_runs_in_flight", "workflow=\"echo\""), 0);
    cr_assert_eq(value(&scraped, "wf_worker_concurrency", ""), 4);
    cr_assert_eq(value(&scraped, "wf_worker_ready", ""), 1);
    cr_assert_str_eq(family_type(&scraped, "wf_run_duration_seconds"), "histogram");
    cr_assert_str_eq(family_type(&scraped, "wf_runs_completed_total"), "counter");
    cr_assert_str_eq(family_type(&scraped, "wf_queue_depth"), "gauge");

    /* Which build answers, and the process_* metrics of the Prometheus client libraries. */
    char build[128];
    snprintf(build, sizeof build, "version=\"%s\",schema=\"1\"", WF_VERSION);
    cr_assert_eq(value(&scraped, "wf_build_info", build), 1, "wf_build_info{%s}", build);
    cr_assert_str_eq(family_type(&scraped, "wf_build_info"), "gauge");
    cr_assert_str_eq(family_type(&scraped, "process_cpu_seconds_total"), "counter");
    cr_assert_geq(value(&scraped, "process_cpu_seconds_total", ""), 0);
    double rss = value(&scraped, "process_resident_memory_bytes", "");
    cr_assert(rss > 1e5 && rss < 1e10, "resident memory %g", rss);
    cr_assert_gt(value(&scraped, "process_virtual_memory_bytes", ""), rss);
    double started = value(&scraped, "process_start_time_seconds", ""), now = (double)time(NULL);
    cr_assert(started > now - 600 && started <= now + 2, "started at %f, now %f", started, now);
    double fds = value(&scraped, "process_open_fds", ""),
           max_fds = value(&scraped, "process_max_fds", "");
    cr_assert(fds >= 3 && fds <= max_fds, "%g open fds of %g", fds, max_fds);

    wf_run *fatal = start_json("fatal", "null");
    wait_metric("wf_runs_failed_total", "workflow=\"fatal\"", 1);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count",
                       "workflow=\"fatal\",outcome=\"failed\""),
                 1);
    cr_assert(isnan(value(&scraped, "wf_attempt_duration_seconds_count",
                          "workflow=\"fatal\",outcome=\"completed\"")),
              "no series for an outcome not seen");
    cr_assert_eq(value(&scraped, "wf_runs_completed_total", "workflow=\"fatal\""), 0);
    cr_assert_eq(value(&scraped, "wf_runs_completed_total", "workflow=\"echo\""), N);

    /* A retried attempt, then its completion; a timeout; and durable steps. */
    wf_run *flaky = start_json("flaky", "null");
    wait_metric("wf_runs_completed_total", "workflow=\"flaky\"", 1);
    cr_assert_eq(value(&scraped, "wf_runs_retried_total", "workflow=\"flaky\""), 1);
    cr_assert_eq(value(&scraped, "wf_attempts_started_total", "workflow=\"flaky\""), 2);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count",
                       "workflow=\"flaky\",outcome=\"retried\""),
                 1);
    cr_assert_eq(value(&scraped, "wf_attempt_duration_seconds_count",
                       "workflow=\"flaky\",outcome=\"completed\""),
                 1);
    wf_run *overrun = start_json("timeout", "null");
    wait_metric("wf_runs_terminated_total", "workflow=\"timeout\"", 1);
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"timeout\",outcome=\"terminated\"",
                1);
    wf_run *steps = start_json("stepper", "{\"n\": 3}");
    wait_metric("wf_step_duration_seconds_count", "workflow=\"stepper\"", 3);
    /* A durable sleep suspends the attempt; a second attempt completes the run. */
    wf_run *napper = start_json("stepper", "{\"n\": 2, \"sleep_ms\": 300}");
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"stepper\",outcome=\"suspended\"",
                1);
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"stepper\",outcome=\"completed\"",
                2);

    double rtt = value(&scraped, "wf_redis_rtt_seconds", "");
    cr_assert(rtt >= 0 && rtt < 5, "rtt %g", rtt);
    wait_metric("wf_queue_depth", "workflow=\"echo\"", 0); /* refreshed every second */

    /* Gauges of a backlog: four slow runs hold every slot, three echo runs wait in the queue,
     * one on each priority lane: the depth counts them all. */
    wf_run *slow[4], *queued[3];
    for (int i = 0; i < 4; i++) slow[i] = start_json("slow", "6000");
    wait_metric("wf_runs_in_flight", "workflow=\"slow\"", 4);
    /* With every slot taken no read is re-armed; on a cluster a workflow's blocking read armed
     * while slots were free may still be waiting (up to its 1 s BLOCK) and would take the echo
     * runs: wait until Redis holds no blocked reader. */
    cr_assert(wf_test_wait(no_blocked_reader, NULL, 5000), "a read is still blocked in Redis");
    for (int i = 0; i < 3; i++) queued[i] = start_prio("echo", "2", i - 1);
    wait_metric("wf_queue_depth", "workflow=\"echo\"", 3);
    cr_assert_geq(value(&scraped, "wf_queue_oldest_age_seconds", "workflow=\"echo\""), 0);
    /* A run stopped while its handler runs: the attempt ends cancelled. */
    wf_error err = {0};
    cr_assert_eq(wf_run_stop(slow[0], &err), WF_OK, "%s", err.message);
    wait_metric("wf_attempt_duration_seconds_count", "workflow=\"slow\",outcome=\"cancelled\"", 1);
    for (int i = 0; i < 4; i++) wf_run_free(slow[i]);
    for (int i = 0; i < 3; i++) wf_run_free(queued[i]);
    for (int i = 0; i < N; i++) wf_run_free(runs[i]);
    wf_run_free(fatal);
    wf_run_free(flaky);
    wf_run_free(overrun);
    wf_run_free(steps);
    wf_run_free(napper);

    /* The alert rules and the Grafana dashboard shipped in docs/monitoring name only metrics
     * that exist (the last scrape has every family, the attempt outcomes included). */
    cr_assert_gt(names_in_scrape("docs/monitoring/wf-alerts.yml"), 10);
    cr_assert_gt(names_in_scrape("docs/monitoring/wf-grafana.json"), 20);
}

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
    redisReply *r = redisCommand(rc, "CONFIG SET maxclients 1");
    if (r) freeReplyObject(r);
    r = redisCommand(rc, "CLIENT KILL TYPE normal");
    if (r) freeReplyObject(r);
    body_wait b = {http_port, "/readyz", 503, "not ready: "};
    cr_assert(wf_test_wait(body_has, &b, 10000), "readyz turned 503 with a reason");
    wait_metric("wf_worker_ready", "", 0);
    wait_http(http_port, "/healthz", 200); /* alive all the same */
    r = redisCommand(rc, "CONFIG SET maxclients 10000");
    if (r) freeReplyObject(r);
    wait_http(http_port, "/readyz", 200);
    wait_metric("wf_worker_ready", "", 1);
}

static int run_cli(const char *const *args, char **out)
{
    char *bin = wf_test_path("wf-worker");
    const char *argv[24] = {bin};
    int n = 1;
    for (; args && *args && n < 23; args++) argv[n++] = *args;
    argv[n] = NULL;
    char *cmd_out = NULL;
    /* wf_test_run captures stdout only: usage errors go to stderr, so run through sh. */
    char line[1024] = "";
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(line + off, sizeof line - off, "'%s' ", argv[i]);
    snprintf(line + off, sizeof line - off, "2>&1");
    const char *sh[] = {"/bin/sh", "-c", line, NULL};
    int code = wf_test_run(sh, NULL, NULL, &cmd_out, 10000);
    free(bin);
    if (out)
        *out = cmd_out;
    else
        free(cmd_out);
    return code;
}

Test(metrics, token_rule)
{
    char *wfdir = wf_test_path("tests/workflows");
    char all[64], other[64];
    snprintf(all, sizeof all, "0.0.0.0:%d", http_port);
    snprintf(other, sizeof other, "10.1.2.3:%d", http_port);
    char *out = NULL;
    cr_assert_eq(
        run_cli((const char *[]){"--redis", srv.url, "--workflows", wfdir, "--http", all, NULL},
                &out),
        2, "beyond loopback without a token is refused: %s", out);
    cr_assert(strstr(out, "token"), "the message names the token: %s", out);
    free(out);
    cr_assert_eq(run_cli((const char *[]){"--redis", srv.url, "--workflows", wfdir, "--http", other,
                                          "--http-token", "short", NULL},
                         NULL),
                 2, "a short token is refused");
    cr_assert_eq(run_cli((const char *[]){"--redis", srv.url, "--workflows", wfdir, "--http",
                                          "nonsense", NULL},
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

static int log_has_run_line(void *arg)
{
    (void)arg;
    char *log = wf_test_slurp(log_path);
    int ok = strstr(log, "\"step\":\"flaky\"") != NULL && strstr(log, "attempt failed") != NULL;
    free(log);
    return ok;
}

Test(metrics, json_logs_carry_run_and_step_fields)
{
    worker_pid = start_worker((const char *[]){"--processes", "1", "--log-format", "json", NULL});
    wf_run *fatal = start_json("fatal", "null");
    wf_run *steps = start_json("stepper", "{\"n\": 1, \"flaky\": 2}");
    cr_assert(wf_test_wait(log_has_run_line, NULL, 20000), "the run and step lines were logged");
    char *log = wf_test_slurp(log_path), *save = NULL;
    int lines = 0, run_line = 0, step_line = 0;
    for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *o = json_loads(l, 0, &e);
        cr_assert(json_is_object(o), "not a JSON line: %s (%s)", l, e.text);
        cr_assert(json_is_string(json_object_get(o, "ts")), "%s", l);
        cr_assert(json_is_string(json_object_get(o, "level")), "%s", l);
        cr_assert(json_is_integer(json_object_get(o, "pid")), "%s", l);
        cr_assert(json_is_string(json_object_get(o, "msg")), "%s", l);
        const char *run = json_string_value(json_object_get(o, "run"));
        if (run && strcmp(run, wf_run_id(fatal)) == 0) {
            cr_assert_str_eq(json_string_value(json_object_get(o, "workflow")), "fatal");
            cr_assert_eq(json_integer_value(json_object_get(o, "attempt")), 1);
            run_line = 1;
        }
        const char *step = json_string_value(json_object_get(o, "step"));
        if (step && strcmp(step, "flaky") == 0) {
            cr_assert_str_eq(run, wf_run_id(steps));
            step_line = 1;
        }
        json_decref(o);
        lines++;
    }
    free(log);
    cr_assert_gt(lines, 3);
    cr_assert(run_line && step_line, "a run line (%d) and a step line (%d)", run_line, step_line);
    wf_run_free(fatal);
    wf_run_free(steps);
}

/* A queue entry whose run hash is gone (expired, or deleted by hand) is dropped with a warning
 * that says so and counted, not skipped in silence. */
Test(metrics, queue_entry_of_a_deleted_run_is_logged_and_counted)
{
    cr_assert_geq(wf_test_cmd_int(rc, "HSET wf:workflows echo {}"), 0); /* before any worker */
    wf_run *gone[2], *kept = NULL;
    for (int i = 0; i < 2; i++) gone[i] = start_json("echo", "{\"n\": 1}");
    kept = start_json("echo", "{\"n\": 2}");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(wf_test_cmd_int(rc, "DEL wf:{echo}:run:%s", wf_run_id(gone[i])), 1);
        wf_run_free(gone[i]);
    }
    worker_pid = start_worker((const char *[]){"--processes", "1", NULL});
    wait_metric("wf_queue_entries_orphaned_total", "workflow=\"echo\"", 2);
    count_wait c = {"wf:{echo}:state:completed", 1};
    cr_assert(wf_test_wait(zcard_is, &c, 15000), "the run that still exists completed");
    wf_run_free(kept);
    char *log = wf_test_slurp(log_path);
    int warned = 0;
    for (const char *p = log; p && (p = strstr(p, "does not exist any more")); p++) warned++;
    free(log);
    cr_assert_eq(warned, 2, "one warning per dropped entry");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0, "the entries are gone");
}
