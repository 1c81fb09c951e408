/* client_impl.h - the wf_client and wf_run structs, shared by the client's own files only. */
#ifndef WF_CLIENT_IMPL_H
#define WF_CLIENT_IMPL_H

#include "wf_internal.h"

typedef struct wf__defer wf__defer;

/* A client: one synchronous connection plus, on demand, the deferred-start machinery. */
struct wf_client {
    wf__url url;  /* parsed settings; the password is wiped on free */
    wf__rc *c;    /* NULL after a failed reconnect; re-opened on the next call */
    char **known; /* workflow names seen in P:workflows (cache for the unknown check) */
    size_t nknown;
    wf__defer *defer; /* background thread or async connection for wf_defer_workflow */
    wf_defer_error_fn on_defer_error;
    void *on_defer_error_ud;
};

struct wf_run {
    wf_client *client;
    char id[WF__ID_MAX];
    char workflow[WF__NAME_MAX + 1];
    char *key; /* run hash */
};

/* Makes sure client->c is connected (reconnecting once after a failure). */
int wf__client_ensure(wf_client *client, wf_error *err);

/* Runs a command; on a connection failure reconnects once and retries it if `idempotent`.
 * Returns the reply (caller frees) or NULL with err filled (Redis error replies are errors). */
redisReply *wf__client_cmd(wf_client *client, int idempotent, wf_error *err, const char *fmt, ...);

/* Sends `n` commands (argv arrays, NULL-terminated each) as one pipeline and reads the `n`
 * replies into `out` (the caller frees each with freeReplyObject()). Read-only (or idempotent)
 * commands only: after a connection failure it reconnects and sends them all once more. Returns
 * WF_OK or an error; on error nothing is left in `out`. Error replies are kept as replies. */
int wf__client_pipeline(wf_client *client, size_t n, const char *const *const *cmds,
                        redisReply **out, wf_error *err);

/* Redis's clock (TIME) in ms since the epoch into `*now`. WF_OK or an error. */
int wf__client_time(wf_client *client, int64_t *now, wf_error *err);

/* The check behind WF_ERR_UNKNOWN_WORKFLOW, cached per client. */
int wf__client_check_workflow(wf_client *client, const char *name, wf_error *err);

/* Validates name and payload as wf_run_workflow would (shared with wf_defer_workflow). */
int wf__check_start(wf_client *client, const char *name, const void *payload, size_t len,
                    wf_error *err);

/* Checks run options as every start does: delay_ms >= 0 (WF_ERR_INVALID), a valid id suffix
 * (WF_ERR_BAD_ID), a wf_priority (WF_ERR_INVALID). NULL is fine. */
int wf__check_run_options(const wf_run_options *opt, wf_error *err);

/* The keys and arguments of one enqueue.lua call that starts run `id` (one run, the form every
 * start but the batch uses). Strings are owned by the struct or borrowed from the caller (`id`,
 * `name`, `payload`), which keeps them until the call is sent. */
typedef struct wf__enqueue_call {
    wf__wfkeys wk;
    char *own[3]; /* the run hash, P:{W}:limits, P:{W}:single */
    const char *keys[WF__NFIXED + 3];
    char delay[24];
    const char *args[8]; /* id, name, input, delay, parent, parent step, priority, generated */
    size_t lens[8];
    int nargs; /* 8 */
} wf__enqueue_call;

/* enqueue.lua's ARGV 8: how the run id came to be. A generated id lets the run be lean (one stream
 * entry, schema 2); a repeated call of a generated id looks for the run the lost call may have
 * started first, so a retry never starts a second run. */
#define WF__ID_CALLER    ""  /* the caller chose the id (wf_run_options.id) */
#define WF__ID_GENERATED "1" /* a ULID of core/runid.c, first call */
#define WF__ID_RETRY     "2" /* the same ULID, sent again after a lost answer */

/* Fills `call` for run `id` (options already checked; NULL: none). Returns WF_OK or
 * WF_ERR_NOMEM (nothing to free then). Release with wf__enqueue_call_free(). */
int wf__enqueue_call_init(wf__enqueue_call *call, const wf__url *url, const char *name,
                          const char *id, const void *payload, size_t len,
                          const wf_run_options *opt, const char *how);
void wf__enqueue_call_free(wf__enqueue_call *call);

/* Enqueue on a given sync connection (used by the defer thread too). Checks the options, fills
 * `id` (WF__ID_MAX bytes). `id` is in-out: pass it empty ("") on a first call; a retry after
 * WF_ERR_IO passes it back as filled, so the retry finds the run the lost call may have started
 * (enqueue.lua ARGV 8) rather than starting another. */
int wf__enqueue(wf__rc *c, const wf__url *url, const char *name, const void *payload, size_t len,
                const wf_run_options *opt, char *id, wf_error *err);

/* The run's fields as status.lua answers them (an array of field/value pairs, empty when there is
 * no such run; a lean queued run's too), once more after a reconnect. NULL on error (err set).
 * The caller frees the reply. */
redisReply *wf__run_read(wf_run *run, wf_error *err);

/* Reads enqueue.lua's answer {new, state[, other id]}: WF_OK when it has that shape, and when
 * singleton or debounce answered with another run, copies that run's id into `id` (WF__ID_MAX
 * bytes) and sets *redirected. WF_ERR_PROTOCOL otherwise. */
int wf__enqueue_reply(const redisReply *r, char *id, int *redirected, wf_error *err);

/* Frees an array of `n` records of `size` bytes and, in each, the strings (char * members) at the
 * byte offsets `strs` (offsetof): the one body of the public wf_X_free of every array of records
 * whose strings the array owns. NULL is a no-op. */
void wf__records_free(void *items, size_t n, size_t size, const size_t *strs, size_t nstrs);

void wf__defer_free(wf_client *client);
void wf__defer_report(wf_client *client, const char *workflow, const wf_error *err);

#endif
