/* script_call.h - running one of libwf's Lua scripts on a test's plain hiredis connection. */
#ifndef WF_TEST_SCRIPT_CALL_H
#define WF_TEST_SCRIPT_CALL_H

#include "cluster.h"

/* Cluster mode (harness.h): a routed connection to the shared cluster, opened on first use and
 * closed by wf_test_redis_stop(); NULL outside cluster mode. */
wf__rc *wf_test_cluster_rc(void);

/* wf__script_call on `c` (borrowed for the call), or in cluster mode on the shared cluster. */
static inline redisReply *wf_test_script(redisContext *c, wf__script s, int nkeys,
                                         const char *const *keys, int nargs,
                                         const char *const *args, const size_t *lens, wf_error *err)
{
    wf__rc *shared = wf_test_cluster_rc();
    if (shared) return wf__script_call(shared, s, nkeys, keys, nargs, args, lens, err);
    wf__rc *w = wf__rc_wrap(c);
    redisReply *r = w ? wf__script_call(w, s, nkeys, keys, nargs, args, lens, err) : NULL;
    wf__rc_free(w);
    return r;
}

/* wf__ensure_group on `c`, or in cluster mode on the shared cluster. */
static inline int wf_test_ensure_group(redisContext *c, const char *queue, wf_error *err)
{
    wf__rc *shared = wf_test_cluster_rc();
    if (shared) return wf__ensure_group(shared, queue, err);
    wf__rc *w = wf__rc_wrap(c);
    int code = w ? wf__ensure_group(w, queue, err) : WF_ERR_NOMEM;
    wf__rc_free(w);
    return code;
}

#endif
