/* test_aroute.c - the shared async router (redis/aroute.h) against real servers: every decision
 * it takes on a reply. On a private single server (in both modes): a script call after Redis lost
 * the library (FUNCTION FLUSH) loads it and is sent again,
 * a refusal for now (MASTERDOWN) waited out, and given up past the budget, READONLY told to the
 * owner (answered NULL, or retried), a command waiting to be sent again answered NULL at close, no
 * context to send on. On the shared cluster (the _cluster twin only): MOVED followed and the map
 * updated, ASK followed (ASKING first) without updating it, a cross-slot XREADGROUP split and
 * merged, a lost node told to the owner, which reloads the map, and the command sent again.
 * Fixture: harness.h. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "aroute.h"
#include "harness.h"
#include "wf_internal.h"

/* Plain hiredis here: these tests talk to one node on purpose (harness.h routes otherwise). */
#undef redisCommand

static wf_test_redis srv;
static struct event_base *base;

static void setup(void)
{
    /* Its own server (in cluster mode too): it is made a replica and refuses reads meanwhile. */
    cr_assert_eq(wf_test_redis_start(&srv, "replica-serve-stale-data no\n"), 0);
    base = event_base_new();
    cr_assert_not_null(base);
}

/* Also called before a test skips itself: Criterion runs no .fini for a skipped test. */
static void teardown(void)
{
    if (base) event_base_free(base);
    base = NULL;
    wf_test_redis_stop(&srv);
}

TestSuite(aroute, .init = setup, .fini = teardown, .timeout = 90);

/* ---- an owner ----------------------------------------------------------------------------- */

typedef struct owner {
    redisAsyncContext *ac; /* the one server's context (ctx callback); NULL: none */
    wf__ar *ar;
    int notes[WF__AR_ACCEPTED + 1];
    redisAsyncContext *noted_ac;
    int reload; /* reload the map on LOST / READONLY, as the attached client does */
} owner;

typedef struct answer {
    int fired;
    redisReply *r; /* a copy; NULL: the NULL reply */
} answer;

static redisAsyncContext *owner_ctx(void *o, int lane, int node)
{
    (void)lane;
    (void)node;
    return ((owner *)o)->ac;
}

static void owner_note(void *o, const wf__ar_note *n)
{
    owner *ow = o;
    ow->notes[n->ev]++;
    if (n->ev == WF__AR_READONLY) ow->noted_ac = n->ac;
    if (ow->reload && (n->ev == WF__AR_LOST || n->ev == WF__AR_READONLY)) wf__ar_reload(ow->ar);
}

static void on_answer(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    answer *a = priv;
    a->fired++;
    a->r = wf__reply_copy(reply);
}

static redisAsyncContext *connect_async(const wf_test_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", r->port);
    cr_assert(ac && !ac->err);
    cr_assert_eq(redisLibeventAttach(ac, base), REDIS_OK);
    return ac;
}

/* A router over one server's context `ac`. */
static wf__ar *one_server_router(owner *ow, redisAsyncContext *ac, int budget_ms, int resend_lost)
{
    ow->ac = ac;
    wf__ar_cfg cfg = {.base = base,
                      .budget_ms = budget_ms,
                      .resend_lost = resend_lost,
                      .owner = ow,
                      .ctx = owner_ctx,
                      .note = owner_note};
    ow->ar = wf__ar_new(&cfg, NULL);
    cr_assert_not_null(ow->ar);
    return ow->ar;
}

static void router_done(owner *ow)
{
    wf__ar_close(ow->ar);
    if (ow->ac) redisAsyncFree(ow->ac);
    wf__ar_free(ow->ar);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until `a` fired (or timeout_ms). */
static void await(answer *a, int timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;
    while (!a->fired && now_ms() < until) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    cr_assert_eq(a->fired, 1, "the callback fired exactly once within %d ms", timeout_ms);
}

static int is_str(const redisReply *r, const char *s)
{
    return r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) &&
           strcmp(r->str, s) == 0;
}

static int is_err(const redisReply *r, const char *code)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, code, strlen(code)) == 0;
}

static void expect_ok(redisContext *c, const char *cmd)
{
    redisReply *r = wf_test_command(c, cmd);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s: %s", cmd, r ? r->str : "no reply");
    freeReplyObject(r);
}

/* ---- one server ----------------------------------------------------------------------------- */

Test(aroute, function_not_found_loads_the_library_and_sends_again)
{
    redisContext *c = wf_test_redis_connect(&srv);
    wf__rc *rc = wf__rc_wrap(c);
    wf_error err = {0};
    cr_assert_eq(wf__functions_load(rc, &err), WF_OK, "%s", err.message);
    expect_ok(c, "FUNCTION FLUSH");
    owner ow = {0};
    wf__ar *ar = one_server_router(&ow, connect_async(&srv), 1000, 0);
    answer a = {0};
    const char *keys[] = {"{t}:a", "{t}:b"};
    cr_assert_eq(wf__ar_script(ar, on_answer, &a, WF__SCRIPT_HEARTBEAT, 2, keys, 0, NULL, NULL),
                 WF_OK);
    await(&a, 5000);
    cr_assert(a.r && a.r->type != REDIS_REPLY_ERROR, "the caller never sees a missing function: %s",
              a.r ? a.r->str : "(null)");
    redisReply *r = wf_test_command(c, "FCALL wf_version 0");
    cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, wf__library_version) == 0,
              "the router loaded this build's library: %s", r ? r->str : "no reply");
    freeReplyObject(r);
    wf__reply_free(a.r);
    router_done(&ow);
    wf__rc_free(rc);
    redisFree(c);
}

/* Makes srv refuse reads for now (on: 1) the way Redis does while a replica has lost its master:
 * a replica of a master that is not there, with replica-serve-stale-data no, answers MASTERDOWN
 * (reply_action.h: retry); or makes it a master again (on: 0). */
static void refuse_reads(int on)
{
    redisContext *c = wf_test_redis_connect(&srv);
    expect_ok(c, on ? "REPLICAOF 127.0.0.1 1" : "REPLICAOF NO ONE");
    redisFree(c);
}

/* A router over srv with `budget_ms`, srv refusing reads, and a GET sent. */
static answer *refused_get(owner *ow, int budget_ms)
{
    wf__ar *ar = one_server_router(ow, connect_async(&srv), budget_ms, 0);
    refuse_reads(1);
    answer *a = calloc(1, sizeof *a);
    cr_assert_eq(wf__ar_argv(ar, on_answer, a, 2, (const char *[]){"GET", "k"}, NULL), REDIS_OK);
    return a;
}

static void answer_free(answer *a)
{
    wf__reply_free(a->r);
    free(a);
}

/* Runs the loop until the owner heard of a refusal. */
static void await_refused(owner *ow)
{
    int64_t until = now_ms() + 5000;
    while (!ow->notes[WF__AR_REFUSED] && now_ms() < until)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    cr_assert_eq(ow->notes[WF__AR_REFUSED], 1, "the owner heard of the refusal");
}

Test(aroute, a_refusal_for_now_is_waited_out)
{
    owner ow = {0};
    answer *a = refused_get(&ow, 5000);
    await_refused(&ow);
    cr_assert_eq(a->fired, 0, "it waits to be sent again");
    refuse_reads(0);
    await(a, 5000);
    cr_assert(a->r && a->r->type == REDIS_REPLY_NIL, "sent again until Redis ran it: %s",
              a->r && a->r->str ? a->r->str : "(not nil)");
    cr_assert_eq(ow.notes[WF__AR_REFUSED], 1, "told once (at most every 5 s)");
    cr_assert_eq(ow.notes[WF__AR_ACCEPTED], 1, "and told that Redis accepts again");
    answer_free(a);
    router_done(&ow);
}

Test(aroute, a_refusal_past_the_budget_is_the_answer)
{
    owner ow = {0};
    int64_t t0 = now_ms();
    answer *a = refused_get(&ow, 200);
    await(a, 5000);
    int64_t took = now_ms() - t0;
    cr_assert(is_err(a->r, "MASTERDOWN"), "the last refusal: %s", a->r ? a->r->str : "(null)");
    cr_assert(took >= 100 && took < 1000, "given up within the budget (%lld ms)", (long long)took);
    answer_free(a);
    router_done(&ow);
}

Test(aroute, close_answers_a_waiting_command_with_null)
{
    owner ow = {0};
    answer *a = refused_get(&ow, 5000);
    await_refused(&ow);
    wf__ar_close(ow.ar);
    cr_assert_eq(a->fired, 1, "answered at close, without the loop");
    cr_assert_null(a->r);
    answer b = {0};
    cr_assert_eq(wf__ar_argv(ow.ar, on_answer, &b, 1, (const char *[]){"PING"}, NULL), REDIS_ERR,
                 "nothing is sent after close");
    answer_free(a);
    router_done(&ow);
}

Test(aroute, no_context_is_an_error_at_once)
{
    owner ow = {0};
    wf__ar *ar = one_server_router(&ow, NULL, 1000, 0);
    answer a = {0};
    cr_assert_eq(wf__ar_argv(ar, on_answer, &a, 1, (const char *[]){"PING"}, NULL), REDIS_ERR);
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_assert_eq(a.fired, 0, "fn never fires when sending failed");
    router_done(&ow);
}

/* A replica of srv, read-only: it answers writes with READONLY. */
static void start_replica(wf_test_redis *replica)
{
    cr_assert_eq(wf_test_redis_start(replica, "replica-read-only yes\n"), 0);
    redisContext *rr = wf_test_redis_connect(replica);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "REPLICAOF 127.0.0.1 %d", srv.port);
    expect_ok(rr, cmd);
    redisFree(rr);
}

Test(aroute, readonly_is_told_to_the_owner)
{
    wf_test_redis replica;
    start_replica(&replica);
    for (int resend = 0; resend < 2; resend++) {
        owner ow = {0};
        wf__ar *ar = one_server_router(&ow, connect_async(&replica), 300, resend);
        answer a = {0};
        cr_assert_eq(wf__ar_argv(ar, on_answer, &a, 3, (const char *[]){"SET", "k", "v"}, NULL),
                     REDIS_OK);
        await(&a, 5000);
        cr_assert_geq(ow.notes[WF__AR_READONLY], 1, "the owner heard (resend %d)", resend);
        cr_assert_eq(ow.noted_ac, ow.ac, "of the context that answered");
        if (resend)
            cr_assert(is_err(a.r, "READONLY") && ow.notes[WF__AR_READONLY] > 1,
                      "sent again until the budget ran out, then the last answer");
        else
            cr_assert_null(a.r, "the caller hears a lost connection and resends after reconnect");
        wf__reply_free(a.r);
        router_done(&ow);
    }
    wf_test_redis_stop(&replica);
}

/* ---- the shared cluster --------------------------------------------------------------------- */

typedef struct cluster {
    wf_test_redis r;
    wf__url url;
    wf__slotmap map;
    owner ow;
} cluster;

/* A router with its own node contexts over the shared cluster (the attached client's way). */
static wf__ar *cluster_router(cluster *cl)
{
    if (!wf_test_cluster_mode()) {
        teardown(); /* the suite's server, started by .init: a skipped test gets no .fini */
        cr_skip_test("cluster only: the _cluster twin runs it");
    }
    cr_assert_eq(wf_test_redis_start(&cl->r, NULL), 0);
    wf_error err = {0};
    cr_assert_eq(wf__url_parse(cl->r.url, &cl->url, &err), WF_OK, "%s", err.message);
    cr_assert_eq(wf__slotmap_fetch(&cl->url, NULL, &cl->map, &err), WF_OK, "%s", err.message);
    wf__ar_cfg cfg = {.base = base,
                      .map = &cl->map,
                      .budget_ms = 5000,
                      .resend_lost = 1,
                      .owner = &cl->ow,
                      .note = owner_note};
    cl->ow.reload = 1;
    cl->ow.ar = wf__ar_new(&cfg, &cl->url);
    cr_assert_not_null(cl->ow.ar);
    return cl->ow.ar;
}

static void cluster_done(cluster *cl)
{
    wf__ar_free(cl->ow.ar);
    wf__url_free(&cl->url);
    wf_test_redis_stop(&cl->r);
}

static redisContext *node_conn(const cluster *cl, int n)
{
    redisContext *c = redisConnect(cl->map.node[n].host, cl->map.node[n].port);
    cr_assert(c && !c->err);
    return c;
}

/* A master of the map other than `n`. */
static int other_node(const cluster *cl, int n)
{
    for (int s = 0; s < WF__SLOTS; s++)
        if (cl->map.owner[s] >= 0 && cl->map.owner[s] != n) return cl->map.owner[s];
    cr_assert_fail("one master only");
    return -1;
}

Test(aroute, moved_is_followed_and_the_map_updated)
{
    cluster cl = {0};
    wf__ar *ar = cluster_router(&cl);
    int slot = wf__key_slot("{mv}k", 5), owner_node = cl.map.owner[slot];
    cl.map.owner[slot] = (int16_t)other_node(&cl, owner_node); /* a stale map */
    answer a = {0};
    cr_assert_eq(wf__ar_argv(ar, on_answer, &a, 3, (const char *[]){"SET", "{mv}k", "v"}, NULL),
                 REDIS_OK);
    await(&a, 5000);
    cr_assert(is_str(a.r, "OK"), "%s", a.r ? a.r->str : "(null)");
    cr_assert_eq(cl.map.owner[slot], owner_node, "MOVED updated the map");
    wf__reply_free(a.r);
    cluster_done(&cl);
}

static void setslot(const cluster *cl, int n, const char *fmt, int slot, const char *id)
{
    redisContext *c = node_conn(cl, n);
    redisReply *r = id ? wf_test_command(c, fmt, slot, id) : wf_test_command(c, fmt, slot);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "%s", r ? r->str : "no reply");
    freeReplyObject(r);
    redisFree(c);
}

static char *myid(const cluster *cl, int n)
{
    redisContext *c = node_conn(cl, n);
    char *id = NULL;
    redisReply *r = wf_test_command(c, "CLUSTER MYID");
    if (r && r->type == REDIS_REPLY_STRING) id = strdup(r->str);
    if (r) freeReplyObject(r);
    redisFree(c);
    cr_assert_not_null(id);
    return id;
}

Test(aroute, ask_is_followed_with_asking_and_the_map_kept)
{
    cluster cl = {0};
    wf__ar *ar = cluster_router(&cl);
    int slot = wf__key_slot("{ask}k", 6), from = cl.map.owner[slot], to = other_node(&cl, from);
    char *from_id = myid(&cl, from), *to_id = myid(&cl, to);
    setslot(&cl, to, "CLUSTER SETSLOT %d IMPORTING %s", slot, from_id);
    setslot(&cl, from, "CLUSTER SETSLOT %d MIGRATING %s", slot, to_id);
    answer a = {0};
    cr_assert_eq(wf__ar_argv(ar, on_answer, &a, 3, (const char *[]){"SET", "{ask}k", "v"}, NULL),
                 REDIS_OK);
    await(&a, 5000);
    cr_assert(is_str(a.r, "OK"), "%s", a.r ? a.r->str : "(null)");
    cr_assert_eq(cl.map.owner[slot], from, "ASK leaves the map as it is");
    redisContext *c = node_conn(&cl, to);
    redisReply *r = wf_test_command(c, "ASKING");
    freeReplyObject(r);
    r = wf_test_command(c, "GET {ask}k");
    cr_assert(is_str(r, "v"), "written on the importing node");
    freeReplyObject(r);
    expect_ok(c, "FLUSHALL");
    redisFree(c);
    setslot(&cl, to, "CLUSTER SETSLOT %d STABLE", slot, NULL);
    setslot(&cl, from, "CLUSTER SETSLOT %d STABLE", slot, NULL);
    free(from_id);
    free(to_id);
    wf__reply_free(a.r);
    cluster_done(&cl);
}

Test(aroute, xreadgroup_over_two_slots_is_split_and_merged)
{
    cluster cl = {0};
    wf__ar *ar = cluster_router(&cl);
    const char *s1 = "{xa}s", *s2 = "{xb}s";
    cr_assert_neq(wf__key_slot(s1, 5), wf__key_slot(s2, 5));
    for (int i = 0; i < 2; i++) {
        const char *s = i ? s2 : s1;
        answer g = {0}, x = {0};
        wf__ar_argv(ar, on_answer, &g, 6,
                    (const char *[]){"XGROUP", "CREATE", s, "g", "0", "MKSTREAM"}, NULL);
        wf__ar_argv(ar, on_answer, &x, 5, (const char *[]){"XADD", s, "*", "f", s}, NULL);
        await(&g, 5000);
        await(&x, 5000);
        cr_assert(g.r && x.r && x.r->type == REDIS_REPLY_STRING);
        wf__reply_free(g.r);
        wf__reply_free(x.r);
    }
    answer a = {0};
    const char *argv[] = {"XREADGROUP", "GROUP", "g", "c", "COUNT", "10",
                          "STREAMS",    s1,      s2,  ">", ">"};
    cr_assert_eq(wf__ar_argv(ar, on_answer, &a, 11, argv, NULL), REDIS_OK);
    await(&a, 5000);
    cr_assert(a.r && a.r->type == REDIS_REPLY_ARRAY && a.r->elements == 2,
              "one reply with both streams");
    int seen = 0;
    for (size_t i = 0; i < 2; i++) {
        const redisReply *st = a.r->element[i];
        cr_assert(st->type == REDIS_REPLY_ARRAY && st->elements == 2);
        seen |= strcmp(st->element[0]->str, s1) == 0   ? 1
                : strcmp(st->element[0]->str, s2) == 0 ? 2
                                                       : 0;
        cr_assert_eq(st->element[1]->elements, 1, "its one entry");
    }
    cr_assert_eq(seen, 3, "both streams are in the merged reply");
    wf__reply_free(a.r);
    cluster_done(&cl);
}

Test(aroute, a_lost_node_reloads_the_map_and_is_sent_again)
{
    cluster cl = {0};
    wf__ar *ar = cluster_router(&cl);
    int slot = wf__key_slot("{lost}k", 7), owner_node = cl.map.owner[slot];
    /* A node nobody listens on owns the slot in this map, as after a master died. */
    int dead = wf__slotmap_node(&cl.map, "127.0.0.1", 1);
    cr_assert_geq(dead, 0);
    cl.map.owner[slot] = (int16_t)dead;
    answer a = {0};
    cr_assert_eq(wf__ar_argv(ar, on_answer, &a, 3, (const char *[]){"SET", "{lost}k", "v"}, NULL),
                 REDIS_OK);
    await(&a, 5000);
    cr_assert(is_str(a.r, "OK"), "%s", a.r ? a.r->str : "(null)");
    cr_assert_geq(cl.ow.notes[WF__AR_LOST], 1, "the owner heard of the lost node");
    cr_assert_eq(cl.map.owner[slot], owner_node, "and the reloaded map names the live owner");
    wf__reply_free(a.r);
    cluster_done(&cl);
}
