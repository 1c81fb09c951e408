/* test_sentinel.c - redis+sentinel:// URLs: parsing, and a real failover. A master, a replica and
 * three redis-sentinel processes on loopback; a wf-worker and a client that know only the
 * sentinels. Runs complete; the master is SIGKILLed; the sentinels promote the replica; runs
 * started after the failover complete, i.e. the worker found the new master on its own and kept
 * claiming (the "workers stop processing after a reconnect" failure must not happen). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sentinel.h"
#include "wf_internal.h"

/* ---- parsing (no servers) ---------------------------------------------------------------------
 */

Test(sentinel_url, parses_hosts_master_db_and_credentials)
{
    wf__url u;
    wf_error err = {0};
    cr_assert_eq(wf__url_parse("redis+sentinel://app:s%40cret@10.0.0.1:26380,sent-2,[::1]:26381/"
                               "main-1/3?prefix=jobs",
                               &u, &err),
                 WF_OK, "%s", err.message);
    cr_assert_not_null(u.sentinel);
    cr_assert_eq(u.sentinel->n, 3);
    cr_assert_str_eq(u.sentinel->host[0], "10.0.0.1");
    cr_assert_eq(u.sentinel->port[0], 26380);
    cr_assert_str_eq(u.sentinel->host[1], "sent-2");
    cr_assert_eq(u.sentinel->port[1], 26379);
    cr_assert_str_eq(u.sentinel->host[2], "::1");
    cr_assert_eq(u.sentinel->port[2], 26381);
    cr_assert_str_eq(u.sentinel->master, "main-1");
    cr_assert_eq(u.db, 3);
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "s@cret");
    cr_assert_str_eq(u.prefix, "jobs");
    cr_assert_null(strstr(u.redacted, "cret"), "no password in %s", u.redacted);
    cr_assert_str_eq(u.redacted, "redis+sentinel://app:***@10.0.0.1:26380,sent-2:26379,[::1]:26381"
                                 "/main-1/3?prefix=jobs");
    wf__url_free(&u);
}

Test(sentinel_url, refuses_malformed)
{
    static const char *const bad[] = {
        "redis+sentinel://127.0.0.1:26379",                     /* no master name */
        "redis+sentinel:///mymaster",                           /* no sentinel */
        "redis+sentinel://h:0/m",                               /* port */
        "redis+sentinel://h:99999/m",                           /* port */
        "redis+sentinel://h,,k/m",                              /* empty address */
        "redis+sentinel://h/",                                  /* empty name */
        "redis+sentinel://h/bad{name}",                         /* name */
        "redis+sentinel://h/m/x",                               /* db */
        "redis+sentinel://h$x/m",                               /* host */
        "redis+sentinel://h/m?nope=1",                          /* query */
        "redis+sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m", /* 17 sentinels */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wf__url u;
        wf_error err = {0};
        cr_assert_eq(wf__url_parse(bad[i], &u, &err), WF_ERR_URL, "'%s' was accepted", bad[i]);
    }
}

Test(sentinel_url, no_sentinel_reachable_fails_fast)
{
    int port = wf_test_free_port();
    char url[128];
    snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d/mymaster?timeout_ms=500", port);
    wf_error err = {0};
    wf_client *c = wf_client_connect(url, &err);
    cr_assert_null(c);
    cr_assert_eq(err.code, WF_ERR_CONNECT);
    cr_assert(strstr(err.message, "unreachable"), "%s", err.message);
}

/* ---- a real failover ------------------------------------------------------------------------ */

static wf_test_redis master, replica;
static pid_t sentinels[3];
static int sports[3];
static char dir[256], sdir[256], url[256];
static pid_t worker;

static int port_answers(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = wf_test_command(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
}

/* Runs a command on a fresh connection to `port`; returns the reply (caller frees) or NULL. */
static redisReply *ask(int port, const char *fmt, const char *arg)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r = NULL;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        r = wf_test_command(c, fmt, arg);
    }
    if (c) redisFree(c);
    return r;
}

static int replica_linked(void *arg)
{
    (void)arg;
    redisReply *r = ask(replica.port, "INFO %s", "replication");
    int ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "master_link_status:up");
    if (r) freeReplyObject(r);
    return ok;
}

/* Every sentinel sees the two others and the replica. */
static int sentinels_ready(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        redisReply *a = ask(sports[i], "SENTINEL sentinels %s", "mymaster");
        redisReply *b = ask(sports[i], "SENTINEL replicas %s", "mymaster");
        int ok = a && b && a->type == REDIS_REPLY_ARRAY && a->elements == 2 &&
                 b->type == REDIS_REPLY_ARRAY && b->elements == 1;
        if (a) freeReplyObject(a);
        if (b) freeReplyObject(b);
        if (!ok) return 0;
    }
    return 1;
}

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&master, NULL), 0);
    char conf[128];
    snprintf(conf, sizeof conf, "replicaof 127.0.0.1 %d\nreplica-read-only yes", master.port);
    cr_assert_eq(wf_test_redis_start(&replica, conf), 0);
    cr_assert(wf_test_wait(replica_linked, NULL, 10000), "replica linked to the master");
    wf_test_temp_dir(dir, sizeof dir, "sentinel");
    snprintf(sdir, sizeof sdir, "%s", dir);
    size_t off = (size_t)snprintf(url, sizeof url, "redis+sentinel://");
    for (int i = 0; i < 3; i++) {
        sports[i] = wf_test_free_port();
        char path[320], log[320];
        snprintf(path, sizeof path, "%s/sentinel%d.conf", dir, i);
        snprintf(log, sizeof log, "%s/sentinel%d.log", dir, i);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"
                "sentinel monitor mymaster 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 4000\n"
                "sentinel parallel-syncs mymaster 1\n",
                sports[i], dir, master.port);
        fclose(f);
        const char *argv[] = {"/usr/bin/redis-sentinel", path, NULL};
        sentinels[i] = wf_test_spawn(argv, NULL, log);
        off += (size_t)snprintf(url + off, sizeof url - off, "%s127.0.0.1:%d", i ? "," : "",
                                sports[i]);
    }
    snprintf(url + off, sizeof url - off, "/mymaster");
    for (int i = 0; i < 3; i++) {
        int ok = 0;
        for (int t = 0; t < 200 && !(ok = port_answers(sports[i])); t++) usleep(25000);
        cr_assert(ok, "sentinel %d answers (is redis-sentinel installed? scripts/deps)", i);
    }
    cr_assert(wf_test_wait(sentinels_ready, NULL, 20000), "sentinels discovered each other");
    worker = 0;
}

static void teardown(void)
{
    if (worker > 0) wf_test_kill(worker, SIGKILL, 5000);
    for (int i = 0; i < 3; i++)
        if (sentinels[i] > 0) wf_test_kill(sentinels[i], SIGTERM, 5000);
    wf_test_redis_stop(&replica);
    wf_test_redis_stop(&master);
    wf_test_remove_tree(dir);
}

TestSuite(sentinel, .init = setup, .fini = teardown, .timeout = 120);

typedef struct runs_wait {
    wf_client *cl;
    char **ids;
    int n;
} runs_wait;

static int runs_completed(void *arg)
{
    runs_wait *w = arg;
    for (int i = 0; i < w->n; i++) {
        wf_error err = {0};
        wf_run *run = wf_get_workflow_run(w->cl, w->ids[i], &err);
        if (!run) return 0;
        wf_status st;
        int ok = 0;
        if (wf_run_status(run, &st, &err) == WF_OK) {
            ok = st.state == WF_STATE_COMPLETED;
            wf_status_clear(&st);
        }
        wf_run_free(run);
        if (!ok) return 0;
    }
    return 1;
}

/* Starts n runs of echo, retrying each while Redis is unreachable (a failover in progress). */
static void start_runs(wf_client *cl, char **ids, int n)
{
    for (int i = 0; i < n; i++) {
        wf_run *run = NULL;
        wf_error err = {0};
        for (int tries = 0; !run && tries < 200; tries++) {
            run = wf_run_workflow(cl, "echo", NULL, 0, &err);
            if (!run) usleep(100000);
        }
        cr_assert_not_null(run, "start run %d: %s", i, err.message);
        ids[i] = strdup(wf_run_id(run));
        wf_run_free(run);
    }
}

static int promoted(void *arg)
{
    (void)arg;
    redisReply *r = ask(replica.port, "%s", "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             strcmp(r->element[0]->str, "master") == 0;
    if (r) freeReplyObject(r);
    return ok;
}

Test(sentinel, worker_follows_a_failover_and_keeps_claiming)
{
    char log[320];
    snprintf(log, sizeof log, "%s/worker.log", dir);
    /* Registered through the sentinels: seen on the master they name. */
    redisContext *mc = wf_test_redis_connect(&master);
    cr_assert_not_null(mc);
    worker = wf_test_worker_start(
        &(wf_test_worker){.redis_url = url,
                          .extra = (const char *[]){"--processes", "1", "--lease-ms", "1000", NULL},
                          .log_path = log,
                          .rc = mc,
                          .workflows = (const char *[]){"echo", NULL},
                          .timeout_ms = 15000});
    redisFree(mc);

    wf_client *cl = wf_test_client(url);
    cr_assert(strstr(wf_client_url(cl), "redis+sentinel://127.0.0.1:"), "%s", wf_client_url(cl));
    enum { N = 20 };
    char *before[N], *after[N];
    start_runs(cl, before, N);
    runs_wait w = {cl, before, N};
    cr_assert(wf_test_wait(runs_completed, &w, 20000), "runs complete before the failover");
    redisReply *r = ask(master.port, "WAIT 1 %s", "2000");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "replica caught up");
    freeReplyObject(r);

    /* The master dies. */
    wf_test_kill(master.pid, SIGKILL, 5000);
    master.pid = 0;
    cr_assert(wf_test_wait(promoted, NULL, 30000), "the sentinels promoted the replica");

    /* Runs started now (the client reconnects through the sentinels) complete: the worker
     * found the new master by itself and claims again. */
    start_runs(cl, after, N);
    w.ids = after;
    if (!wf_test_wait(runs_completed, &w, 30000)) {
        char *text = wf_test_slurp(log);
        cr_assert_fail("runs started after the failover did not complete\n%s", text);
    }
    w.ids = before; /* replicated before the kill: still there and completed */
    cr_assert(runs_completed(&w), "runs completed before the failover are kept");
    for (int i = 0; i < N; i++) {
        free(before[i]);
        free(after[i]);
    }
    wf_client_free(cl);

    int status = wf_test_kill(worker, SIGTERM, 30000);
    worker = 0;
    char *text = wf_test_slurp(log);
    int restored = strstr(text, "restored") != NULL;
    for (char *line = text; line && *line;) { /* the worker's side of the failover */
        char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        if (memmem(line, (size_t)len, "onnection", 9)) printf("worker: %.*s\n", len, line);
        line = nl ? nl + 1 : NULL;
    }
    int clean = !strstr(text, "Sanitizer") && !strstr(text, "runtime error");
    if (!clean || !restored) fprintf(stderr, "%s", text);
    free(text);
    cr_assert(restored, "the worker logged its connections restored");
    cr_assert(clean, "a sanitizer reported an error in the worker");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker drained (0x%x)", status);
}
