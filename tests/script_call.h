/* script_call.h - running one of libwf's Lua scripts on a test's plain hiredis connection (the
 * code is in cluster_mode.c, which owns the shared cluster's connection). */
#ifndef WF_TEST_SCRIPT_CALL_H
#define WF_TEST_SCRIPT_CALL_H

#include "cluster.h"

/* Cluster mode (harness.h): a routed connection to the shared cluster, opened on first use and
 * closed by wf_test_redis_stop(); NULL outside cluster mode. */
wf__rc *wf_test_cluster_rc(void);

/* wf__script_call on `c` (borrowed for the call), or in cluster mode on the shared cluster. */
redisReply *wf_test_script(redisContext *c, wf__script s, int nkeys, const char *const *keys,
                           int nargs, const char *const *args, const size_t *lens, wf_error *err);

/* wf__functions_load on `c` (the library `wf` loaded, or checked to be this build's), or in
 * cluster mode on every master of the shared cluster. */
int wf_test_functions_load(redisContext *c, wf_error *err);

/* wf__ensure_group on `c`, or in cluster mode on the shared cluster. */
int wf_test_ensure_group(redisContext *c, const char *queue, wf_error *err);

#endif
