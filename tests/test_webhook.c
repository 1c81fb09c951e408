/* test_webhook.c - run notifications: the durable outbox written by the scripts that end runs,
 * wf-worker --webhook delivering every end (completed, failed, terminated, cancelled) signed with
 * HMAC-SHA256 (verified here with libcrypto), retries after a 500, the dead outbox, a worker
 * SIGKILLed with undelivered notifications (another worker takes them over), and wf_step_http.
 * Real redis-server, real wf-worker processes, a receiver thread on a loopback port; every wait
 * polls a condition with a deadline. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops_http.h"
#include "pool_env.h"
#include "script_call.h"

#define SECRET "whsec-test-0123456789"

static char secret_path[300], hook_url[128];
static hook_server hook;

static void setup(void)
{
    pool_env_setup("webhook");
    snprintf(secret_path, sizeof secret_path, "%s/secret", dir);
    FILE *f = fopen(secret_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "  %s\n", SECRET); /* surrounding whitespace is ignored */
    fclose(f);
    memset(&hook, 0, sizeof hook);
}

static void teardown(void)
{
    int status = pool_env_stop_worker(); /* before the receiver: the worker may still post */
    hook_stop(&hook);
    pool_env_finish(status);
}

TestSuite(webhook, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers --------------------------------------------------------------------------------- */

/* wf-worker with the test workflows, --webhook to the receiver (port) unless port is 0. */
static pid_t start_worker(int port, const char *const *extra)
{
    const char *args[40] = {"--processes", "1"};
    int n = 2;
    if (port) {
        snprintf(hook_url, sizeof hook_url, "http://127.0.0.1:%d/hook", port);
        args[n++] = "--webhook";
        args[n++] = hook_url;
        args[n++] = "--webhook-secret-file";
        args[n++] = secret_path;
    }
    for (; extra && *extra && n < 38; extra++) args[n++] = *extra;
    args[n] = NULL;
    return wf_test_worker_start(
        &(wf_test_worker){.redis_url = srv.url,
                          .extra = args,
                          .log_path = log_path,
                          .rc = rc,
                          .workflows = (const char *const[]){"echo", NULL}});
}

static wf_run *start_json(const char *workflow, const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, &sb, &err), WF_OK, "%s", err.message);
    wf_run *run = wf_run_workflow_ex(cl, workflow, sb.data, sb.size,
                                     &(wf_run_options){.allow_unregistered = 1}, &err);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(run, "start %s: %s", workflow, err.message);
    return run;
}

/* Waits up to 20 s for `run` to be in `want` (pool_env.h's wait_state). */
static void wait_for(wf_run *run, wf_state want)
{
    wf_status st;
    wait_state(run, want, 20000, &st);
    wf_status_clear(&st);
}

/* 1 when the request carries a valid signature of its body, made within 5 minutes. */
static int signed_ok(const hook_req *q)
{
    if (strncmp(q->sig, "sha256=", 7) != 0 || !q->ts[0]) return 0;
    long long ts = atoll(q->ts);
    if (llabs((long long)time(NULL) - ts) > 300) return 0;
    size_t tl = strlen(q->ts);
    unsigned char *msg = malloc(tl + 1 + q->body_len);
    memcpy(msg, q->ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, q->body, q->body_len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), msg, tl + 1 + q->body_len, md, &mdlen);
    free(msg);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return strcmp(q->sig + 7, hex) == 0;
}

/* Distinct runIds among the requests answered 2xx. */
static int delivered_runs(void *arg)
{
    int want = *(int *)arg;
    hook_req *q;
    int n = hook_snapshot(&hook, &q), uniq = 0;
    for (int i = 0; i < n; i++) {
        if (q[i].answered != 200) continue;
        json_t *o = json_loads(q[i].body, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "runId"));
        int seen = 0;
        for (int k = 0; k < i && id && !seen; k++) {
            if (q[k].answered != 200) continue;
            json_t *p = json_loads(q[k].body, 0, NULL);
            const char *id2 = json_string_value(json_object_get(p, "runId"));
            seen = id2 && strcmp(id, id2) == 0;
            json_decref(p);
        }
        uniq += id && !seen;
        json_decref(o);
    }
    free(q);
    return uniq >= want;
}

/* The body (JSON) of the last 2xx request about run `id`; caller json_decref()s. */
static json_t *body_of(const char *id)
{
    hook_req *q;
    int n = hook_snapshot(&hook, &q);
    json_t *found = NULL;
    for (int i = 0; i < n; i++) {
        json_t *o = json_loads(q[i].body, 0, NULL);
        const char *rid = json_string_value(json_object_get(o, "runId"));
        if (q[i].answered == 200 && rid && strcmp(rid, id) == 0) {
            json_decref(found);
            found = o;
        } else {
            json_decref(o);
        }
    }
    free(q);
    cr_assert_not_null(found, "no notification of run %s", id);
    return found;
}

typedef struct int_wait {
    const char *cmd, *key;
    long long want;
} int_wait;

static int redis_int_is(void *arg)
{
    int_wait *w = arg;
    return wf_test_cmd_int(rc, w->cmd, w->key) == w->want;
}

static long long pending(const char *key)
{
    redisReply *r = wf_test_command(rc, "XPENDING %s webhooks", key);
    long long n =
        r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? r->element[0]->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

static void wait_outbox_empty(const char *key)
{
    int_wait w = {"XLEN %s", key, 0};
    cr_assert(wf_test_wait(redis_int_is, &w, 15000), "%s emptied (XLEN %lld)", key,
              wf_test_cmd_int(rc, "XLEN %s", key));
    cr_assert_eq(pending(key), 0, "nothing pending in %s", key);
}

/* ---- the outbox in the scripts -------------------------------------------------------------- */

Test(webhook, stop_records_the_end_in_the_outbox_only_when_asked)
{
    wf_run *a = start_json("lt", "1"), *b = start_json("lt", "2"), *c = start_json("lt", "3");
    wf_error err = {0};
    /* libwf passes "auto": no outbox yet, nothing recorded. */
    cr_assert_eq(wf_run_stop(a, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{lt}:outbox"), 0);
    /* Once a webhook worker created the group, "auto" records. */
    char *ok = wf_test_cmd_str(rc, "XGROUP CREATE wf:{lt}:outbox webhooks 0 MKSTREAM");
    free(ok);
    cr_assert_eq(wf_run_stop(b, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{lt}:outbox"), 1);
    redisReply *r = wf_test_command(rc, "XRANGE wf:{lt}:outbox - +");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    const redisReply *f = r->element[0]->element[1];
    cr_assert_eq(f->elements, 8);
    cr_assert_str_eq(f->element[0]->str, "id");
    cr_assert_str_eq(f->element[1]->str, wf_run_id(b));
    cr_assert_str_eq(f->element[3]->str, "cancelled");
    cr_assert_str_eq(f->element[5]->str, "lt");
    cr_assert_gt(atoll(f->element[7]->str), 0);
    freeReplyObject(r);
    /* Without the trailing argument (older callers, lua_env.h's stop() and fail()) nothing is
     * recorded. */
    wf__wfkeys wk;
    cr_assert_eq(wf__wfkeys_init(&wk, "wf", "lt"), WF_OK);
    char *run = wf__key_run("wf", "lt", wf_run_id(c)),
         *steps = wf__key_steps("wf", "lt", wf_run_id(c));
    const char *keys[WF__NFIXED + 2];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
    keys[WF__NFIXED] = run;
    keys[WF__NFIXED + 1] = steps;
    const char *args[3] = {wf_run_id(c), "by test", "60000"};
    r = wf_test_script(rc, WF__SCRIPT_STOP, WF__NFIXED + 2, keys, 3, args, NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    freeReplyObject(r);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{lt}:outbox"), 1);
    free(run);
    free(steps);
    wf__wfkeys_free(&wk);

    /* outbox.lua: ack once (1), then it is not pending any more (0); dead keeps the reason. */
    r = wf_test_command(rc, "XREADGROUP GROUP webhooks t COUNT 10 STREAMS wf:{lt}:outbox >");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY);
    char entry[64];
    snprintf(entry, sizeof entry, "%s", r->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(r);
    const char *okeys[2] = {"wf:{lt}:outbox", "wf:{lt}:outbox:dead"};
    const char *dead_args[6] = {entry, "dead", "HTTP 500", "3", "id", wf_run_id(b)};
    r = wf_test_script(rc, WF__SCRIPT_OUTBOX, 2, okeys, 6, dead_args, NULL, &err);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "%s", err.message);
    freeReplyObject(r);
    r = wf_test_script(rc, WF__SCRIPT_OUTBOX, 2, okeys, 2, (const char *[]){entry, "ack"}, NULL,
                       &err);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0, "already done");
    freeReplyObject(r);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{lt}:outbox"), 0, "acknowledged entries are deleted");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{lt}:outbox:dead"), 1);
    r = wf_test_command(rc, "XRANGE wf:{lt}:outbox:dead - +");
    const redisReply *d = r->element[0]->element[1];
    cr_assert_str_eq(d->element[1]->str, entry);
    cr_assert_str_eq(d->element[3]->str, "HTTP 500");
    cr_assert_str_eq(d->element[5]->str, "3");
    cr_assert_str_eq(d->element[7]->str, wf_run_id(b));
    freeReplyObject(r);
    wf_run_free(a);
    wf_run_free(b);
    wf_run_free(c);
}

/* ---- delivery ---------------------------------------------------------------------------------
 */

Test(webhook, every_end_is_notified_with_a_valid_signature)
{
    cr_assert_eq(hook_start(&hook, 0), 0);
    worker_pid = start_worker(hook.port, NULL);
    enum { N = 5 };
    wf_run *echo[N];
    for (int i = 0; i < N; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"i\":%d}", i);
        echo[i] = start_json("echo", json);
    }
    wf_run *fatal = start_json("fatal", "null"), *overrun = start_json("timeout", "null");
    wf_run *flaky = start_json("flaky", "null"), *slow = start_json("slow", "20000");
    wait_for(slow, WF_STATE_RUNNING);
    wf_error err = {0};
    cr_assert_eq(wf_run_stop(slow, &err), WF_OK, "%s", err.message);
    int want = N + 4;
    cr_assert(wf_test_wait(delivered_runs, &want, 30000), "every end was notified (%d requests)",
              hook_count(&hook));

    hook_req *q;
    int n = hook_snapshot(&hook, &q);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(q[i].method, "POST");
        cr_assert_str_eq(q[i].path, "/hook");
        cr_assert(signed_ok(&q[i]), "signature of %s: %s (ts %s)", q[i].body, q[i].sig, q[i].ts);
        cr_assert(q[i].event[0], "X-WF-Event names the outbox entry");
    }
    free(q);
    for (int i = 0; i < N; i++) {
        json_t *o = body_of(wf_run_id(echo[i]));
        cr_assert_str_eq(json_string_value(json_object_get(o, "workflow")), "echo");
        cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "completed");
        json_t *out = json_object_get(o, "output");
        cr_assert_eq(json_integer_value(json_object_get(out, "i")), i, "the output as JSON");
        cr_assert(json_is_null(json_object_get(o, "error")));
        cr_assert_gt(json_integer_value(json_object_get(o, "finishedAt")), 0);
        json_decref(o);
    }
    struct {
        wf_run *run;
        const char *state, *error;
    } ends[] = {{fatal, "failed", "card declined"},
                {overrun, "terminated", "timed out"},
                {slow, "cancelled", "stopped by request"},
                {flaky, "completed", NULL}};
    for (size_t k = 0; k < sizeof ends / sizeof ends[0]; k++) {
        json_t *o = body_of(wf_run_id(ends[k].run));
        cr_assert_str_eq(json_string_value(json_object_get(o, "state")), ends[k].state);
        const char *e = json_string_value(json_object_get(o, "error"));
        if (ends[k].error)
            cr_assert(e && strstr(e, ends[k].error), "%s: error %s", ends[k].state, e);
        json_decref(o);
    }
    json_t *o = body_of(wf_run_id(flaky));
    cr_assert_str_eq(json_string_value(json_object_get(o, "output")), "ok");
    json_decref(o);
    /* A retried attempt is not an end: flaky is notified once. */
    cr_assert_eq(hook_count(&hook), N + 4, "one notification per run");
    wait_outbox_empty("wf:{echo}:outbox");
    wait_outbox_empty("wf:{slow}:outbox");
    for (int i = 0; i < N; i++) wf_run_free(echo[i]);
    wf_run_free(fatal);
    wf_run_free(overrun);
    wf_run_free(flaky);
    wf_run_free(slow);
}

static int count_at_least(void *arg)
{
    return hook_count(&hook) >= *(int *)arg;
}

Test(webhook, a_500_is_retried_with_the_same_event_id_until_a_2xx)
{
    cr_assert_eq(hook_start(&hook, 0), 0);
    atomic_store(&hook.fail_first, 2);
    worker_pid = start_worker(hook.port, NULL);
    wf_run *run = start_json("echo", "7");
    int want = 3;
    cr_assert(wf_test_wait(count_at_least, &want, 20000), "three attempts");
    hook_req *q;
    int n = hook_snapshot(&hook, &q);
    cr_assert_eq(n, 3);
    for (int i = 0; i < n; i++) {
        cr_assert(signed_ok(&q[i]), "attempt %d signed", i + 1);
        cr_assert_eq(q[i].attempt, i + 1);
        cr_assert_str_eq(q[i].event, q[0].event, "the same notification");
        cr_assert_eq(q[i].answered, i < 2 ? 500 : 200);
        cr_assert_str_eq(q[i].body, q[0].body, "the same body");
    }
    free(q);
    wait_outbox_empty("wf:{echo}:outbox");
    wf_run_free(run);
}

Test(webhook, gives_up_into_the_dead_outbox_after_max_attempts)
{
    cr_assert_eq(hook_start(&hook, 0), 0);
    atomic_store(&hook.status, 503);
    worker_pid = start_worker(hook.port, (const char *[]){"--webhook-max-attempts", "2", NULL});
    wf_run *run = start_json("echo", "8");
    int_wait w = {"XLEN %s", "wf:{echo}:outbox:dead", 1};
    cr_assert(wf_test_wait(redis_int_is, &w, 20000), "the notification went to the dead outbox");
    redisReply *r = wf_test_command(rc, "XRANGE wf:{echo}:outbox:dead - +");
    const redisReply *f = r->element[0]->element[1];
    cr_assert_str_eq(f->element[2]->str, "reason");
    cr_assert(strstr(f->element[3]->str, "HTTP 503"), "reason: %s", f->element[3]->str);
    cr_assert_str_eq(f->element[5]->str, "2", "attempts");
    cr_assert_str_eq(f->element[7]->str, wf_run_id(run));
    freeReplyObject(r);
    wait_outbox_empty("wf:{echo}:outbox");
    cr_assert_eq(hook_count(&hook), 2);
    wf_run_free(run);
}

static int log_has(void *arg)
{
    char *log = wf_test_slurp(log_path);
    int ok = strstr(log, (const char *)arg) != NULL;
    free(log);
    return ok;
}

Test(webhook, a_killed_worker_loses_no_notification)
{
    /* The receiver's port is chosen but nobody listens yet: every attempt fails. */
    int port = wf_test_free_port();
    const char *flags[] = {"--webhook-timeout-ms", "500", "--webhook-visibility-ms", "1500", NULL};
    worker_pid = start_worker(port, flags);
    enum { N = 10 };
    wf_run *runs[N];
    for (int i = 0; i < N; i++) runs[i] = start_json("echo", "1");
    for (int i = 0; i < N; i++) wait_for(runs[i], WF_STATE_COMPLETED);
    cr_assert(wf_test_wait(log_has, "failed (attempt 1 of", 15000), "delivery was attempted");
    int_wait w = {"XLEN %s", "wf:{echo}:outbox", N};
    cr_assert(wf_test_wait(redis_int_is, &w, 5000), "every end is in the outbox");
    /* SIGKILL the supervisor and its worker process (one process group): no drain at all. */
    cr_assert_eq(kill(-worker_pid, SIGKILL), 0);
    int status;
    waitpid(worker_pid, &status, 0);
    worker_pid = 0;
    cr_assert_gt(pending("wf:{echo}:outbox"), 0, "the dead worker left them pending");

    cr_assert_eq(hook_start(&hook, port), 0, "the receiver comes up on port %d", port);
    worker_pid = start_worker(port, flags);
    int want = N;
    cr_assert(wf_test_wait(delivered_runs, &want, 30000), "every notification arrived (%d)",
              hook_count(&hook));
    hook_req *q;
    int n = hook_snapshot(&hook, &q);
    for (int i = 0; i < n; i++) cr_assert(signed_ok(&q[i]), "signed: %s", q[i].body);
    free(q);
    for (int i = 0; i < N; i++) {
        json_t *o = body_of(wf_run_id(runs[i]));
        cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "completed");
        json_decref(o);
        wf_run_free(runs[i]);
    }
    cr_assert(log_has("taking over"), "the second worker took them over");
    wait_outbox_empty("wf:{echo}:outbox");
}

/* ---- wf_step_http ------------------------------------------------------------------------------
 */

Test(webhook, step_http_records_the_response_and_retries_a_5xx)
{
    cr_assert_eq(hook_start(&hook, 0), 0);
    atomic_store(&hook.fail_first, 1);
    hook.reply = "pong";
    worker_pid = start_worker(0, NULL);
    char url[160];
    snprintf(url, sizeof url, "\"http://127.0.0.1:%d/step\"", hook.port);
    wf_run *run = start_json("http_call", url);
    wait_for(run, WF_STATE_COMPLETED);
    wf_status st;
    wf_error err = {0};
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    char *json = NULL;
    cr_assert_eq(wf_msgpack_to_json(st.output, st.output_len, &json, &err), WF_OK);
    cr_assert_str_eq(json, "[200,\"pong\",\"text/plain\"]");
    free(json);
    wf_status_clear(&st);
    hook_req *q;
    int n = hook_snapshot(&hook, &q);
    cr_assert_eq(n, 2, "the 500 was retried once");
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(q[i].method, "POST");
        cr_assert_str_eq(q[i].path, "/step");
        cr_assert_str_eq(q[i].body, "ping");
    }
    free(q);
    char *steps = wf__key_steps("wf", "http_call", wf_run_id(run));
    cr_assert_eq(wf_test_cmd_int(rc, "HEXISTS %s call", steps), 1, "the response is recorded");
    free(steps);
    wf_run_free(run);
}
