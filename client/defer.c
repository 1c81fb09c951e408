/* defer.c - deferWorkflow: start a run without making the caller wait for Redis.
 *
 * Two ways to send, chosen by whether the client was attached to the caller's libevent loop:
 * - attached: the shared async router (redis/aroute.h) sends the enqueue script on that loop,
 *   over one async hiredis connection, or for a cluster over one per master that the router
 *   makes; the reply comes back on the loop thread;
 * - not attached: a background thread with its own synchronous connection drains a queue.
 * Either way a run that cannot be queued is reported to the defer error callback (stderr if none),
 * never dropped in silence.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "client_impl.h"
#include "aroute.h"
#include "cluster.h"
#include "sentinel.h"

typedef struct job {
    struct job *next;
    char name[WF__NAME_MAX + 1];
    wf_run_options opt;              /* copied; opt.id points at `suffix` or is NULL */
    char suffix[WF__SUFFIX_MAX + 1]; /* the caller's id suffix */
    size_t len;
    char payload[]; /* flexible: the copied msgpack bytes */
} job;

struct wf__defer {
    wf_client *client;
    /* thread mode */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signals new work or closing */
    pthread_cond_t idle; /* signals that the queue drained */
    job *head, *tail;
    size_t busy; /* jobs taken but not yet finished */
    int closing;
    /* attached mode */
    struct event_base *base;
    wf__ar *ar;            /* the router every enqueue goes through */
    redisAsyncContext *ac; /* one server: the router's context (NULL while down) */
    wf__slotmap *map;      /* redis+cluster://: the router's slot map; it owns the contexts */
    size_t inflight;
};

void wf__defer_report(wf_client *client, const char *workflow, const wf_error *err)
{
    if (client->on_defer_error)
        client->on_defer_error(workflow, err, client->on_defer_error_ud);
    else
        fprintf(stderr, "wf: deferred run of '%s' could not be queued: %s (%s)\n", workflow,
                err->message, wf_errname(err->code));
}

void wf_client_on_defer_error(wf_client *client, wf_defer_error_fn fn, void *userdata)
{
    client->on_defer_error = fn;
    client->on_defer_error_ud = userdata;
}

static wf__defer *defer_get(wf_client *client)
{
    if (client->defer) return client->defer;
    wf__defer *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->client = client;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    pthread_cond_init(&d->idle, NULL);
    client->defer = d;
    return d;
}

/* ---- thread mode ---------------------------------------------------------------------------- */

/* Sends one job on the thread's own connection, reconnecting with backoff for up to the client's
 * timeout before giving up and reporting. */
static void send_job(wf__defer *d, wf__rc **c, const job *j)
{
    const wf__url *url = &d->client->url;
    wf_error err = {0};
    int64_t deadline = wf__mono_ms() + url->timeout_ms;
    int delay = 50;
    char id[WF__ID_MAX] = ""; /* kept across tries: a retry never starts a second run */
    for (;;) {
        int rc;
        if (!*c) *c = wf__rc_open(url, &err);
        if (*c && !j->opt.allow_unregistered) {
            char known_key[WF__NAME_MAX + 80];
            snprintf(known_key, sizeof known_key, "%s:workflows", url->prefix);
            redisReply *r = wf__rc_command(*c, "HEXISTS %s %s", known_key, j->name);
            if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
                freeReplyObject(r);
                wf_error_set(&err, WF_ERR_UNKNOWN_WORKFLOW,
                             "unknown workflow '%s': no worker has registered it", j->name);
                break;
            }
            if (r) freeReplyObject(r);
        }
        if (*c) {
            rc = wf__enqueue(*c, url, j->name, j->len ? j->payload : NULL, j->len, &j->opt, id,
                             &err);
            if (rc == WF_OK) return;
            if (rc != WF_ERR_IO) break;
            wf__rc_free(*c);
            *c = NULL;
        }
        if (wf__mono_ms() + delay > deadline) break;
        struct timespec ts = {0, (long)delay * 1000000L};
        nanosleep(&ts, NULL);
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
    wf__defer_report(d->client, j->name, &err);
}

static void *defer_main(void *arg)
{
    wf__defer *d = arg;
    wf__rc *c = NULL;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->head && !d->closing) pthread_cond_wait(&d->cond, &d->lock);
        job *j = d->head;
        if (!j) break; /* closing and drained */
        d->head = j->next;
        if (!d->head) d->tail = NULL;
        d->busy++;
        pthread_mutex_unlock(&d->lock);
        send_job(d, &c, j);
        free(j);
        pthread_mutex_lock(&d->lock);
        d->busy--;
        if (!d->head && !d->busy) pthread_cond_broadcast(&d->idle);
    }
    pthread_mutex_unlock(&d->lock);
    wf__rc_free(c);
    return NULL;
}

/* ---- attached mode -------------------------------------------------------------------------- */

typedef struct async_job {
    wf__defer *d;
    char name[WF__NAME_MAX + 1];
} async_job;

static void async_disconnected(const redisAsyncContext *ac, int status)
{
    wf__defer *d = ac->data;
    if (d && d->ac == ac) d->ac = NULL;
}

/* A connect that fails frees the context without calling async_disconnected (hiredis 0.14). */
static void async_connected(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) async_disconnected(ac, status);
}

static void async_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    async_job *aj = privdata;
    redisReply *r = reply;
    wf_error err = {0};
    if (!r)
        wf_error_set(&err, WF_ERR_IO, "Redis connection lost before the run was queued");
    else if (r->type == REDIS_REPLY_ERROR)
        wf__script_error(r->str, r->len, &err);
    else if (r->type != REDIS_REPLY_ARRAY)
        wf_error_set(&err, WF_ERR_PROTOCOL, "unexpected reply from the enqueue script");
    if (err.code) wf__defer_report(aj->d->client, aj->name, &err);
    aj->d->inflight--;
    free(aj);
}

static void auth_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *r = reply;
    wf__defer *d = privdata;
    if (r && r->type == REDIS_REPLY_ERROR) {
        wf_error err = {0};
        wf_error_set(&err, WF_ERR_REDIS, "Redis refused AUTH/SELECT: %s", r->str);
        wf__defer_report(d->client, "(connection)", &err);
    }
}

static redisAsyncContext *one_server(void *owner, int lane, int node)
{
    (void)lane;
    (void)node;
    const wf__defer *d = owner;
    return d->ac;
}

/* What the router tells the client: a lost node or a demoted master (READONLY) in a cluster
 * reloads the slot map meanwhile (a failover moved its slots to a promoted replica); the router
 * sends the run again, within the URL's timeout. One server: the run is reported lost, and the
 * next start reconnects. */
static void router_note(void *owner, const wf__ar_note *n)
{
    wf__defer *d = owner;
    if (d->map && (n->ev == WF__AR_LOST || n->ev == WF__AR_READONLY)) wf__ar_reload(d->ar);
}

static int open_router(wf__defer *d, wf_error *err)
{
    const wf__url *u = &d->client->url;
    if (u->seeds && !d->map) {
        /* The slot map now (a blocking exchange bounded by the URL's timeout, once). */
        d->map = calloc(1, sizeof *d->map);
        if (!d->map) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        int rc = wf__slotmap_fetch(u, NULL, d->map, err);
        if (rc != WF_OK) {
            free(d->map);
            d->map = NULL;
            return rc;
        }
    }
    wf__ar_cfg cfg = {
        .base = d->base,
        .map = d->map,
        .budget_ms = u->timeout_ms,
        .resend_lost = d->map != NULL,
        .owner = d,
        .ctx = d->map ? NULL : one_server,
        .note = router_note,
    };
    d->ar = wf__ar_new(&cfg, u);
    return d->ar ? WF_OK : wf_error_set(err, WF_ERR_NOMEM, "out of memory");
}

static int async_open(wf__defer *d, wf_error *err)
{
    const wf__url *u = &d->client->url;
    char host[256];
    int port = 0;
    int rc = d->ar ? WF_OK : open_router(d, err);
    if (rc != WF_OK) return rc;
    if (u->seeds) return WF_OK; /* node connections open on first use */
    if (!u->unix_path && wf__url_target(u, host, sizeof host, &port, err) != WF_OK)
        return err ? err->code : WF_ERR_CONNECT; /* a sentinel URL: no master found now */
    redisAsyncContext *ac =
        u->unix_path ? redisAsyncConnectUnix(u->unix_path) : redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        wf_error_set(err, WF_ERR_CONNECT, "cannot connect to Redis: %s",
                     ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        return err ? err->code : WF_ERR_CONNECT;
    }
    ac->data = d;
    if (redisLibeventAttach(ac, d->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return wf_error_set(err, WF_ERR_CONNECT, "cannot attach Redis to the event loop");
    }
    redisAsyncSetDisconnectCallback(ac, async_disconnected);
    redisAsyncSetConnectCallback(ac, async_connected);
    wf__redis_auth_async(ac, u, auth_reply, d);
    if (u->db) redisAsyncCommand(ac, auth_reply, d, "SELECT %d", u->db);
    d->ac = ac;
    return WF_OK;
}

int wf_client_attach(wf_client *client, struct event_base *base, wf_error *err)
{
    if (!client || !base) return wf_error_set(err, WF_ERR_INVALID, "client or base is NULL");
    wf__defer *d = defer_get(client);
    if (!d) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    if (d->base) return wf_error_set(err, WF_ERR_EXISTS, "client is already attached");
    d->base = base;
    return async_open(d, err);
}

/* enqueue.lua's ARGV 8 for a deferred run on the loop. The cluster router sends a command again
 * when its node was lost (resend_lost), and it may have run unanswered; a lean run cannot tell
 * (its repeat would be a second run), so there the run gets its hash at once, as a caller-chosen
 * id does, and a repeat finds it. */
static const char *defer_how(const wf__defer *d, const wf_run_options *opt)
{
    if ((opt && opt->id) || d->map) return WF__ID_CALLER;
    return WF__ID_GENERATED;
}

static int defer_async(wf__defer *d, const char *name, const void *payload, size_t len,
                       const wf_run_options *opt)
{
    wf_error err = {0};
    if ((!d->ar || (!d->map && !d->ac)) && async_open(d, &err) != WF_OK) {
        wf__defer_report(d->client, name, &err);
        return WF_OK; /* accepted, and its failure reported */
    }
    char id[WF__ID_MAX];
    if (opt && opt->id)
        snprintf(id, sizeof id, "%s:%s", name, opt->id);
    else
        wf__runid_new(name, id);
    wf__enqueue_call call;
    async_job *aj = calloc(1, sizeof *aj);
    if (!aj || wf__enqueue_call_init(&call, &d->client->url, name, id, payload, len, opt,
                                     defer_how(d, opt)) != WF_OK) {
        free(aj);
        return WF_ERR_NOMEM;
    }
    aj->d = d;
    snprintf(aj->name, sizeof aj->name, "%s", name);
    int rc = wf__ar_script(d->ar, async_reply, aj, WF__SCRIPT_ENQUEUE, WF__NFIXED + 3, call.keys,
                           call.nargs, call.args, call.lens);
    wf__enqueue_call_free(&call);
    if (rc != WF_OK) {
        free(aj);
        wf_error_set(&err, rc, "could not send the run to Redis");
        wf__defer_report(d->client, name, &err);
        return WF_OK;
    }
    d->inflight++;
    return WF_OK;
}

/* ---- API ------------------------------------------------------------------------------------ */

int wf_defer_workflow(wf_client *client, const char *name, const void *payload, size_t len)
{
    return wf_defer_workflow_ex(client, name, payload, len, NULL);
}

int wf_defer_workflow_ex(wf_client *client, const char *name, const void *payload, size_t len,
                         const wf_run_options *options)
{
    wf_error err = {0};
    int rc = wf__check_start(client, name, payload, len, &err);
    if (rc == WF_OK) rc = wf__check_run_options(options, &err);
    if (rc != WF_OK) return rc;
    wf__defer *d = defer_get(client);
    if (!d) return WF_ERR_NOMEM;
    if (d->base) {
        /* Attached: no registered-workflow check, since a synchronous lookup would block the
         * caller's loop; such a run waits queued (visible in `wf list`) until a worker for its
         * workflow starts. */
        return defer_async(d, name, payload, len, options);
    }
    job *j = malloc(sizeof *j + len);
    if (!j) return WF_ERR_NOMEM;
    j->next = NULL;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->opt = options ? *options : (wf_run_options){0};
    if (j->opt.id) {
        snprintf(j->suffix, sizeof j->suffix, "%s", j->opt.id);
        j->opt.id = j->suffix;
    }
    j->len = len;
    if (len) memcpy(j->payload, payload, len);
    pthread_mutex_lock(&d->lock);
    if (d->closing) {
        pthread_mutex_unlock(&d->lock);
        free(j);
        return WF_ERR_CLOSED;
    }
    if (!d->thread_started) {
        if (pthread_create(&d->thread, NULL, defer_main, d) != 0) {
            pthread_mutex_unlock(&d->lock);
            free(j);
            return WF_ERR_SYSTEM;
        }
        d->thread_started = 1;
    }
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    return WF_OK;
}

int wf_client_flush(wf_client *client, int timeout_ms, wf_error *err)
{
    wf__defer *d = client ? client->defer : NULL;
    if (!d || !d->thread_started) return WF_OK;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = WF_OK;
    pthread_mutex_lock(&d->lock);
    while ((d->head || d->busy) && rc == WF_OK)
        if (pthread_cond_timedwait(&d->idle, &d->lock, &until) == ETIMEDOUT)
            rc = wf_error_set(err, WF_ERR_TIMEOUT, "deferred runs still unsent after %d ms",
                              timeout_ms);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void wf__defer_free(wf_client *client)
{
    wf__defer *d = client->defer;
    if (!d) return;
    if (d->thread_started) {
        pthread_mutex_lock(&d->lock);
        d->closing = 1;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->lock);
        /* The thread sends what is queued (each job bounded by the client's timeout) and exits. */
        pthread_join(d->thread, NULL);
    }
    /* Pending replies fire with NULL and are reported as not queued: those waiting to be sent
     * again and those on the router's own node connections now, those on the one server's
     * connection as it is freed. */
    wf__ar_close(d->ar);
    if (d->ac) {
        d->ac->data = NULL;
        redisAsyncFree(d->ac);
    }
    wf__ar_free(d->ar);
    free(d->map);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    pthread_cond_destroy(&d->idle);
    free(d);
    client->defer = NULL;
}
