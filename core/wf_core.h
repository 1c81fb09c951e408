/* wf_core.h - the protocol both sides share: key names, run ids, the msgpack run and step
 * records, priority lanes, the embedded scripts and what their errors mean, clocks.
 *
 * core/ is the lowest layer (docs/architecture.md): it knows the Redis key schema but never talks
 * to Redis, so nothing here opens a connection or sends a command. redis/ (wf_redis.h) sends the
 * scripts; client/ and worker/ build on both.
 */
#ifndef WF_CORE_H
#define WF_CORE_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "wf/wf.h"
#include "wf_scripts.h"

/* Version of the Redis data layout, kept in key "P:schema". Bump it when a key's type or a
 * field's meaning changes incompatibly; docs/redis-layout.md says how. 2: lean queued runs (one
 * stream entry), no state:queued / state:running indexes; `wf migrate` (client/migrate.c) moves
 * data of schema 1 to it. */
#define WF__SCHEMA_VERSION 2

#define WF__NAME_MAX             128 /* workflow name: [A-Za-z0-9][A-Za-z0-9._-]{0,127} */
#define WF__SUFFIX_MAX           128 /* run id suffix: [A-Za-z0-9._-]{1,128} */
#define WF__ID_MAX               (WF__NAME_MAX + 1 + WF__SUFFIX_MAX + 1)
#define WF__DEFAULT_MAX_PAYLOAD  (1024 * 1024)
#define WF__DEFAULT_TIMEOUT_MS   5000
#define WF__DEFAULT_RETENTION_MS (7LL * 24 * 3600 * 1000)
#define WF__GROUP                "workers"

/* ---- Names, ids, keys ---------------------------------------------------------------------- */

/* 1 if `name` is a valid workflow name, else 0. */
int wf__name_valid(const char *name);

/* Writes a new run id "NAME:ULID" (26 Crockford base32 chars: 48-bit ms time, 80 random bits)
 * into `out` (at least WF__ID_MAX bytes). Time-ordered; thread-safe. */
void wf__runid_new(const char *workflow, char *out);

/* Checks `id` and copies its workflow name into `workflow` (WF__NAME_MAX + 1 bytes). Returns WF_OK
 * or WF_ERR_BAD_ID with a message saying what is wrong. Never lets a byte that could break a key
 * name ({ } * : whitespace, NUL, ...) through. */
int wf__runid_parse(const char *id, char *workflow, wf_error *err);

/* 1 if `s` is a valid caller-chosen id suffix ([A-Za-z0-9._-]{1,128}), else 0. */
int wf__suffix_valid(const char *s);

/* The workflow's fixed keys, in the order every Lua script expects (lua/lib.lua): the normal
 * queue, delayed, leases, dead, the eight state indexes, then the high and low queues. */
#define WF__NFIXED 14
typedef struct wf__wfkeys {
    char *k[WF__NFIXED]; /* owned */
} wf__wfkeys;
int wf__wfkeys_init(wf__wfkeys *keys, const char *prefix, const char *workflow);
void wf__wfkeys_free(wf__wfkeys *keys);
enum {
    WF__K_QUEUE = 0, /* the normal lane, P:{W}:queue */
    WF__K_DELAYED,
    WF__K_LEASES,
    WF__K_DEAD,
    WF__K_STATE0,
    WF__K_QUEUE_HIGH = WF__K_STATE0 + 8, /* P:{W}:queue:high */
    WF__K_QUEUE_LOW,                     /* P:{W}:queue:low */
};
/* Index into k[] of state `s`'s index zset (s is a wf_state other than UNKNOWN). */
#define WF__K_STATE(s) (WF__K_STATE0 + (int)(s)-1)

/* ---- Priority lanes (priority.c) ------------------------------------------------------------ */

/* A workflow's queue is one stream per priority, its lanes, numbered in the order a worker reads
 * them. A run's lane is its `pri` field ("high", "low"; absent: normal), which every script that
 * queues the run reads (lua/lib_queue.lua push_ready). */
typedef enum wf__lane { WF__LANE_HIGH = 0, WF__LANE_NORMAL, WF__LANE_LOW, WF__NLANES } wf__lane;

/* The lane of `priority` (a wf_priority), or -1 for a value that is not one. */
int wf__lane_of_priority(int priority);
/* Index into wf__wfkeys.k of lane `lane`'s stream. */
int wf__lane_key(wf__lane lane);
/* The lane's name as the run hash's `pri` field and the scripts' arguments spell it: "high",
 * "" (normal: no field) or "low". Static string. */
const char *wf__lane_arg(wf__lane lane);
/* Checks a wf_priority from options: WF_OK, or WF_ERR_INVALID with a message naming the value. */
int wf__priority_check(int priority, wf_error *err);

/* Key of a run's hash / steps hash ("P:{W}:run:ID", "P:{W}:run:ID:steps"). Returns a malloc'd
 * string the caller frees, or NULL when out of memory. `workflow` must be the id's workflow. */
char *wf__key_run(const char *prefix, const char *workflow, const char *id);
char *wf__key_steps(const char *prefix, const char *workflow, const char *id);
/* Another key of workflow W, "P:{W}:SUFFIX" (e.g. "outbox", "outbox:dead"). Malloc'd. */
char *wf__key_wf(const char *prefix, const char *workflow, const char *suffix);
/* Untagged keys: "P:workflows" (hash of registered workflows), "P:schema". */
char *wf__key_global(const char *prefix, const char *suffix);

/* Keys of an event: "P:{ev:NAME}:log" (stream) and "P:{ev:NAME}:waiters" (hash). Malloc'd. */
char *wf__key_event(const char *prefix, const char *event, const char *what);

/* 1 if `name` is a valid step name (1-128 printable ASCII bytes, no space), else 0. */
int wf__step_name_valid(const char *name);

/* ---- Step records (values of the steps hash) ------------------------------------------------ */

/* A step's record, a msgpack map {k, s, r, n, t0, t1, e, u, ev, key, since, c, cs, keep}. Lua
 * reads only `s`. */
typedef struct wf__steprec {
    char kind[8];       /* "run", "sleep", "event", "invoke" */
    char status[8];     /* "done", "failed", "waiting", "timeout" */
    const char *result; /* raw msgpack bytes of the result (borrowed from the decoded buffer) */
    size_t result_len;
    int attempts;
    int64_t t0, t1, until;
    const char *error; /* borrowed; NUL-terminated copy in err_buf */
    char err_buf[256];
    char event[WF__NAME_MAX + 1];
    char key[WF__NAME_MAX + 1];
    char since[48];
    char child[WF__ID_MAX]; /* invoke: the child run's id ("c") */
    char cstate[16];        /* invoke, done: how the child ended ("cs": completed, failed...) */
    int keep;               /* invoke: stopping the parent leaves the child running ("keep") */
} wf__steprec;

/* Packs `rec` into `out` (caller-owned, initialised). Returns WF_OK or WF_ERR_NOMEM. */
int wf__steprec_encode(const wf__steprec *rec, msgpack_sbuffer *out);

/* Decodes a record. `rec->result` points into `data`, which must outlive its use.
 * Returns WF_OK or WF_ERR_BAD_PAYLOAD. */
int wf__steprec_decode(const void *data, size_t len, wf__steprec *rec, wf_error *err);

/* ---- The msgpack run record (a stream entry's field "r") ----------------------------------- */

/* Decodes a stream entry's record {v:1, id:"...", a:attempt}. Copies the id into `id`
 * (WF__ID_MAX bytes) after validating it. Returns WF_OK or WF_ERR_BAD_PAYLOAD with the reason. */
int wf__record_decode(const void *data, size_t len, char *id, int *attempt, wf_error *err);

/* ---- Script errors (script_table.c) -------------------------------------------------------- */

/* Maps a script error reply's text to a wf_err and fills `err`. Returns the code. */
int wf__script_error(const char *text, size_t len, wf_error *err);

/* ---- Clocks (clock.c) ---------------------------------------------------------------------- */

/* Current time in ms (CLOCK_REALTIME) and a monotonic clock in ms. */
int64_t wf__now_ms(void);
int64_t wf__mono_ms(void);

#endif
