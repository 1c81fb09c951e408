/* batch.c - wf_run_workflow_batch: starting many runs with pipelined enqueue.lua calls.
 *
 * wf_run_workflow() pays one network round trip and one script call per run. Here each call of
 * enqueue.lua starts up to GROUP runs (its further-runs form: the script's fixed costs are paid
 * once per group), and the calls of CHUNK runs are appended to the client's synchronous hiredis
 * connection together and their replies read back in order, so a batch costs about n / CHUNK
 * round trips. Every run is idempotent per id: after a connection failure the runs of the chunk
 * that were not confirmed are re-sent with the same ids, so a lost reply never creates a second
 * run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "cluster.h"
#include "reply_action.h"

#define CHUNK 256 /* runs per round trip: bounds the client's buffers */
#define GROUP 64  /* runs per enqueue.lua call: bounds one script's time in Redis (~0.3 ms) */

/* One run of the chunk being sent. */
typedef struct item {
    char id[WF__ID_MAX];
    char *key;      /* the run's hash key (owned) */
    const void *in; /* input bytes (borrowed from the caller) */
    size_t in_len;  /* 0: no input */
    int confirmed;  /* Redis answered the enqueue script with {new, state[, other id]} */
    int redirected; /* singleton/debounce answered with another run: `id` is that run's now */
    int sent;       /* appended in the current pipeline */
} item;

/* What every call of one batch shares. */
typedef struct batch {
    wf_client *client;
    const char *name;
    wf__wfkeys keys;
    char *limits, *single; /* P:{W}:limits, P:{W}:single: singleton and debounce */
    char delay[32];
    const char *pri; /* enqueue.lua's priority argument: "high", "" (normal) or "low" */
    const char *how; /* its ARGV 8: WF__ID_GENERATED, WF__ID_RETRY once a call went unanswered */
    char *lane;      /* the runs' lane, for enqueue_lean.lua; NULL: every call is enqueue.lua's */
} batch;

/* Appends one FCALL wf_enqueue_lean (enqueue_lean.lua): the first call for runs with generated
 * ids, ready now, in the form with the fewest arguments. */
static int append_lean(batch *b, item *const *its, int k)
{
    int cap = 5 + 2 * k;
    const char **argv = malloc((size_t)cap * sizeof *argv);
    size_t *len = malloc((size_t)cap * sizeof *len);
    const wf__script_src *src = wf__script_get(WF__SCRIPT_ENQUEUE_LEAN);
    if (!argv || !len || !src) {
        free(argv);
        free(len);
        return -1;
    }
    int a = 0;
    argv[a] = "FCALL", len[a] = 5, a++;
    argv[a] = src->fn, len[a] = strlen(src->fn), a++;
    argv[a] = "2", len[a] = 1, a++;
    argv[a] = b->lane, len[a] = strlen(b->lane), a++;
    argv[a] = b->limits, len[a] = strlen(b->limits), a++;
    for (int i = 0; i < k; i++) {
        const char *suffix = strchr(its[i]->id, ':') + 1;
        argv[a] = suffix, len[a] = strlen(suffix), a++;
        argv[a] = its[i]->in_len ? (const char *)its[i]->in : "", len[a] = its[i]->in_len, a++;
    }
    int rc = wf__rc_append_argv(b->client->c, a, argv, len) == REDIS_OK ? 0 : -1;
    free(argv);
    free(len);
    return rc;
}

/* Appends one FCALL wf_enqueue (enqueue.lua) that starts the k runs `its[0..k)` (enqueue.lua's
 * further-runs form when k > 1). */
static int append_call(batch *b, item *const *its, int k)
{
    int cap = 3 + WF__NFIXED + 3 + 8 + 3 * k;
    const char **argv = malloc((size_t)cap * sizeof *argv);
    size_t *len = malloc((size_t)cap * sizeof *len);
    const wf__script_src *src = wf__script_get(WF__SCRIPT_ENQUEUE);
    if (!argv || !len || !src) {
        free(argv);
        free(len);
        return -1;
    }
    char numkeys[16];
    snprintf(numkeys, sizeof numkeys, "%d", WF__NFIXED + 3 + (k - 1));
    int a = 0;
#define ARG(p, n) (argv[a] = (p), len[a] = (n), a++)
#define STR(p)    ARG((p), strlen(p))
    STR("FCALL");
    STR(src->fn);
    STR(numkeys);
    for (int i = 0; i < WF__NFIXED; i++) STR(b->keys.k[i]);
    STR(its[0]->key);
    STR(b->limits);
    STR(b->single);
    for (int i = 1; i < k; i++) STR(its[i]->key);
    STR(its[0]->id);
    STR(b->name);
    ARG(its[0]->in_len ? (const char *)its[0]->in : "", its[0]->in_len);
    STR(b->delay);
    STR(""); /* no parent */
    STR("");
    STR(b->pri);
    STR(b->how);
    for (int i = 1; i < k; i++) {
        STR(its[i]->id);
        ARG(its[i]->in_len ? (const char *)its[i]->in : "", its[i]->in_len);
    }
#undef STR
#undef ARG
    int rc = wf__rc_append_argv(b->client->c, a, argv, len) == REDIS_OK ? 0 : -1;
    free(argv);
    free(len);
    return rc;
}

/* Confirms `it` when `r` is the enqueue script's normal answer (taking a redirect to another
 * run along); returns 1, or 0 for any other reply. */
static int confirm(item *it, const redisReply *r)
{
    if (wf__enqueue_reply(r, it->id, &it->redirected, NULL) != WF_OK) return 0;
    it->confirmed = 1;
    return 1;
}

/* Takes enqueue_lean.lua's answer `r` for the k runs `call`: the number written (confirmed), or
 * FULL: none written, each to be sent to enqueue.lua (sent = 2; singleton, debounce, a clock far
 * off). Returns 1 for either, 0 for any other reply. */
static int confirm_lean(item **call, int k, const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER && r->integer == k) {
        for (int i = 0; i < k; i++) call[i]->confirmed = 1;
        return 1;
    }
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "FULL") == 0) {
        for (int i = 0; i < k; i++) call[i]->sent = 2;
        return 1;
    }
    return 0;
}

/* Takes enqueue.lua's answer `r` for the k runs `call` (one reply, or an array of k). Returns 1
 * when every run was confirmed, else 0. */
static int confirm_call(item **call, int k, const redisReply *r)
{
    if (k == 1) return confirm(call[0], r);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)k) return 0;
    int ok = 1;
    for (int i = 0; i < k; i++) ok &= confirm(call[i], r->element[i]);
    return ok;
}

/* Re-runs one call through wf__script_call, which loads the library after "Function not found". */
static int call_one(batch *b, item *it, wf_error *err)
{
    const char *keys[WF__NFIXED + 3];
    for (int k = 0; k < WF__NFIXED; k++) keys[k] = b->keys.k[k];
    keys[WF__NFIXED] = it->key;
    keys[WF__NFIXED + 1] = b->limits;
    keys[WF__NFIXED + 2] = b->single;
    const char *args[8] = {
        it->id, b->name, it->in_len ? (const char *)it->in : "", b->delay, "", "", b->pri, b->how};
    size_t lens[8] = {strlen(it->id), strlen(b->name), it->in_len, strlen(b->delay), 0, 0,
                      strlen(b->pri), strlen(b->how)};
    redisReply *r =
        wf__script_call(b->client->c, WF__SCRIPT_ENQUEUE, WF__NFIXED + 3, keys, 8, args, lens, err);
    if (!r) return err ? err->code : WF_ERR_IO;
    int ok = confirm(it, r);
    freeReplyObject(r);
    if (!ok) return wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply from enqueue script");
    return WF_OK;
}

/* Sends every unconfirmed item of `its` in one pipeline of enqueue.lua calls of up to GROUP runs
 * each, and reads the replies. Returns WF_OK, WF_ERR_IO (connection failed: the caller may
 * reconnect and call again), or the first error Redis answered (the pipeline is still read to its
 * end so the connection stays usable). */
static int send_pipeline(batch *b, item *its, size_t m, wf_error *err)
{
    wf__rc *c = b->client->c;
    /* The unconfirmed items in order; call j starts the GROUP of them from order[j * GROUP]. */
    item *order[CHUNK];
    size_t u = 0;
    for (size_t i = 0; i < m; i++) {
        its[i].sent = 0;
        if (its[i].confirmed) continue;
        order[u++] = &its[i];
        its[i].sent = 1;
    }
    size_t n = (u + GROUP - 1) / GROUP;
#define CALL(j)  (&order[(j)*GROUP])
#define NCALL(j) ((int)((j) + 1 < n ? GROUP : u - (j)*GROUP))
    int lean = b->lane && strcmp(b->how, WF__ID_GENERATED) == 0;
    for (size_t j = 0; j < n; j++)
        if ((lean ? append_lean : append_call)(b, CALL(j), NCALL(j)) != 0)
            return wf_error_set(err, WF_ERR_IO, "cannot queue the enqueue call: %s",
                                wf__rc_errstr(c)[0] ? wf__rc_errstr(c) : "out of memory");
    int rc = WF_OK;
    for (size_t j = 0; j < n; j++) {
        redisReply *r = NULL;
        if (wf__rc_get_reply(c, (void **)&r) != REDIS_OK || !r)
            return wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s",
                                wf__rc_errstr(c)[0] ? wf__rc_errstr(c) : "no reply");
        int k = NCALL(j);
        item **call = CALL(j);
        int ok = lean ? confirm_lean(call, k, r) : confirm_call(call, k, r);
        if (!ok && wf__reply_action(r) == WF__ACT_LOAD) {
            for (int i = 0; i < k; i++) call[i]->sent = 2; /* redo after the load, one by one */
        } else if (!ok && rc == WF_OK) {
            rc = r->type == REDIS_REPLY_ERROR
                     ? wf__script_error(r->str, r->len, err)
                     : wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply from enqueue script");
        }
        freeReplyObject(r);
    }
    for (size_t i = 0; i < m && rc == WF_OK; i++)
        if (its[i].sent == 2) rc = call_one(b, &its[i], err);
#undef CALL
#undef NCALL
    return rc;
}

/* Makes a handle for a confirmed run (the same as wf_run_workflow's). NULL when out of memory. */
static wf_run *handle_new(wf_client *client, const char *name, item *it)
{
    wf_run *run = calloc(1, sizeof *run);
    if (!run) return NULL;
    run->client = client;
    snprintf(run->id, sizeof run->id, "%s", it->id);
    snprintf(run->workflow, sizeof run->workflow, "%s", name);
    if (it->redirected) { /* the run that stands for this key, not the one we named */
        free(it->key);
        it->key = wf__key_run(client->url.prefix, name, it->id);
    }
    run->key = it->key;
    it->key = NULL;
    if (!run->key) {
        free(run);
        return NULL;
    }
    return run;
}

/* Checks every payload before anything is sent. */
static int check_all(wf_client *client, const char *name, size_t n, const void *const *payloads,
                     const size_t *lens, wf_error *err)
{
    int rc = wf__check_start(client, name, NULL, 0, err);
    if (rc != WF_OK || !payloads || !lens) return rc;
    for (size_t i = 0; i < n; i++) {
        wf_error e = {0};
        rc = wf__check_start(client, name, payloads[i], lens[i], &e);
        if (rc != WF_OK) return wf_error_set(err, rc, "payload %zu of the batch: %s", i, e.message);
    }
    return WF_OK;
}

/* Sends one chunk, with one reconnect and resend after a connection failure. */
static int send_chunk(batch *b, item *its, size_t m, wf_error *err)
{
    int rc = WF_ERR_IO;
    for (int attempt = 0; attempt < 2 && rc == WF_ERR_IO; attempt++) {
        if (wf__client_ensure(b->client, err) != WF_OK) return err ? err->code : WF_ERR_CONNECT;
        rc = send_pipeline(b, its, m, err);
        if (rc == WF_ERR_IO && attempt == 0) {
            wf__rc_break(b->client->c);
            b->how = WF__ID_RETRY; /* a call may have run unanswered: find its runs first */
        }
    }
    return rc;
}

int wf_run_workflow_batch(wf_client *client, const char *name, size_t n,
                          const void *const *payloads, const size_t *lens,
                          const wf_run_options *options, wf_run **runs, wf_error *err)
{
    if (runs)
        for (size_t i = 0; i < n; i++) runs[i] = NULL;
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (options && options->id)
        return wf_error_set(err, WF_ERR_INVALID,
                            "options->id must be NULL for a batch (one id "
                            "cannot name several runs)");
    int rc = wf__check_run_options(options, err);
    if (rc != WF_OK) return rc;
    rc = check_all(client, name, n, payloads, lens, err);
    if (rc != WF_OK || n == 0) return rc;
    if (!(options && options->allow_unregistered) &&
        wf__client_check_workflow(client, name, err) != WF_OK)
        return err ? err->code : WF_ERR_UNKNOWN_WORKFLOW;

    batch b = {.client = client, .name = name, .how = WF__ID_GENERATED};
    b.limits = wf__key_wf(client->url.prefix, name, "limits");
    b.single = wf__key_wf(client->url.prefix, name, "single");
    if (!b.limits || !b.single || wf__wfkeys_init(&b.keys, client->url.prefix, name) != WF_OK) {
        free(b.limits);
        free(b.single);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    snprintf(b.delay, sizeof b.delay, "%lld", (long long)(options ? options->delay_ms : 0));
    int lane = wf__lane_of_priority(options ? options->priority : 0);
    b.pri = wf__lane_arg((wf__lane)lane);
    /* Ready now: the lean form first (enqueue_lean.lua). */
    if (!(options && options->delay_ms > 0))
        b.lane = strdup(b.keys.k[wf__lane_key((wf__lane)lane)]);
    item *its = calloc(n < CHUNK ? n : CHUNK, sizeof *its);
    if (!its) {
        wf__wfkeys_free(&b.keys);
        free(b.limits);
        free(b.single);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    for (size_t start = 0; start < n && rc == WF_OK; start += CHUNK) {
        size_t m = n - start < CHUNK ? n - start : CHUNK;
        for (size_t i = 0; i < m && rc == WF_OK; i++) {
            item *it = &its[i];
            memset(it, 0, sizeof *it);
            wf__runid_new(name, it->id);
            it->key = wf__key_run(client->url.prefix, name, it->id);
            if (!it->key) rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            if (payloads && lens && lens[start + i] > 0) {
                it->in = payloads[start + i];
                it->in_len = lens[start + i];
            }
        }
        if (rc == WF_OK) rc = send_chunk(&b, its, m, err);
        for (size_t i = 0; i < m; i++) {
            if (runs && its[i].confirmed && its[i].key) {
                runs[start + i] = handle_new(client, name, &its[i]);
                if (!runs[start + i] && rc == WF_OK)
                    rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory (the runs are queued)");
            }
            free(its[i].key);
            its[i].key = NULL;
        }
    }
    free(its);
    wf__wfkeys_free(&b.keys);
    free(b.limits);
    free(b.single);
    free(b.lane);
    return rc;
}
