/* lua_env.h - what the Lua script tests (test_lua_*.c) share: a real redis-server, the workflow's
 * keys, FCALL of the embedded scripts (the library `wf`, exactly what libwf loads) and small
 * assertions on Redis state. Keys come from wf__wfkeys_init / wf__key_run, as libwf builds them.
 * Waiting for Redis time to pass (lease expiry, timers) polls a condition with wf_test_wait.
 * The code is in lua_env.c; a suite that includes this header is linked with it
 * (tests/CMakeLists.txt), and gets TestSuite(lua) with its set-up and teardown.
 */
#ifndef WF_TEST_LUA_ENV_H
#define WF_TEST_LUA_ENV_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "wf_internal.h"

#define PREFIX    "wf"
#define WFN       "lt"
#define RETENTION "60000"

/* The test's server, its connection and the workflow WFN's fixed keys. */
extern wf_test_redis srv;
extern redisContext *c;
extern wf__wfkeys wk;

/* TestSuite(lua)'s .init and .fini (lua_env.c declares the suite): the server and the queue's
 * consumer group; teardown frees what keep() kept. */
void lua_env_setup(void);
void lua_env_teardown(void);

/* Keeps `s` (malloc'd) until teardown, so leak checking stays quiet; returns it. */
char *keep(char *s);

/* The run hash / step hash key of run `id`, and the id WFN:SUFFIX (kept). */
const char *run_key(const char *id);
const char *steps_key(const char *id);
const char *run_id(const char *suffix);

/* Calls `script` (FCALL wf_NAME) with the 14 fixed keys plus `nextra` keys, then arguments: the
 * variadic list holds the extra keys followed by the arguments, NULL-terminated. Caller frees the
 * reply. */
redisReply *eval(wf__script script, int nextra, ...);

/* Calls `script` (FCALL wf_NAME) with `nkeys` keys (the 14 fixed ones first when `fixed`) and
 * `nargs` arguments, binary-safe (`lens` NULL: C strings). Caller frees the reply. */
redisReply *eval_argv(wf__script script, int fixed, int nkeys, const char *const *keys, int nargs,
                      const char *const *args, const size_t *lens);

/* Assert on a reply and free it: an error starting with `prefix`; status OK; an integer (returned).
 */
void expect_error(redisReply *r, const char *prefix);
void expect_status_ok(redisReply *r);
long long expect_int(redisReply *r);

/* Redis time in ms: the scripts' clock. */
long long rnow(void);

/* A field of the run hash (kept copy) or NULL. */
const char *hget(const char *id, const char *field);

/* A zset member's score, or -1 when absent. */
long long zscore(const char *key, const char *member);

/* The queue stream's length, and how many of its entries are pending. */
long long xlen(void);
long long xpending(void);

/* The run hash says `state` and the run is in that state's index zset and in no other. */
void assert_state(const char *id, const char *state);

/* enqueue.lua for run `id` with `delay_ms`; asserts the state it answers. */
void enqueue(const char *id, const char *delay_ms, const char *want_state);

/* Reads the next undelivered entry as consumer "c1": fills entry id, decodes its record (run id
 * and attempt). Returns 0 when the stream had nothing new. */
int read_entry(char *entry, size_t entry_size, char *id, int *attempt);

/* Claims run `id` (its entry next in the stream) with a lease of `lease_ms`; returns its token
 * (kept). enqueue_and_claim enqueues it first. */
const char *claim(const char *id, const char *lease_ms);
const char *enqueue_and_claim(const char *id, const char *lease_ms);

/* Waits (5 s at most) until `member`'s score in zset `key` is not in the future by Redis time. */
void wait_due(const char *key, const char *member);

/* Calls stop.lua / fail.lua on run `id`; returns the reply (caller frees). */
redisReply *stop(const char *id);
redisReply *fail(const char *id, const char *token, const char *fatal, const char *max,
                 const char *backoff, const char *cap, const char *retry_after,
                 const char *final_state);

#endif
