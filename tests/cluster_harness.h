/* cluster_harness.h - test support: a real Redis Cluster of 3 masters and 3 replicas on loopback,
 * built from six redis-server processes (one temp dir each) and `redis-cli --cluster create`.
 * Key routing asks the servers (CLUSTER KEYSLOT, CLUSTER SLOTS) and never computes CRC16 itself,
 * so tests built on it check the library's own slot code independently. Waiting is polling for a
 * condition with a deadline, as in harness.h. */
#ifndef WF_TEST_CLUSTER_HARNESS_H
#define WF_TEST_CLUSTER_HARNESS_H

#include <hiredis/hiredis.h>

#include "harness.h"

#define WF_TEST_CLUSTER_NODES 6

/* A running cluster. Fields are read-only for tests. A node killed by wf_test_cluster_kill_master
 * keeps its port and dir (removed by wf_test_cluster_stop) but has pid 0. */
typedef struct wf_test_cluster {
    wf_test_redis node[WF_TEST_CLUSTER_NODES]; /* pid, port, dir, url of each redis-server */
    int n;                                     /* number of nodes: WF_TEST_CLUSTER_NODES */
    char url[512]; /* "redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3", the masters at
                      start in node[] order, as seeds */
} wf_test_cluster;

/* Starts six cluster-enabled redis-servers on free ports (each port and port+10000, its bus port,
 * free and <= 55535; cluster-node-timeout 1500 ms; no persistence), joins them with redis-cli
 * into 3 masters with one replica each, and waits (up to 30 s) until every node says
 * cluster_state:ok, sees all 16384 slots served by 3 masters with one replica each, and every
 * replica's link to its master is up. Returns 0, or -1 with a message on stderr after stopping
 * whatever it started (then *c is zeroed). */
int wf_test_cluster_start(wf_test_cluster *c);

/* Stops every node still running (SIGTERM, SIGKILL after 5 s; each reaped) and removes the nodes'
 * dirs (kept when WF_TEST_KEEP is set). Zeroes *c. Safe on a zeroed, half-started or already
 * stopped struct, and on NULL. */
void wf_test_cluster_stop(wf_test_cluster *c);

/* Index in c->node[] of the master serving `key`'s slot now, as the first live node that answers
 * sees it (CLUSTER KEYSLOT, then CLUSTER SLOTS). -1 when no node answers or no live node serves
 * the slot. */
int wf_test_cluster_master_of(const wf_test_cluster *c, const char *key);

/* SIGKILLs node `idx` (must be a live master with at least one replica) and reaps it, then waits
 * up to timeout_ms until every live node says cluster_state:ok and names the same former replica
 * as the master of the first slot `idx` served. Returns the new master's index in
 * c->node[], or -1 (message on stderr). */
int wf_test_cluster_kill_master(wf_test_cluster *c, int idx, int timeout_ms);

/* A new synchronous connection to the master serving `key`'s slot (caller frees with
 * redisFree()), or NULL. */
redisContext *wf_test_cluster_connect_for(const wf_test_cluster *c, const char *key);

/* Runs a hiredis-format command on the master serving `key`'s slot over a connection of its own,
 * following one MOVED or ASK redirection. Returns the reply (caller frees with
 * freeReplyObject(); may be an error reply), or NULL when no node could be reached. */
redisReply *wf_test_cluster_cmd(const wf_test_cluster *c, const char *key, const char *fmt, ...);

#endif
