/* test_client.c - libwf against a real redis-server: connect, start, reattach, status, stop, list,
 * deferred starts, and the errors a careless or hostile caller gets. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "wf_internal.h"

static wf_test_redis srv;
static wf_client *cl;
static redisContext *rc;

static void setup(void)
{
    cr_assert_eq(wf_test_redis_start(&srv, NULL), 0, "redis-server must start");
    cl = wf_test_client(srv.url);
    rc = wf_test_redis_connect(&srv);
    cr_assert_not_null(rc);
    /* Pretend a worker registered these workflows. */
    wf_test_cmd_int(rc, "HSET wf:workflows publish-draft {} echo {}");
}

static void teardown(void)
{
    wf_client_free(cl);
    cl = NULL;
    if (rc) redisFree(rc);
    rc = NULL;
    wf_test_redis_stop(&srv);
}

TestSuite(client, .init = setup, .fini = teardown);

static size_t pack_title(char *buf, size_t cap, const char *title)
{
    /* The titles here are letters only: nothing JSON would escape. */
    char json[300];
    snprintf(json, sizeof json, "{\"title\":\"%s\"}", title);
    msgpack_sbuffer sb;
    wf_test_msgpack(json, &sb);
    size_t n = sb.size < cap ? sb.size : cap;
    memcpy(buf, sb.data, n);
    msgpack_sbuffer_destroy(&sb);
    return n;
}

Test(client, run_is_queued_as_one_entry_and_readable_by_status)
{
    char payload[64];
    size_t n = pack_title(payload, sizeof payload, "Hello World");
    wf_error err = {0};
    wf_run *run = wf_run_workflow(cl, "publish-draft", payload, n, &err);
    cr_assert_not_null(run, "run: %s", err.message);
    cr_assert_eq(strncmp(wf_run_id(run), "publish-draft:", 14), 0);
    cr_assert_eq(strlen(wf_run_id(run)), 14 + 26, "ULID suffix is 26 chars: %s", wf_run_id(run));
    cr_assert_str_eq(wf_run_provider(run), "redis");
    char want[256];
    snprintf(want, sizeof want, "wf:{publish-draft}:run:%s", wf_run_id(run));
    cr_assert_str_eq(wf_run_native(run), want);

    /* Schema 2: a plain queued run is its stream entry and nothing else (lean): fields c (the
     * id's suffix) and p (the input); the hash appears when a worker claims it. */
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS %s", wf_run_native(run)), 0);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{publish-draft}:queue"), 1);
    cr_assert_eq(wf_test_cmd_int(rc, "EXISTS wf:{publish-draft}:state:queued"), 0);
    redisReply *e = wf_test_command(rc, "XRANGE wf:{publish-draft}:queue - +");
    cr_assert(e && e->elements == 1 && e->element[0]->element[1]->elements == 4);
    const redisReply *f = e->element[0]->element[1];
    cr_assert_str_eq(f->element[0]->str, "c");
    cr_assert_str_eq(f->element[1]->str, wf_run_id(run) + 14);
    cr_assert_str_eq(f->element[2]->str, "p");
    cr_assert_eq(f->element[3]->len, n);
    cr_assert_eq(memcmp(f->element[3]->str, payload, n), 0, "input stored as given");
    freeReplyObject(e);

    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    cr_assert_eq(st.state, WF_STATE_QUEUED);
    cr_assert_eq(st.attempt, 1);
    cr_assert_gt(st.created_at_ms, 1700000000000LL);
    cr_assert_null(st.output);
    cr_assert_geq(st.raw_len, 5);
    int saw_input = 0;
    for (size_t i = 0; i < st.raw_len; i++)
        if (strcmp(st.raw[i].name, "input") == 0)
            saw_input = st.raw[i].value_len == n && memcmp(st.raw[i].value, payload, n) == 0;
    cr_assert(saw_input, "status reads the input back from the entry");
    wf_status_clear(&st);
    cr_assert_eq(st.raw_len, 0);
    wf_run_free(run);
}

Test(client, ids_are_time_ordered_and_unique)
{
    char prev[WF__ID_MAX] = "";
    for (int i = 0; i < 200; i++) {
        wf_error err = {0};
        wf_run *run = wf_run_workflow(cl, "echo", NULL, 0, &err);
        cr_assert_not_null(run, "%s", err.message);
        /* Same-millisecond ids share a time prefix; across ms they must grow. */
        cr_assert_neq(strcmp(prev, wf_run_id(run)), 0);
        cr_assert_leq(strncmp(prev, wf_run_id(run), 5 + 10), 0, "time prefix must not go back");
        snprintf(prev, sizeof prev, "%s", wf_run_id(run));
        wf_run_free(run);
    }
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 200, "a lean run is one entry");
}

Test(client, reattach_and_stop_queued_run)
{
    wf_error err = {0};
    wf_run *run = wf_run_workflow(cl, "echo", NULL, 0, &err);
    cr_assert_not_null(run);
    wf_run *again = wf_get_workflow_run(cl, wf_run_id(run), &err);
    cr_assert_not_null(again, "%s", err.message);
    cr_assert_str_eq(wf_run_native(again), wf_run_native(run));
    cr_assert_eq(wf_run_stop(again, &err), WF_OK, "%s", err.message);
    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK);
    cr_assert_eq(st.state, WF_STATE_CANCELLED);
    cr_assert_str_eq(st.error, "stopped by request");
    cr_assert_gt(st.finished_at_ms, 0);
    wf_status_clear(&st);
    /* The queue entry is gone: no worker can ever start it. */
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
    /* The run now expires after the retention time. */
    cr_assert_gt(wf_test_cmd_int(rc, "PTTL %s", wf_run_native(run)), 0);
    /* Stopping a finished run is a no-op that says so. */
    memset(&err, 0, sizeof err);
    cr_assert_eq(wf_run_stop(run, &err), WF_ERR_FINAL);
    cr_assert(strstr(err.message, "already cancelled"), "message: %s", err.message);
    wf_run_free(again);
    wf_run_free(run);
}

Test(client, bad_ids_are_rejected_before_touching_redis)
{
    const char *bad[] = {"",       "nocolon", "publish-draft:", ":abc",    "a{b}:x",
                         "wf:{x}", "x:a*b",   "x:a\nb",         "x:a b",   "x:a:b",
                         "-bad:x", "x:\x01",  "x:{tag}",        "x:abc\r", "x:ab\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wf_error err = {0};
        wf_run *run = wf_get_workflow_run(cl, bad[i], &err);
        cr_assert_null(run, "id '%s' must be rejected", bad[i]);
        cr_assert_eq(err.code, WF_ERR_BAD_ID, "id #%zu: %s", i, err.message);
        cr_assert_gt(strlen(err.message), 10);
    }
    char big[10240];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[3] = ':';
    wf_error err = {0};
    cr_assert_null(wf_get_workflow_run(cl, big, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_ID);
    cr_assert_null(wf_get_workflow_run(cl, NULL, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_ID);
    /* Nothing was created by the attempts. */
    cr_assert_eq(wf_test_cmd_int(rc, "DBSIZE"), 2, "only wf:workflows and wf:schema exist");
}

Test(client, unknown_run_is_not_found)
{
    wf_error err = {0};
    cr_assert_null(wf_get_workflow_run(cl, "echo:01JD0000000000000000000000", &err));
    cr_assert_eq(err.code, WF_ERR_NOT_FOUND);
    cr_assert(strstr(err.message, "echo:01JD"), "names the id: %s", err.message);
}

Test(client, bad_names_payloads_and_unknown_workflows)
{
    wf_error err = {0};
    cr_assert_null(wf_run_workflow(cl, "bad name", NULL, 0, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_NAME);
    cr_assert_null(wf_run_workflow(cl, "a{b}", NULL, 0, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_NAME);
    cr_assert_null(wf_run_workflow(cl, NULL, NULL, 0, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_NAME);

    cr_assert_null(wf_run_workflow(cl, "nosuch", NULL, 0, &err));
    cr_assert_eq(err.code, WF_ERR_UNKNOWN_WORKFLOW);
    cr_assert(strstr(err.message, "nosuch"));
    wf_run_options o = {.allow_unregistered = 1};
    wf_run *run = wf_run_workflow_ex(cl, "nosuch", NULL, 0, &o, &err);
    cr_assert_not_null(run, "allow_unregistered skips the check");
    wf_run_free(run);

    const unsigned char truncated[] = {0x82, 0xa1, 'a'};
    cr_assert_null(wf_run_workflow(cl, "echo", truncated, sizeof truncated, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_PAYLOAD, "%s", err.message);
    const unsigned char two_values[] = {0x01, 0x02};
    cr_assert_null(wf_run_workflow(cl, "echo", two_values, sizeof two_values, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_PAYLOAD, "%s", err.message);
}

Test(client, payload_size_limit_from_url)
{
    char url[200];
    snprintf(url, sizeof url, "%s?max_payload=64", srv.url);
    wf_client *small = wf_test_client(url);
    wf_error err = {0};
    char buf[200];
    char title[200];
    memset(title, 'x', sizeof title);
    title[64 - 10] = '\0'; /* map(1) + "title" + str header + 54 bytes = 63 bytes */
    size_t n = pack_title(buf, sizeof buf, title);
    cr_assert_leq(n, 64);
    wf_run *ok = wf_run_workflow(small, "echo", buf, n, &err);
    cr_assert_not_null(ok, "at the limit: %s", err.message);
    wf_run_free(ok);
    title[80] = '\0';
    memset(title, 'x', 80);
    n = pack_title(buf, sizeof buf, title);
    cr_assert_gt(n, 64);
    cr_assert_null(wf_run_workflow(small, "echo", buf, n, &err));
    cr_assert_eq(err.code, WF_ERR_TOO_LARGE);
    cr_assert(strstr(err.message, "max_payload"), "%s", err.message);
    wf_client_free(small);
}

Test(client, caller_chosen_id_is_idempotent)
{
    wf_error err = {0};
    wf_run_options o = {.id = "order-42"};
    wf_run *a = wf_run_workflow_ex(cl, "echo", NULL, 0, &o, &err);
    cr_assert_not_null(a, "%s", err.message);
    cr_assert_str_eq(wf_run_id(a), "echo:order-42");
    wf_run *b = wf_run_workflow_ex(cl, "echo", NULL, 0, &o, &err);
    cr_assert_not_null(b);
    cr_assert_str_eq(wf_run_id(b), "echo:order-42");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 1, "started once");
    wf_run_free(a);
    wf_run_free(b);
    wf_run_options bad = {.id = "a:b"};
    cr_assert_null(wf_run_workflow_ex(cl, "echo", NULL, 0, &bad, &err));
    cr_assert_eq(err.code, WF_ERR_BAD_ID);
}

Test(client, delayed_start_waits)
{
    wf_error err = {0};
    wf_run_options o = {.delay_ms = 60000};
    wf_run *run = wf_run_workflow_ex(cl, "echo", NULL, 0, &o, &err);
    cr_assert_not_null(run);
    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK);
    cr_assert_eq(st.state, WF_STATE_WAITING);
    cr_assert_str_eq(st.wait_reason, "delayed start");
    cr_assert_geq(st.wake_at_ms - st.created_at_ms, 60000);
    wf_status_clear(&st);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 0);
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:delayed"), 1);
    cr_assert_eq(wf_run_stop(run, &err), WF_OK);
    cr_assert_eq(wf_test_cmd_int(rc, "ZCARD wf:{echo}:delayed"), 0);
    wf_run_free(run);
}

Test(client, list_runs_newest_first_and_by_state)
{
    wf_error err = {0};
    wf_run *runs[5];
    for (int i = 0; i < 5; i++) {
        runs[i] = wf_run_workflow(cl, i < 3 ? "echo" : "publish-draft", NULL, 0, &err);
        cr_assert_not_null(runs[i]);
    }
    cr_assert_eq(wf_run_stop(runs[1], &err), WF_OK);
    char **ids;
    size_t n;
    cr_assert_eq(wf_list_runs(cl, NULL, &ids, &n, &err), WF_OK);
    cr_assert_eq(n, 5);
    wf_list_free(ids, n);
    wf_list_options o = {.state = WF_STATE_CANCELLED};
    cr_assert_eq(wf_list_runs(cl, &o, &ids, &n, &err), WF_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], wf_run_id(runs[1]));
    wf_list_free(ids, n);
    wf_list_options o2 = {.workflow = "echo", .state = WF_STATE_QUEUED, .limit = 10};
    cr_assert_eq(wf_list_runs(cl, &o2, &ids, &n, &err), WF_OK);
    cr_assert_eq(n, 2);
    wf_list_free(ids, n);
    char **names;
    cr_assert_eq(wf_list_workflows(cl, &names, &n, &err), WF_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[0], "echo");
    cr_assert_str_eq(names[1], "publish-draft");
    wf_list_free(names, n);
    for (int i = 0; i < 5; i++) wf_run_free(runs[i]);
}

Test(client, prefixes_isolate_apps)
{
    char url[200];
    snprintf(url, sizeof url, "%s?prefix=app2", srv.url);
    wf_error err = {0};
    wf_client *other = wf_client_connect(url, &err);
    cr_assert_not_null(other);
    cr_assert_str_eq(wf_client_prefix(other), "app2");
    wf_run *run = wf_run_workflow(cl, "echo", NULL, 0, &err);
    cr_assert_not_null(run);
    cr_assert_null(wf_get_workflow_run(other, wf_run_id(run), &err));
    cr_assert_eq(err.code, WF_ERR_NOT_FOUND);
    cr_assert_null(wf_run_workflow(other, "echo", NULL, 0, &err));
    cr_assert_eq(err.code, WF_ERR_UNKNOWN_WORKFLOW, "registrations are per prefix");
    wf_run_free(run);
    wf_client_free(other);
}

Test(client, dead_redis_fails_fast_with_clear_error)
{
    char url[100];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?timeout_ms=500", wf_test_free_port());
    wf_error err = {0};
    wf_client *c = wf_client_connect(url, &err);
    cr_assert_null(c);
    cr_assert_eq(err.code, WF_ERR_CONNECT);
    cr_assert(strstr(err.message, "cannot connect"), "%s", err.message);
}

Test(client, redis_dying_under_a_client_gives_io_error)
{
    WF_TEST_SINGLE_SERVER_ONLY("it stops the server; test_cluster kills a master instead");
    wf_error err = {0};
    wf_test_redis_stop(&srv);
    wf_run *run = wf_run_workflow(cl, "echo", NULL, 0, &err);
    cr_assert_null(run);
    cr_assert(err.code == WF_ERR_IO || err.code == WF_ERR_CONNECT, "got %s: %s",
              wf_errname(err.code), err.message);
    cr_assert_eq(wf_client_ping(cl, &err), err.code);
}

Test(client, schema_mismatch_is_refused)
{
    wf_test_cmd_int(rc, "SET wf:schema 999");
    wf_error err = {0};
    wf_client *c = wf_client_connect(srv.url, &err);
    cr_assert_null(c);
    cr_assert_eq(err.code, WF_ERR_SCHEMA);
    cr_assert(strstr(err.message, "999"), "%s", err.message);
}

Test(client, scripts_survive_function_flush)
{
    /* As after a restart without persistence (in cluster mode: on every master). */
    redisReply *r = wf_test_command(rc, "FUNCTION FLUSH");
    freeReplyObject(r);
    wf_error err = {0};
    wf_run *run = wf_run_workflow(cl, "echo", NULL, 0, &err);
    cr_assert_not_null(run, "a missing library must be loaded again: %s", err.message);
    wf_run_free(run);
    r = wf_test_command(rc, "FUNCTION FLUSH");
    freeReplyObject(r);
    wf_run *runs[2] = {NULL, NULL};
    cr_assert_eq(wf_run_workflow_batch(cl, "echo", 2, NULL, NULL, NULL, runs, &err), WF_OK,
                 "the batch path loads it again too: %s", err.message);
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(runs[i]);
        wf_run_free(runs[i]);
    }
}

static int deferred_errors;
static void on_defer_error(const char *workflow, const wf_error *err, void *ud)
{
    (void)workflow;
    (void)err;
    (*(int *)ud)++;
}

Test(client, defer_on_background_thread)
{
    wf_error err = {0};
    for (int i = 0; i < 50; i++) cr_assert_eq(wf_defer_workflow(cl, "echo", NULL, 0), WF_OK);
    cr_assert_eq(wf_defer_workflow(cl, "bad name", NULL, 0), WF_ERR_BAD_NAME);
    cr_assert_eq(wf_client_flush(cl, 10000, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), 50);
}

Test(client, defer_failures_reach_the_callback)
{
    deferred_errors = 0;
    wf_client_on_defer_error(cl, on_defer_error, &deferred_errors);
    cr_assert_eq(wf_defer_workflow(cl, "nosuch", NULL, 0), WF_OK);
    wf_error err = {0};
    cr_assert_eq(wf_client_flush(cl, 10000, &err), WF_OK);
    cr_assert_eq(deferred_errors, 1, "unknown workflow reported, not dropped");
}

typedef struct loop_check {
    struct event_base *base;
    redisContext *rc;
    long long want;
    int ok;
} loop_check;

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_check *lc = arg;
    if (wf_test_cmd_int(lc->rc, "XLEN wf:{echo}:queue") >= lc->want) {
        lc->ok = 1;
        event_base_loopbreak(lc->base);
    }
}

Test(client, defer_on_attached_loop)
{
    struct event_base *base = event_base_new();
    wf_error err = {0};
    cr_assert_eq(wf_client_attach(cl, base, &err), WF_OK, "%s", err.message);
    /* One with options first (sent in order on the one connection: it is in Redis before the
     * last of the others). */
    wf_run_options hi = {.id = "attached-high", .priority = WF_PRIORITY_HIGH};
    cr_assert_eq(wf_defer_workflow_ex(cl, "echo", NULL, 0, &hi), WF_OK);
    for (int i = 0; i < 20; i++) cr_assert_eq(wf_defer_workflow(cl, "echo", NULL, 0), WF_OK);
    /* Nothing is sent until the caller's loop runs: deferring never blocked. */
    loop_check lc = {base, rc, 20, 0};
    struct event *tick = event_new(base, -1, EV_PERSIST, check_cb, &lc);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    cr_assert(lc.ok, "20 deferred runs reached Redis through the loop");
    cr_assert_eq(wf_test_cmd_int(rc, "XLEN wf:{echo}:queue:high"), 1, "on the high lane");
    char *pri = wf_test_cmd_str(rc, "HGET wf:{echo}:run:echo:attached-high pri");
    cr_assert_not_null(pri, "the run kept its id and priority");
    cr_assert_str_eq(pri, "high");
    free(pri);
    event_free(tick);
    wf_client_free(cl);
    cl = NULL;
    event_base_free(base);
}

static void count_defer_error(const char *workflow, const wf_error *err, void *userdata)
{
    (void)workflow;
    cr_assert(err->code == WF_ERR_IO || err->code == WF_ERR_CONNECT, "%s", err->message);
    (*(int *)userdata)++;
}

typedef struct errors_wait {
    struct event_base *base;
    const int *errors;
    int want;
} errors_wait;

static int errors_reach(void *arg)
{
    errors_wait *e = arg;
    event_base_loop(e->base, EVLOOP_NONBLOCK);
    return *e->errors >= e->want;
}

Test(client, attached_loop_with_redis_gone_reports_each_start)
{
    WF_TEST_SINGLE_SERVER_ONLY("it stops the server");
    struct event_base *base = event_base_new();
    int errors = 0;
    wf_client_on_defer_error(cl, count_defer_error, &errors);
    wf_test_redis_stop(&srv);
    /* The connect is non-blocking: it fails on the loop, after the first start was handed over. */
    wf_error err = {0};
    int code = wf_client_attach(cl, base, &err);
    cr_assert(code == WF_OK || code == WF_ERR_CONNECT, "%s", err.message);
    for (int i = 1; i <= 3; i++) {
        /* Each start after a failed connect tries a new one: none uses the freed context. */
        cr_assert_eq(wf_defer_workflow(cl, "echo", NULL, 0), WF_OK);
        errors_wait e = {base, &errors, i};
        cr_assert(wf_test_wait(errors_reach, &e, 10000), "start %d reported (%d so far)", i,
                  errors);
    }
    wf_client_free(cl);
    cl = NULL;
    event_base_free(base);
}

Test(client, urls)
{
    wf__url u;
    wf_error err = {0};
    cr_assert_eq(
        wf__url_parse("redis://user:p%40ss@example.org:7000/3?prefix=app&timeout_ms=250", &u, &err),
        WF_OK, "%s", err.message);
    cr_assert_str_eq(u.host, "example.org");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 3);
    cr_assert_str_eq(u.user, "user");
    cr_assert_str_eq(u.password, "p@ss");
    cr_assert_str_eq(u.prefix, "app");
    cr_assert_eq(u.timeout_ms, 250);
    cr_assert_null(strstr(u.redacted, "p@ss"), "password never shown: %s", u.redacted);
    wf__url_free(&u);
    cr_assert_eq(wf__url_parse("redis://[::1]:6380", &u, &err), WF_OK);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 6380);
    wf__url_free(&u);
    cr_assert_eq(wf__url_parse("unix:///tmp/r.sock?db=2", &u, &err), WF_OK);
    cr_assert_str_eq(u.unix_path, "/tmp/r.sock");
    cr_assert_eq(u.db, 2);
    wf__url_free(&u);
    const char *bad[] = {
        "http://x",       "redis://",         "redis://h:0",           "redis://h:99999",
        "redis://h:12ab", "redis://h?nope=1", "redis://h?prefix=a{b}", "redis://h/x",
        "redis://h%zz@h", "rediss://h",       "unix://relative",       "redis://h x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        cr_assert_eq(wf__url_parse(bad[i], &u, &err), WF_ERR_URL, "'%s' must be refused", bad[i]);
        cr_assert_gt(strlen(err.message), 5);
    }
}

Test(client, error_map)
{
    cr_assert_str_eq(wf_strerror(WF_ERR_NOT_FOUND), "no such run");
    cr_assert_str_eq(wf_errname(WF_ERR_BAD_ID), "WF_ERR_BAD_ID");
    cr_assert_str_eq(wf_strerror(12345), "unknown error");
    cr_assert_str_eq(wf_state_name(WF_STATE_TERMINATED), "terminated");
    cr_assert_eq(wf_state_from_name("paused"), WF_STATE_PAUSED);
    cr_assert_eq(wf_state_from_name("bogus"), WF_STATE_UNKNOWN);
    cr_assert(wf_state_is_final(WF_STATE_FAILED));
    cr_assert_not(wf_state_is_final(WF_STATE_WAITING));
}
