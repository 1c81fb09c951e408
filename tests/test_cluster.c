/* test_cluster.c - wf on a real Redis Cluster of 3 masters and 3 replicas on loopback
 * (cluster_harness.h): the client and wf-worker processes route by slot, runs of workflows that
 * live on different masters complete, steps, events, child runs and listing work across slots,
 * a slot moved under a running worker (MOVED, ASK) is followed, and runs go on after a master is
 * killed and its replica takes over. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "cluster_harness.h"
#include "harness.h"
#include "wf_internal.h"

static wf_test_cluster cl_srv;
static wf_client *cl;
static char dir[256], log_path[300], exec_env[340];
static pid_t workers[2];

static void setup(void)
{
    cr_assert_eq(wf_test_cluster_start(&cl_srv), 0, "could not start a Redis Cluster");
    wf_test_temp_dir(dir, sizeof dir, "cluster");
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    snprintf(exec_env, sizeof exec_env, "WF_TEST_EXEC_LOG=%s/exec.log", dir);
    cl = wf_test_client(cl_srv.url);
}

static pid_t start_worker(void)
{
    const char *args[] = {"--processes", "1", "--concurrency", "8", "--lease-ms", "3000", NULL};
    const char *env[] = {exec_env, NULL};
    /* The registry's master now (a test may have failed one over). */
    redisContext *reg = wf_test_cluster_connect_for(&cl_srv, "wf:workflows");
    cr_assert_not_null(reg);
    /* A starting worker registers its workflows one HSET at a time, in module order: once the
     * last module's ("timeout", tests/workflows/timeout.c) is there, all are. */
    pid_t pid =
        wf_test_worker_start(&(wf_test_worker){.redis_url = cl_srv.url,
                                               .extra = args,
                                               .env = env,
                                               .log_path = log_path,
                                               .rc = reg,
                                               .workflows = (const char *[]){"timeout", NULL},
                                               .timeout_ms = 15000});
    redisFree(reg);
    return pid;
}

static void teardown(void)
{
    int clean = 1;
    for (int i = 0; i < 2; i++)
        if (workers[i] > 0) {
            int st = wf_test_kill(workers[i], SIGTERM, 30000);
            clean &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
            workers[i] = 0;
        }
    int quiet = wf_test_log_quiet(log_path, !clean);
    wf_client_free(cl);
    cl = NULL;
    wf_test_cluster_stop(&cl_srv);
    wf_test_remove_tree(dir);
    cr_assert(quiet, "a sanitizer reported an error in a worker process");
    cr_assert(clean, "a worker did not drain and exit 0 on SIGTERM");
}

TestSuite(cluster, .init = setup, .fini = teardown, .timeout = 240);

static wf_run *start_json(const char *workflow, const char *json)
{
    return wf_test_start_json(cl, workflow, json, NULL);
}

/* Waits for `state` and returns the output as JSON (caller frees; NULL: no output). */
static char *wait_output(wf_run *run, wf_state state, int ms)
{
    wf_status st;
    wf_test_wait_state(run, state, ms, &st, log_path);
    char *json = NULL;
    if (st.output) wf_msgpack_to_json(st.output, st.output_len, &json, NULL);
    wf_status_clear(&st);
    return json;
}

static int master_of_workflow(const char *workflow)
{
    char key[200];
    snprintf(key, sizeof key, "wf:{%s}:queue", workflow);
    return wf_test_cluster_master_of(&cl_srv, key);
}

Test(cluster, slots_match_the_servers)
{
    /* The library's CRC16 against the servers' CLUSTER KEYSLOT. */
    const char *keys[] = {"wf:{echo}:queue",
                          "wf:{stepper}:run:stepper:01ABC",
                          "plain-key",
                          "{}",
                          "a{}b",
                          "{x",
                          "wf:{ev:order-paid}:log",
                          "x{y}{z}"};
    redisContext *c = wf_test_cluster_connect_for(&cl_srv, "plain-key");
    cr_assert_not_null(c);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        redisReply *r = wf_test_command(c, "CLUSTER KEYSLOT %s", keys[i]);
        cr_assert(r && r->type == REDIS_REPLY_INTEGER);
        cr_assert_eq(wf__key_slot(keys[i], strlen(keys[i])), (int)r->integer, "slot of %s",
                     keys[i]);
        freeReplyObject(r);
    }
    redisFree(c);
}

Test(cluster, runs_of_workflows_on_different_masters_complete)
{
    workers[0] = start_worker();
    const char *wfs[] = {"echo", "stepper", "invoker", "sender", "flaky"};
    int masters = 0, seen[WF_TEST_CLUSTER_NODES] = {0};
    for (size_t i = 0; i < sizeof wfs / sizeof wfs[0]; i++) {
        int m = master_of_workflow(wfs[i]);
        cr_assert_geq(m, 0);
        masters += !seen[m];
        seen[m] = 1;
    }
    cr_assert_geq(masters, 2, "the test workflows all hash to one master: the test proves little");

    wf_run *e = start_json("echo", "{\"hello\":\"cluster\"}");
    wf_run *s = start_json("stepper", "{\"n\":4}");
    wf_run *k = start_json("invoker", "{\"workflow\":\"echo\",\"input\":{\"child\":1}}");
    wf_run *f = start_json("flaky", "null");
    wf_run *waiter = start_json("stepper", "{\"n\":1,\"event\":\"test-event\"}");
    char *out = wait_output(e, WF_STATE_COMPLETED, 30000);
    cr_assert_str_eq(out, "{\"hello\":\"cluster\"}");
    free(out);
    out = wait_output(s, WF_STATE_COMPLETED, 30000);
    cr_assert_str_eq(out, "{\"sum\":60,\"event\":null}");
    free(out);
    out = wait_output(k, WF_STATE_COMPLETED, 30000);
    cr_assert_str_eq(out, "{\"child\":{\"child\":1}}");
    free(out);
    free(wait_output(f, WF_STATE_COMPLETED, 30000));
    /* An event sent from a run of another slot ({ev:...} has its own) wakes the waiter. */
    free(wait_output(waiter, WF_STATE_WAITING, 30000));
    wf_run *snd = start_json("sender", "{\"paid\":true}");
    free(wait_output(snd, WF_STATE_COMPLETED, 30000));
    out = wait_output(waiter, WF_STATE_COMPLETED, 30000);
    cr_assert_str_eq(out, "{\"sum\":0,\"event\":{\"paid\":true}}");
    free(out);

    /* Listing fans out over the workflows' slots. */
    char **ids = NULL;
    size_t n = 0;
    wf_list_options lo = {0};
    lo.state = WF_STATE_COMPLETED;
    wf_error err = {0};
    cr_assert_eq(wf_list_runs(cl, &lo, &ids, &n, &err), WF_OK, "%s", err.message);
    cr_assert_geq(n, 7, "completed runs listed: %zu", n);
    wf_list_free(ids, n);

    wf_run *runs[] = {e, s, k, f, waiter, snd};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) wf_run_free(runs[i]);
}

Test(cluster, batch_stop_and_status_across_slots)
{
    /* No worker yet: runs stay queued, so stop finds them. */
    const char *inputs[3] = {"\x01", "\x02", "\x03"}; /* msgpack fixints 1, 2, 3 */
    size_t lens[3] = {1, 1, 1};
    wf_run *runs[3] = {0};
    wf_error err = {0};
    wf_run_options ro = {0};
    ro.allow_unregistered = 1;
    cr_assert_eq(
        wf_run_workflow_batch(cl, "echo", 3, (const void *const *)inputs, lens, &ro, runs, &err),
        WF_OK, "%s", err.message);
    wf_run *st = wf_run_workflow_ex(cl, "stepper", NULL, 0, &ro, &err);
    cr_assert_not_null(st, "%s", err.message);
    cr_assert_eq(wf_run_stop(st, &err), WF_OK, "%s", err.message);
    workers[0] = start_worker();
    for (int i = 0; i < 3; i++) {
        wf_run *r = wf_get_workflow_run(cl, wf_run_id(runs[i]), &err);
        cr_assert_not_null(r, "%s", err.message);
        wf_run_free(runs[i]);
        char *out = wait_output(r, WF_STATE_COMPLETED, 30000);
        char expect[4];
        snprintf(expect, sizeof expect, "%d", i + 1);
        cr_assert_str_eq(out, expect);
        free(out);
        wf_run_free(r);
    }
    free(wait_output(st, WF_STATE_CANCELLED, 5000));
    wf_run_free(st);
}

/* ---- a master fails over -------------------------------------------------------------------- */

typedef struct repl_wait {
    int port;
    long long target;
} repl_wait;

/* 1 when node `port`'s replica acknowledged at least `target` of the replication stream. */
static int replica_caught_up(void *arg)
{
    repl_wait *rw = arg;
    redisContext *c = redisConnect("127.0.0.1", rw->port);
    redisReply *r = c && !c->err ? wf_test_command(c, "INFO replication") : NULL;
    int ok = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *s = strstr(r->str, "slave0:");
        const char *off = s ? strstr(s, "offset=") : NULL;
        if (off) ok = atoll(off + 7) >= rw->target;
    }
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return ok;
}

/* Waits until master `idx`'s replica has everything the master had when called. */
static void wait_replicated(int idx)
{
    redisContext *c = redisConnect("127.0.0.1", cl_srv.node[idx].port);
    cr_assert(c && !c->err);
    redisReply *r = wf_test_command(c, "INFO replication");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    const char *off = strstr(r->str, "master_repl_offset:");
    cr_assert_not_null(off);
    repl_wait rw = {cl_srv.node[idx].port, atoll(off + 19)};
    freeReplyObject(r);
    redisFree(c);
    cr_assert(wf_test_wait(replica_caught_up, &rw, 10000), "the replica never caught up");
}

/* wf_run_workflow, retried while the cluster is failing over (each try reconnects). */
static wf_run *start_retrying(const char *workflow, const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(wf_json_to_msgpack(json, strlen(json), NULL, &sb, NULL), WF_OK);
    wf_run *run = NULL;
    wf_error err = {0};
    for (int i = 0; i < 50 && !run; i++) {
        run = wf_run_workflow(cl, workflow, sb.data, sb.size, &err);
        if (!run) {
            cr_assert(err.code == WF_ERR_IO || err.code == WF_ERR_CONNECT ||
                          err.code == WF_ERR_REDIS,
                      "unexpected error: %s", err.message);
            struct timespec ts = {0, 200 * 1000 * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(run, "could not start a run after the failover: %s", err.message);
    return run;
}

Test(cluster, runs_go_on_after_a_master_fails_over)
{
    workers[0] = start_worker();
    workers[1] = start_worker();
    enum { BEFORE = 40, AFTER = 20 };
    wf_run *runs[2 * BEFORE + AFTER];
    int n = 0;
    for (int i = 0; i < BEFORE; i++) {
        runs[n++] = start_json("stepper", "{\"n\":3,\"work_ms\":20}");
        runs[n++] = start_json("echo", "{\"i\":1}");
    }
    int victim = master_of_workflow("stepper");
    cr_assert_geq(victim, 0);
    wait_replicated(victim);
    int promoted = wf_test_cluster_kill_master(&cl_srv, victim, 30000);
    cr_assert_geq(promoted, 0, "no replica took over");
    cr_assert_eq(master_of_workflow("stepper"), promoted);
    for (int i = 0; i < AFTER; i++) runs[n++] = start_retrying("stepper", "{\"n\":2}");
    for (int i = 0; i < n; i++) {
        free(wait_output(runs[i], WF_STATE_COMPLETED, 90000));
        wf_run_free(runs[i]);
    }
}

/* ---- a slot moves under a running worker: ASK, then MOVED ---------------------------------- */

static redisContext *node_conn(int idx)
{
    redisContext *c = redisConnect("127.0.0.1", cl_srv.node[idx].port);
    cr_assert(c && !c->err, "node %d unreachable", idx);
    return c;
}

static char *node_id(int idx)
{
    redisContext *c = node_conn(idx);
    char *id = wf_test_cmd_str(c, "CLUSTER MYID");
    redisFree(c);
    cr_assert_not_null(id);
    return id;
}

/* Another master than `idx`. */
static int other_master(int idx)
{
    for (int i = 0; i < cl_srv.n; i++) {
        if (i == idx || cl_srv.node[i].pid <= 0) continue;
        redisContext *c = node_conn(i);
        redisReply *r = wf_test_command(c, "ROLE");
        int master = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                     strcmp(r->element[0]->str, "master") == 0;
        if (r) freeReplyObject(r);
        redisFree(c);
        if (master) return i;
    }
    return -1;
}

/* Moves every key of `slot` from node `from` to node `to` (MIGRATE), the slot being marked
 * MIGRATING / IMPORTING meanwhile; the owner does not change yet. */
static void migrate_keys(int slot, int from, int to, const char *from_id, const char *to_id)
{
    redisContext *a = node_conn(from), *b = node_conn(to);
    redisReply *r = wf_test_command(b, "CLUSTER SETSLOT %d IMPORTING %s", slot, from_id);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "%s", r ? r->str : "no reply");
    freeReplyObject(r);
    r = wf_test_command(a, "CLUSTER SETSLOT %d MIGRATING %s", slot, to_id);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "%s", r ? r->str : "no reply");
    freeReplyObject(r);
    for (;;) {
        redisReply *keys = wf_test_command(a, "CLUSTER GETKEYSINSLOT %d 100", slot);
        cr_assert(keys && keys->type == REDIS_REPLY_ARRAY);
        size_t n = keys->elements;
        for (size_t i = 0; i < n; i++) {
            r = wf_test_command(a, "MIGRATE 127.0.0.1 %d %s 0 5000", cl_srv.node[to].port,
                                keys->element[i]->str);
            cr_assert(r && r->type == REDIS_REPLY_STATUS, "MIGRATE: %s", r ? r->str : "no reply");
            freeReplyObject(r);
        }
        freeReplyObject(keys);
        if (n == 0) break;
    }
    redisFree(a);
    redisFree(b);
}

/* Makes node `to` the owner of `slot` in every live node's view. */
static void assign_slot(int slot, const char *to_id)
{
    for (int i = 0; i < cl_srv.n; i++) {
        if (cl_srv.node[i].pid <= 0) continue;
        redisContext *c = node_conn(i);
        redisReply *r = wf_test_command(c, "CLUSTER SETSLOT %d NODE %s", slot, to_id);
        if (r) freeReplyObject(r);
        redisFree(c);
    }
}

Test(cluster, a_slot_moved_under_a_running_worker_is_followed)
{
    workers[0] = start_worker();
    wf_run *first = start_json("echo", "\"before\"");
    char *out = wait_output(first, WF_STATE_COMPLETED, 30000);
    cr_assert_str_eq(out, "\"before\"");
    free(out);
    int from = master_of_workflow("echo"), to = other_master(from);
    cr_assert_geq(from, 0);
    cr_assert_geq(to, 0);
    char *from_id = node_id(from), *to_id = node_id(to);
    int slot = wf__key_slot("{echo}", 6);

    /* Mid-migration: the keys are on `to`, the slot still `from`'s: reads are ASKed over. */
    migrate_keys(slot, from, to, from_id, to_id);
    wf_status st;
    wf_error err = {0};
    cr_assert_eq(wf_run_status(first, &st, &err), WF_OK, "%s", err.message);
    cr_assert_eq(st.state, WF_STATE_COMPLETED);
    wf_status_clear(&st);

    /* Done: the client's and the worker's maps are stale; MOVED takes them to `to`. */
    assign_slot(slot, to_id);
    cr_assert_eq(master_of_workflow("echo"), to);
    wf_run *runs[10];
    for (int i = 0; i < 10; i++) runs[i] = start_json("echo", "\"after\"");
    for (int i = 0; i < 10; i++) {
        out = wait_output(runs[i], WF_STATE_COMPLETED, 30000);
        cr_assert_str_eq(out, "\"after\"");
        free(out);
        wf_run_free(runs[i]);
    }
    wf_run_free(first);
    free(from_id);
    free(to_id);
}

/* ---- deferred starts on the caller's loop (redis/aroute.c): MOVED, then a failover --------- */

typedef struct deferred {
    struct event_base *base;
    const char *tag; /* run ids echo:TAG0.. */
    int n;
    int errors; /* reported to the defer error callback */
} deferred;

static void on_defer_error(const char *workflow, const wf_error *err, void *userdata)
{
    (void)workflow;
    deferred *d = userdata;
    cr_assert(err->code == WF_ERR_IO || err->code == WF_ERR_CONNECT || err->code == WF_ERR_REDIS,
              "a clear error for a start lost to the failover: %s", err->message);
    d->errors++;
}

static int queued_count(const deferred *d)
{
    int queued = 0;
    for (int i = 0; i < d->n; i++) {
        char id[64];
        snprintf(id, sizeof id, "echo:%s%d", d->tag, i);
        wf_run *run = wf_get_workflow_run(cl, id, NULL);
        wf_status st;
        if (run && wf_run_status(run, &st, NULL) == WF_OK) {
            queued += st.state == WF_STATE_QUEUED;
            wf_status_clear(&st);
        }
        wf_run_free(run);
    }
    return queued;
}

/* Runs the loop a little, then: every start is in Redis or was reported. */
static int all_accounted(void *arg)
{
    deferred *d = arg;
    event_base_loop(d->base, EVLOOP_NONBLOCK);
    return queued_count(d) + d->errors >= d->n;
}

static void defer_all(deferred *d)
{
    for (int i = 0; i < d->n; i++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "%s%d", d->tag, i);
        wf_run_options o = {.id = suffix};
        cr_assert_eq(wf_defer_workflow_ex(cl, "echo", NULL, 0, &o), WF_OK);
    }
    cr_assert(wf_test_wait(all_accounted, d, 30000), "%s: %d queued, %d reported of %d", d->tag,
              queued_count(d), d->errors, d->n);
}

Test(cluster, deferred_starts_on_an_attached_loop_follow_moves_and_failovers)
{
    struct event_base *base = event_base_new();
    wf_error err = {0};
    cr_assert_eq(wf_client_attach(cl, base, &err), WF_OK, "%s", err.message);
    deferred d = {base, "a", 10, 0};
    wf_client_on_defer_error(cl, on_defer_error, &d);
    defer_all(&d);
    cr_assert_eq(queued_count(&d), 10, "all queued before anything moved");

    /* The slot moves: the loop's map is stale, MOVED takes the starts to the new owner. */
    int from = master_of_workflow("echo"), to = other_master(from);
    char *from_id = node_id(from), *to_id = node_id(to);
    int slot = wf__key_slot("{echo}", 6);
    migrate_keys(slot, from, to, from_id, to_id);
    assign_slot(slot, to_id);
    d.tag = "b";
    defer_all(&d);
    cr_assert_eq(d.errors, 0);
    cr_assert_eq(queued_count(&d), 10, "all queued on the new owner");

    /* Its master dies and its replica takes over. The loop's map and connection still name the
     * dead master: the next starts find the connection gone, reload the map without blocking
     * and are queued on the promoted replica, or are reported; never dropped in silence. */
    wait_replicated(to);
    cr_assert_geq(wf_test_cluster_kill_master(&cl_srv, to, 30000), 0, "no replica took over");
    d.tag = "c";
    defer_all(&d);
    int lost_to_failover = d.errors;
    d.tag = "d";
    d.errors = 0;
    defer_all(&d);
    cr_assert_eq(d.errors, 0, "after the failover every start reaches Redis");
    cr_assert_eq(queued_count(&d), 10);
    printf("attached defer across a failover: %d of 10 starts reported, the rest queued\n",
           lost_to_failover);
    free(from_id);
    free(to_id);
    wf_client_free(cl);
    cl = NULL;
    event_base_free(base);
}
