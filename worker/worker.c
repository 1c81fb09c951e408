/* worker.c - the public worker API of include/wf/worker.h: options and their defaults, the
 * workflow definitions a worker runs, start-up against Redis (schema, consumer groups,
 * registration in P:workflows), and stop / free. The loop itself is in loop.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/thread.h>

#include "wf_worker_internal.h"
#include "cluster.h"

#define MAX_CONCURRENCY 4096

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_ok;

static void init_evthread(void)
{
    evthread_ok = evthread_use_pthreads() == 0;
}

void wf__workflow_options_defaults(wf_workflow_options *o)
{
    if (o->timeout_ms < 0) o->timeout_ms = 0;
    if (o->max_attempts <= 0) o->max_attempts = WF__DEFAULT_MAX_ATTEMPTS;
    if (o->backoff_ms <= 0) o->backoff_ms = WF__DEFAULT_BACKOFF_MS;
    if (o->max_backoff_ms <= 0) o->max_backoff_ms = WF__DEFAULT_MAX_BACKOFF_MS;
    if (o->max_backoff_ms < o->backoff_ms) o->max_backoff_ms = o->backoff_ms;
}

void wf__wdef_json(const wf__wdef *def, char *buf, size_t n)
{
    snprintf(buf, n, "{\"timeout_ms\":%lld,\"max_attempts\":%d,\"registered_at\":%lld}",
             (long long)def->opt.timeout_ms, def->opt.max_attempts, (long long)wf__now_ms());
}

static wf__wdef *find_def(const wf_worker *w, const char *name)
{
    for (int i = 0; i < w->ndefs; i++)
        if (strcmp(w->defs[i]->name, name) == 0) return w->defs[i];
    return NULL;
}

static void def_free(wf__wdef *d)
{
    if (!d) return;
    wf__wfkeys_free(&d->keys);
    for (int i = 0; i < WF__AUX_N; i++) free(d->aux[i]);
    free(d->name);
    free(d);
}

static int add_def(wf_worker *w, const char *name, wf_handler_fn handler,
                   const wf_workflow_options *options, wf_error *err)
{
    if (!name || !wf__name_valid(name))
        return wf_error_set(err, WF_ERR_BAD_NAME,
                            "invalid workflow name '%s': use 1-128 characters of [A-Za-z0-9._-], "
                            "starting with a letter or digit",
                            name ? name : "(null)");
    if (!handler) return wf_error_set(err, WF_ERR_INVALID, "workflow '%s' has no handler", name);
    if (find_def(w, name))
        return wf_error_set(err, WF_ERR_EXISTS, "workflow '%s' is already defined in this worker",
                            name);
    wf__wdef *d = calloc(1, sizeof *d);
    if (!d) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    d->name = strdup(name);
    d->handler = handler;
    if (options) d->opt = *options;
    wf__workflow_options_defaults(&d->opt);
    wf__wdef **grown = realloc(w->defs, sizeof *grown * (size_t)(w->ndefs + 1));
    static const char *const aux[WF__AUX_N] = {"limits", "flow",   "held",
                                               "rate",   "outbox", "parents"};
    int aux_ok = 1;
    for (int i = 0; i < WF__AUX_N; i++)
        if (!(d->aux[i] = wf__key_wf(w->url.prefix, name, aux[i]))) aux_ok = 0;
    if (!d->name || !grown || !aux_ok || wf__wfkeys_init(&d->keys, w->url.prefix, name) != WF_OK) {
        if (grown) w->defs = grown;
        def_free(d);
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    w->defs = grown;
    w->defs[w->ndefs++] = d;
    return WF_OK;
}

static char *make_consumer(void)
{
    char host[256] = "host";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    unsigned char rnd[4];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        unsigned v = (unsigned)wf__now_ms() ^ ((unsigned)getpid() << 16);
        memcpy(rnd, &v, sizeof rnd);
    }
    char *out = NULL;
    if (asprintf(&out, "%s:%ld:%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2],
                 rnd[3]) < 0)
        return NULL;
    return out;
}

static wf__rc *open_sync(const wf__url *url, wf_error *err)
{
    wf__rc *c = wf__rc_open(url, err);
    if (!c) return NULL;
    if (wf__schema_check(c, url->prefix, err) != WF_OK) {
        wf__rc_free(c);
        return NULL;
    }
    if (wf__functions_load(c, err) != WF_OK) {
        wf__rc_free(c);
        return NULL;
    }
    return c;
}

wf_worker *wf_worker_new(const wf_worker_options *options, wf_error *err)
{
    pthread_once(&evthread_once, init_evthread);
    if (!evthread_ok) {
        wf_error_set(err, WF_ERR_SYSTEM, "libevent thread support (evthread_use_pthreads) failed");
        return NULL;
    }
    wf_worker_options o = {0};
    if (options) o = *options;
    if (o.concurrency < 0 || o.batch < 0 || o.lease_ms < 0 || o.drain_ms < 0 ||
        o.max_reclaims < 0) {
        wf_error_set(err, WF_ERR_INVALID, "worker options must not be negative");
        return NULL;
    }
    if (o.concurrency == 0) o.concurrency = WF__DEFAULT_CONCURRENCY;
    if (o.concurrency > MAX_CONCURRENCY) {
        wf_error_set(err, WF_ERR_INVALID, "concurrency %d is over the limit of %d", o.concurrency,
                     MAX_CONCURRENCY);
        return NULL;
    }
    if (o.batch == 0 || o.batch > o.concurrency) o.batch = o.concurrency;
    if (o.lease_ms == 0) o.lease_ms = WF__DEFAULT_LEASE_MS;
    if (o.lease_ms < 300) {
        wf_error_set(err, WF_ERR_INVALID, "lease_ms %lld is too short: use at least 300",
                     (long long)o.lease_ms);
        return NULL;
    }
    if (o.max_reclaims == 0) o.max_reclaims = WF__DEFAULT_MAX_RECLAIMS;
    if (o.drain_ms == 0) o.drain_ms = WF__DEFAULT_DRAIN_MS;

    wf_worker *w = calloc(1, sizeof *w);
    if (!w) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    w->stop.pipe[0] = w->stop.pipe[1] = -1;
    if (wf__url_parse(o.redis_url, &w->url, err) != WF_OK) {
        free(w);
        return NULL;
    }
    w->consumer = o.consumer ? strdup(o.consumer) : make_consumer();
    if (!w->consumer) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    o.redis_url = NULL; /* the parsed URL is what counts; never keep a password around */
    o.consumer = w->consumer;
    w->opt = o;
    w->sync = open_sync(&w->url, err);
    if (!w->sync) goto fail;
    w->base = event_base_new();
    if (!w->base || pipe2(w->stop.pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        wf_error_set(err, WF_ERR_SYSTEM, "cannot create the worker's event loop: %s",
                     strerror(errno));
        goto fail;
    }
    if (wf__loop_init(w, err) != WF_OK) goto fail;
    w->ops = wf__ops_new(w, &o, err); /* copies the operations options it keeps (wf_ops.h) */
    if (!w->ops) goto fail;
    w->opt.http_listen = w->opt.http_token = w->opt.webhook_url = w->opt.webhook_secret = NULL;
    if (o.register_all >= 0) {
        int n = wf_workflow_count();
        for (int i = 0; i < n; i++) {
            const wf_workflow_def *d = wf_workflow_at(i);
            if (d && !find_def(w, d->name) &&
                add_def(w, d->name, d->handler, &d->options, err) != WF_OK)
                goto fail;
        }
    }
    return w;
fail:
    wf_worker_free(w);
    return NULL;
}

int wf_worker_define(wf_worker *worker, const char *name, wf_handler_fn handler,
                     const wf_workflow_options *options, wf_error *err)
{
    if (!worker) return wf_error_set(err, WF_ERR_INVALID, "worker is NULL");
    if (worker->stop.started)
        return wf_error_set(err, WF_ERR_STATE, "define workflows before wf_worker_run()");
    return add_def(worker, name, handler, options, err);
}

int wf_worker_load_dir(wf_worker *worker, const char *dir, wf_error *err)
{
    if (!worker) return wf_error_set(err, WF_ERR_INVALID, "worker is NULL");
    if (worker->stop.started)
        return wf_error_set(err, WF_ERR_STATE, "load workflows before wf_worker_run()");
    const wf_workflow_def **defs = NULL;
    int n = 0;
    int rc = wf__load_dir(dir, &defs, &n, err);
    for (int i = 0; rc >= 0 && i < n; i++) {
        wf__wdef *have = find_def(worker, defs[i]->name);
        if (have && have->handler == defs[i]->handler) continue; /* loaded before */
        if (have) {
            rc = wf_error_set(err, WF_ERR_EXISTS,
                              "workflow '%s' from %s is already defined differently in this worker",
                              defs[i]->name, dir);
            break;
        }
        int r = add_def(worker, defs[i]->name, defs[i]->handler, &defs[i]->options, err);
        if (r != WF_OK) rc = r;
    }
    free(defs);
    return rc < 0 ? rc : n;
}

/* The set-up of setup.c sent on the start-up connection: a refusal is the caller's error. */
typedef struct sync_setup {
    wf__rc *c;
    wf_error *err;
} sync_setup;

static int sync_send(void *ctx, int argc, const char **argv, const char *what)
{
    sync_setup *s = ctx;
    redisReply *r = wf__rc_argv(s->c, argc, argv, NULL);
    int rc = WF_OK;
    if (!r)
        rc = wf_error_set(s->err, WF_ERR_IO, "%s: Redis connection failed: %s", what,
                          wf__rc_errstr(s->c));
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        rc = wf__script_error(r->str, r->len, s->err);
    if (r) freeReplyObject(r);
    return rc;
}

/* setup.c's groups and registration, synchronously, so that start-up errors are returned. Every
 * group this worker reads exists before its workflows show as registered (the loop sends the
 * same again on each reconnect, claim.c): a client or test that waits for the registration finds
 * the worker's keys in place. */
static int startup(wf_worker *w, wf_error *err)
{
    if (!w->sync || wf__rc_broken(w->sync)) {
        wf__rc_free(w->sync);
        w->sync = open_sync(&w->url, err);
        if (!w->sync) return err ? err->code : WF_ERR_CONNECT;
    }
    sync_setup s = {w->sync, err};
    int rc = wf__setup_groups(w, sync_send, &s);
    if (rc == WF_OK) rc = wf__setup_register(w, sync_send, &s);
    if (rc == WF_ERR_NOMEM) wf_error_set(err, rc, "out of memory registering the workflows");
    wf__rc_free(w->sync);
    w->sync = NULL;
    return rc;
}

int wf_worker_run(wf_worker *worker, wf_error *err)
{
    if (!worker) return wf_error_set(err, WF_ERR_INVALID, "worker is NULL");
    wf_worker *w = worker;
    if (w->stop.started)
        return wf_error_set(err, WF_ERR_STATE, "wf_worker_run() was already called on this worker");
    w->stop.started = 1;
    if (w->ndefs == 0)
        return wf_error_set(err, WF_ERR_INVALID,
                            "no workflows to run: load modules with wf_worker_load_dir() "
                            "(wf-worker --workflows DIR) or call wf_worker_define()");
    /* hiredis writes with write(2): a dropped connection must not kill the process. Only a
     * default disposition is changed; a program's own SIGPIPE handler is left alone. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    int rc = startup(w, err);
    if (rc == WF_OK) rc = wf__ops_start(w, err); /* metrics server, webhooks */
    if (rc != WF_OK) return rc;
    char names[512] = "";
    size_t off = 0;
    for (int i = 0; i < w->ndefs && off < sizeof names; i++)
        off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? "," : "",
                                w->defs[i]->name);
    wf__log(WF__LOG_INFO,
            "worker %s started on %s: workflows=%s concurrency=%d batch=%d lease_ms=%lld",
            w->consumer, w->url.redacted, names, w->opt.concurrency, w->opt.batch,
            (long long)w->opt.lease_ms);
    rc = wf__loop_run(w, err);
    wf__ops_stop(w); /* leaves P:workers */
    wf__log(WF__LOG_INFO, "worker %s stopped", w->consumer);
    return rc;
}

void wf_worker_stop(wf_worker *worker)
{
    if (!worker) return;
    int saved = errno; /* async-signal-safe: a flag and a write(2) */
    worker->stop.requested = 1;
    if (worker->stop.pipe[1] >= 0) {
        ssize_t n = write(worker->stop.pipe[1], "s", 1);
        (void)n; /* a full pipe already holds a wake-up */
    }
    errno = saved;
}

const char *wf_worker_consumer(const wf_worker *worker)
{
    return worker ? worker->consumer : NULL;
}

void wf_worker_free(wf_worker *worker)
{
    if (!worker) return;
    wf_worker *w = worker;
    w->stop.closing = 1;
    /* Connections first (normally already closed by the drain): their pending callbacks still
     * see the pool and the jobs. */
    if (w->base) {
        wf__conn_free(&w->block);
        wf__conn_free(&w->cmd);
    }
    if (w->pool) {
        wf__pool_stop(w->pool, WF__FREE_GRACE_MS);
        for (wf__job *j = w->jobs.head, *next; j; j = next) {
            next = j->next;
            if (!(j->dispatched && !j->returned && wf__pool_orphan_if_running(w->pool, j)))
                wf__job_free(j); /* else its detached thread frees it when the handler returns */
        }
        w->jobs.head = w->jobs.tail = NULL;
        wf__pool_unref(w->pool);
        w->pool = NULL;
    }
    if (w->base) {
        wf__ops_free(w->ops); /* after the connections (their callbacks), before the base */
        w->ops = NULL;
        wf__greader_free(w->kids.reader); /* likewise: replies carry it */
        w->kids.reader = NULL;
        if (w->stop.ev) event_free(w->stop.ev);
        if (w->tick_ev) event_free(w->tick_ev);
        if (w->done_ev) event_free(w->done_ev);
        wf__cbatch_free(w);
        wf__sbatch_free(w);
        event_base_free(w->base);
    }
    if (w->stop.pipe[0] >= 0) close(w->stop.pipe[0]);
    if (w->stop.pipe[1] >= 0) close(w->stop.pipe[1]);
    for (int i = 0; i < w->ndefs; i++) def_free(w->defs[i]);
    free(w->defs);
    wf__rc_free(w->sync);
    wf__url_free(&w->url);
    free(w->consumer);
    free(w);
}
