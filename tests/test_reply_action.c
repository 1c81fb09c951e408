/* test_reply_action.c - the one reply policy (core/reply_action.h): what each Redis error reply
 * asks a router to do, checked on replies a real redis-server gives (BUSY, BUSYGROUP, a missing
 * function,
 * READONLY, WRONGTYPE) and on the texts Redis documents for the ones a single server cannot be
 * made to give here (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, MASTERDOWN; LOADING is test_restart's).
 * Then the synchronous client's side of the policy: a call refused with BUSY waits and succeeds. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "reply_action.h"
#include "wf_internal.h"

static wf_test_redis srv;
static redisContext *rc;

static void setup(void)
{
    /* Its own server (in cluster mode too): the BUSY script must not stall the shared cluster. */
    cr_assert_eq(wf_test_redis_start(&srv, "busy-reply-threshold 50\n"), 0);
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    wf_test_cmd_int(rc, "HSET wf:workflows echo {}"); /* registered: enqueues are accepted */
}

static void teardown(void)
{
    if (rc) redisFree(rc);
    wf_test_redis_stop(&srv);
}

TestSuite(reply_action, .init = setup, .fini = teardown, .timeout = 60);

static wf__reply_act act_of(const char *text)
{
    return wf__reply_action_of(text, strlen(text));
}

Test(reply_action, documented_texts)
{
    static const struct {
        const char *text;
        wf__reply_act want;
    } cases[] = {
        {"MOVED 3999 127.0.0.1:6381", WF__ACT_MOVED},
        {"ASK 3999 127.0.0.1:6381", WF__ACT_ASK},
        {"TRYAGAIN Multiple keys request during rehashing of slot", WF__ACT_RETRY},
        {"CLUSTERDOWN The cluster is down", WF__ACT_RETRY},
        {"MASTERDOWN Link with MASTER is down", WF__ACT_RETRY},
        {"LOADING Redis is loading the dataset in memory", WF__ACT_RETRY},
        {"LOADING", WF__ACT_RETRY}, /* a bare code counts */
        /* Whole codes only: these share a prefix with a code that is retried. */
        {"BUSYGROUP Consumer Group name already exists", WF__ACT_DONE},
        {"BUSYKEY Target key name already exists.", WF__ACT_DONE},
        {"LOADINGX", WF__ACT_DONE},
        {"ASKING", WF__ACT_DONE},
        /* A script's own refusals are answers, not the router's business. */
        {"STALE lease token 3 is not the run's (4)", WF__ACT_DONE},
        {"ERR Error running script: LOADING in the text", WF__ACT_DONE},
        {"ERR Function not found", WF__ACT_LOAD}, /* FCALL's: the code alone is ERR */
        {"ERR Function not found in the script's text", WF__ACT_DONE},
        {"", WF__ACT_DONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(act_of(cases[i].text), cases[i].want, "'%s' is %s, not %s", cases[i].text,
                     wf__reply_act_name(act_of(cases[i].text)), wf__reply_act_name(cases[i].want));
    cr_assert_eq(wf__reply_action_of(NULL, 0), WF__ACT_DONE);
    cr_assert_eq(wf__reply_action(NULL), WF__ACT_DONE, "a lost connection is the caller's");
    cr_assert_str_eq(wf__reply_act_name(WF__ACT_RECONNECT), "reconnect");
}

Test(reply_action, backoff_doubles_to_half_a_second)
{
    int want[] = {20, 40, 80, 160, 320, 500, 500};
    for (int i = 0; i < 7; i++) cr_assert_eq(wf__reply_retry_ms(i), want[i], "attempt %d", i);
    cr_assert_eq(wf__reply_retry_ms(1000), 500);
}

static wf__reply_act act_of_command(redisContext *c, const char *cmd)
{
    redisReply *r = wf_test_command(c, cmd);
    cr_assert_not_null(r, "%s: no reply", cmd);
    wf__reply_act a = wf__reply_action(r);
    freeReplyObject(r);
    return a;
}

Test(reply_action, real_replies_of_one_server)
{
    cr_assert_eq(act_of_command(rc, "PING"), WF__ACT_DONE);
    cr_assert_eq(act_of_command(rc, "XGROUP CREATE s g $ MKSTREAM"), WF__ACT_DONE);
    cr_assert_eq(act_of_command(rc, "XGROUP CREATE s g $ MKSTREAM"), WF__ACT_DONE, "BUSYGROUP");
    cr_assert_eq(act_of_command(rc, "FCALL wf_no_such_function 0"), WF__ACT_LOAD);
    cr_assert_eq(act_of_command(rc, "SET str x"), WF__ACT_DONE);
    cr_assert_eq(act_of_command(rc, "HGET str f"), WF__ACT_DONE, "WRONGTYPE is final");

    /* A replica refuses writes with READONLY: reconnect (to the master Sentinel names). */
    wf_test_redis replica;
    cr_assert_eq(wf_test_redis_start(&replica, "replica-read-only yes\n"), 0);
    redisContext *rr = wf_test_redis_connect(&replica);
    cr_assert_not_null(rr);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "REPLICAOF 127.0.0.1 %d", srv.port);
    cr_assert_eq(act_of_command(rr, cmd), WF__ACT_DONE);
    cr_assert_eq(act_of_command(rr, "SET k v"), WF__ACT_RECONNECT);
    redisFree(rr);
    wf_test_redis_stop(&replica);
}

/* A script that keeps Redis busy for `ms`, from a child process (its connection blocks). */
static pid_t busy_for(int ms)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    redisContext *c = wf_test_redis_connect(&srv);
    if (!c) _exit(1);
    struct timeval tv = {10, 0};
    redisSetTimeout(c, tv);
    redisReply *r =
        wf_test_command(c, "EVAL %s 0 %d",
                        "local t = redis.call('TIME') local stop = t[1] * 1000000 + t[2] "
                        "+ ARGV[1] * 1000 repeat t = redis.call('TIME') "
                        "until t[1] * 1000000 + t[2] >= stop return 1",
                        ms);
    _exit(r && r->type == REDIS_REPLY_INTEGER ? 0 : 2);
}

static int busy(void *arg)
{
    (void)arg;
    redisReply *r = wf_test_command(rc, "PING");
    int b = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSY ", 5) == 0;
    if (r) freeReplyObject(r);
    return b;
}

Test(reply_action, client_call_refused_with_busy_waits_and_succeeds)
{
    wf_client *cl = wf_test_client(srv.url);
    wf_error err = {0};
    pid_t child = busy_for(700);
    cr_assert(wf_test_wait(busy, NULL, 5000), "Redis answers BUSY while the script runs");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wf_run *run = wf_run_workflow(cl, "echo", "\xc0", 1, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_not_null(run, "the enqueue waited out BUSY instead of failing: %s", err.message);
    long waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert_gt(waited, 50, "it was refused at least once (waited %ld ms)", waited);
    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    cr_assert_eq(st.state, WF_STATE_QUEUED);
    wf_status_clear(&st);
    wf_run_free(run);
    int status = 0;
    waitpid(child, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the busy script finished");
    wf_client_free(cl);
}

Test(reply_action, client_call_refused_past_timeout_says_what_to_change)
{
    char url[200];
    snprintf(url, sizeof url, "%s?timeout_ms=200", srv.url);
    wf_client *cl = wf_test_client(url);
    wf_error err = {0};
    pid_t child = busy_for(1500);
    cr_assert(wf_test_wait(busy, NULL, 5000));
    wf_run *run = wf_run_workflow(cl, "echo", "\xc0", 1, &err);
    cr_assert_null(run);
    cr_assert_eq(err.code, WF_ERR_IO, "%d: %s", err.code, err.message);
    cr_assert(strstr(err.message, "timeout_ms") && strstr(err.message, "BUSY"), "%s", err.message);
    int status = 0;
    waitpid(child, &status, 0);
    wf_client_free(cl);
}
