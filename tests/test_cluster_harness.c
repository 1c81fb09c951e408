/* test_cluster_harness.c - the cluster test harness checked against the servers themselves: the
 * layout it starts (3 masters, 3 replicas, 16384 slots), its routing (a key's node answers it,
 * another node says MOVED, an ASK is followed), a failover that keeps an acknowledged write, and a
 * stop that leaves no redis-server of ours behind. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_harness.h"

static wf_test_cluster cl;

static void setup(void)
{
    cr_assert_eq(wf_test_cluster_start(&cl), 0, "the cluster did not start");
}

static void teardown(void)
{
    wf_test_cluster_stop(&cl);
}

TestSuite(cluster_harness, .init = setup, .fini = teardown, .timeout = 120);

/* ROLE of node i: 1 master, 2 replica (its master's port in *master_port), 0 otherwise. */
static int role(int i, long long *master_port)
{
    redisContext *ctx = wf_test_redis_connect(&cl.node[i]);
    cr_assert_not_null(ctx, "node %d unreachable", i);
    redisReply *r = wf_test_command(ctx, "ROLE");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3);
    int kind = strcmp(r->element[0]->str, "master") == 0  ? 1
               : strcmp(r->element[0]->str, "slave") == 0 ? 2
                                                          : 0;
    if (kind == 2 && master_port) *master_port = r->element[2]->integer;
    freeReplyObject(r);
    redisFree(ctx);
    return kind;
}

static int index_of_port(long long port)
{
    for (int i = 0; i < cl.n; i++)
        if (cl.node[i].port == port) return i;
    return -1;
}

static void expect_str(redisReply *r, const char *want)
{
    cr_assert_not_null(r);
    cr_assert(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS, "reply type %d: %s",
              r->type, r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_str_eq(r->str, want);
    freeReplyObject(r);
}

Test(cluster_harness, starts_three_masters_with_a_replica_each_over_all_slots)
{
    cr_assert_eq(cl.n, 6);
    int replicas_of[6] = {0}, masters = 0, replicas = 0, a_replica = -1;
    for (int i = 0; i < cl.n; i++) {
        long long mport = 0;
        int k = role(i, &mport);
        masters += k == 1;
        if (k != 2) continue;
        replicas++;
        a_replica = i;
        int m = index_of_port(mport);
        cr_assert(m >= 0 && role(m, NULL) == 1, "node %d replicates a non-master", i);
        replicas_of[m]++;
    }
    cr_assert_eq(masters, 3);
    cr_assert_eq(replicas, 3);
    for (int i = 0; i < cl.n; i++)
        if (role(i, NULL) == 1) cr_assert_eq(replicas_of[i], 1, "master %d", i);

    for (int i = 0; i < cl.n; i++) {
        redisContext *ctx = wf_test_redis_connect(&cl.node[i]);
        redisReply *r = wf_test_command(ctx, "CLUSTER SLOTS");
        long long covered = 0;
        for (size_t j = 0; j < r->elements; j++)
            covered += r->element[j]->element[1]->integer - r->element[j]->element[0]->integer + 1;
        cr_assert_eq(covered, 16384, "node %d sees %lld slots", i, covered);
        freeReplyObject(r);
        char *info = wf_test_cmd_str(ctx, "CLUSTER INFO");
        cr_assert(info && strstr(info, "cluster_state:ok"), "node %d: %s", i, info);
        free(info);
        redisFree(ctx);
    }

    /* The URL names the three masters. */
    cr_assert_eq(strncmp(cl.url, "redis+cluster://", 16), 0, "%s", cl.url);
    int seeds = 0;
    for (char *p = cl.url + 16; p && *p; seeds++) {
        int port = 0;
        cr_assert_eq(sscanf(p, "127.0.0.1:%d", &port), 1, "%s", cl.url);
        cr_assert_eq(role(index_of_port(port), NULL), 1, "seed %d is not a master", port);
        p = strchr(p, ',');
        if (p) p++;
    }
    cr_assert_eq(seeds, 3, "%s", cl.url);

    /* kill_master refuses a replica and leaves it running. */
    cr_assert_eq(wf_test_cluster_kill_master(&cl, a_replica, 1000), -1);
    cr_assert_gt(cl.node[a_replica].pid, 0);
    cr_assert_eq(role(a_replica, NULL), 2);
}

Test(cluster_harness, routes_keys_to_the_master_that_serves_them)
{
    expect_str(wf_test_cluster_cmd(&cl, "{a}x", "SET %s %s", "{a}x", "v1"), "OK");
    expect_str(wf_test_cluster_cmd(&cl, "{a}x", "GET %s", "{a}x"), "v1");
    int a = wf_test_cluster_master_of(&cl, "{a}x");
    cr_assert_geq(a, 0);
    cr_assert_eq(wf_test_cluster_master_of(&cl, "{a}y"), a);

    /* The node it names answers without a redirection; another master says MOVED there. */
    redisContext *ctx = wf_test_cluster_connect_for(&cl, "{a}x");
    cr_assert_not_null(ctx);
    expect_str(wf_test_command(ctx, "GET %s", "{a}x"), "v1");
    redisFree(ctx);
    int other = (a + 1) % cl.n;
    while (role(other, NULL) != 1) other = (other + 1) % cl.n;
    ctx = wf_test_redis_connect(&cl.node[other]);
    redisReply *r = wf_test_command(ctx, "GET %s", "{a}x");
    cr_assert(r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0);
    freeReplyObject(r);
    redisFree(ctx);

    /* Many keys spread over all three masters. */
    int hit[6] = {0}, distinct = 0;
    for (int i = 0; i < 64; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        int m = wf_test_cluster_master_of(&cl, key);
        cr_assert(m >= 0 && role(m, NULL) == 1, "%s -> %d", key, m);
        if (!hit[m]++) distinct++;
    }
    cr_assert_eq(distinct, 3);

    /* A slot being migrated: its owner answers ASK for a new key, and the harness follows it. */
    int src = wf_test_cluster_master_of(&cl, "{m}k");
    int dst = (src + 1) % cl.n;
    while (role(dst, NULL) != 1) dst = (dst + 1) % cl.n;
    redisContext *s = wf_test_redis_connect(&cl.node[src]);
    redisContext *d = wf_test_redis_connect(&cl.node[dst]);
    long long slot = wf_test_cmd_int(s, "CLUSTER KEYSLOT %s", "{m}k");
    char *sid = wf_test_cmd_str(s, "CLUSTER MYID"), *did = wf_test_cmd_str(d, "CLUSTER MYID");
    expect_str(wf_test_command(d, "CLUSTER SETSLOT %lld IMPORTING %s", slot, sid), "OK");
    expect_str(wf_test_command(s, "CLUSTER SETSLOT %lld MIGRATING %s", slot, did), "OK");
    expect_str(wf_test_cluster_cmd(&cl, "{m}k", "SET %s %s", "{m}k", "moving"), "OK");
    r = wf_test_command(s, "GET %s", "{m}k");
    cr_assert(r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ASK ", 4) == 0);
    freeReplyObject(r);
    expect_str(wf_test_command(d, "ASKING"), "OK");
    expect_str(wf_test_command(d, "GET %s", "{m}k"), "moving");
    free(sid);
    free(did);
    redisFree(s);
    redisFree(d);
}

Test(cluster_harness, failover_keeps_an_acknowledged_write_and_stop_reaps_every_node)
{
    redisContext *ctx = wf_test_cluster_connect_for(&cl, "{a}x");
    cr_assert_not_null(ctx);
    expect_str(wf_test_command(ctx, "SET %s %s", "{a}x", "before"), "OK");
    cr_assert_eq(wf_test_cmd_int(ctx, "WAIT 1 1000"), 1, "the replica did not acknowledge");
    redisFree(ctx);

    int old = wf_test_cluster_master_of(&cl, "{a}x");
    cr_assert_geq(old, 0);
    long long was_master_of[6] = {0};
    for (int i = 0; i < cl.n; i++) role(i, &was_master_of[i]);
    pid_t old_pid = cl.node[old].pid;

    int neu = wf_test_cluster_kill_master(&cl, old, 20000);
    cr_assert_geq(neu, 0);
    cr_assert_neq(neu, old);
    cr_assert_eq(was_master_of[neu], cl.node[old].port, "node %d was not a replica of %d", neu,
                 old);
    cr_assert_eq(cl.node[old].pid, 0);
    cr_assert(kill(old_pid, 0) == -1 && errno == ESRCH, "the killed master was not reaped");
    cr_assert_eq(wf_test_cluster_master_of(&cl, "{a}x"), neu);
    cr_assert_eq(role(neu, NULL), 1);
    expect_str(wf_test_cluster_cmd(&cl, "{a}x", "GET %s", "{a}x"), "before");
    expect_str(wf_test_cluster_cmd(&cl, "{a}y", "SET %s %s", "{a}y", "after"), "OK");

    pid_t pids[6];
    int ports[6];
    char dirs[6][256];
    for (int i = 0; i < cl.n; i++) {
        pids[i] = cl.node[i].pid;
        ports[i] = cl.node[i].port;
        memcpy(dirs[i], cl.node[i].dir, sizeof dirs[i]);
    }
    wf_test_cluster_stop(&cl);
    for (int i = 0; i < 6; i++) {
        if (pids[i] > 0)
            cr_assert(kill(pids[i], 0) == -1 && errno == ESRCH, "pid %d still there", pids[i]);
        cr_assert_not(wf_test_port_open(ports[i]), "port %d still open", ports[i]);
        if (!getenv("WF_TEST_KEEP")) cr_assert_neq(access(dirs[i], F_OK), 0, "%s", dirs[i]);
    }
    cr_assert_eq(cl.n, 0);
}

/* No servers: stop is harmless on a zeroed struct and on NULL. */
Test(cluster_harness_offline, stop_is_safe_on_zeroed_and_null)
{
    wf_test_cluster z;
    memset(&z, 0, sizeof z);
    wf_test_cluster_stop(&z);
    wf_test_cluster_stop(&z);
    wf_test_cluster_stop(NULL);
    cr_assert_eq(wf_test_cluster_master_of(&z, "k"), -1);
    cr_assert_null(wf_test_cluster_connect_for(&z, "k"));
    cr_assert_null(wf_test_cluster_cmd(&z, "k", "GET k"));
    cr_assert_eq(wf_test_cluster_kill_master(&z, 0, 100), -1);
}
