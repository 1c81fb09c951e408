/* webhook.c - delivering run notifications from the durable outbox (wf-worker --webhook URL).
 *
 * The script that ends a run (complete.lua, fail.lua, stop.lua) appends {id, state, workflow, at}
 * to the stream P:{W}:outbox in the same atomic call (lua/lib_finish.lua outbox_add). Every worker
 * with a webhook reads the outboxes of its workflows through the consumer group "webhooks" on its
 * cmd connection and, for each entry (a "delivery" below):
 *
 *   LOAD   HMGET the run's output, error and finished_at (and, for an entry taken over from a
 *          dead worker, XPENDING for the attempts already made), build the JSON body;
 *   SEND   POST it with libcurl's multi interface on the loop (curl_ev.c), signed:
 *            X-WF-Timestamp: <unix seconds>
 *            X-WF-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 *            X-WF-Event: <outbox entry id>   (the same on every retry: deduplicate on it)
 *   END    on 2xx: outbox.lua 'ack' (XACK + XDEL); after webhook_max_attempts failures (network
 *          error, timeout, non-2xx): outbox.lua 'dead' (copied with the reason to
 *          P:{W}:outbox:dead, then XACK + XDEL); otherwise wait (500 ms doubling to 60 s) and
 *          SEND again. The attempts made are stored in the entry's delivery counter in the
 *          pending list (XCLAIM ... RETRYCOUNT), so a worker that takes it over continues the
 *          count.
 *
 * Nothing is acknowledged before a 2xx, so an entry whose worker dies stays in the group's
 * pending list; every worker runs XAUTOCLAIM with the visibility timeout and takes such entries
 * over, and refreshes the idle time of the entries it holds (XCLAIM ... JUSTID) every third of it
 * so that live deliveries are not taken. Delivery is therefore at least once: a worker killed
 * between a 2xx and the acknowledgement, or stalled past the visibility timeout, causes a repeat.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "wf_worker_internal.h"

#define GROUP       WF__WEBHOOK_GROUP
#define MAX_HELD    64  /* deliveries in memory at once */
#define MAX_SENDING 16  /* transfers at once */
#define READ_MS     200 /* outbox poll interval per workflow */
#define BACKOFF_MS  500
#define MAX_BACKOFF 60000

typedef enum phase {
    P_LOAD = 0, /* HMGET (and XPENDING) to send or in flight */
    P_READY,    /* body built; POST at next_at */
    P_SENDING,  /* POST in flight */
    P_END,      /* outbox.lua to send or in flight */
} phase;

typedef struct delivery delivery;

/* One workflow's outbox as this worker reads it. */
typedef struct hdef {
    wf__hooks *h;
    int i;        /* index in w->defs */
    char *outbox; /* P:{W}:outbox */
    char *dead;   /* P:{W}:outbox:dead */
    char *name;   /* borrowed from the definition */
} hdef;

struct wf__hooks {
    wf__ops *ops;
    wf_worker *w;
    wf__curl *curl;
    hdef *defs;
    int ndefs;
    delivery *head; /* held deliveries */
    int nheld, nsending;
    wf__greader *reader;  /* the group "webhooks" over every outbox */
    int64_t next_refresh; /* mono ms: XCLAIM JUSTID of what we hold */
    int closing;          /* being freed: callbacks only account */
};

struct delivery {
    delivery *prev, *next;
    hdef *d;
    char entry[48];                  /* outbox entry id */
    char run[WF__ID_MAX];            /* run id */
    char state[16];                  /* completed, failed, cancelled, terminated */
    char workflow[WF__NAME_MAX + 1]; /* the entry's workflow field */
    char at[24];                     /* ms, when the run ended */
    int takeover;                    /* from XAUTOCLAIM: the attempt count comes from XPENDING */
    int attempts;                    /* attempts made so far */
    phase ph;
    int busy;        /* Redis replies or a transfer outstanding */
    int sent;        /* the current phase's command was sent */
    int end_dead;    /* P_END: 'dead' rather than 'ack' */
    int64_t next_at; /* mono ms: P_READY sends at or after */
    char *output;    /* output as JSON text (malloc'd) or NULL */
    char *error;     /* the run's error (malloc'd) or NULL */
    long long finished_at;
    char *body;
    size_t body_len;
    char reason[400]; /* last failure */
};

static void pump(wf__hooks *h, delivery *x, int64_t now);

static int usable(wf__hooks *h)
{
    return !h->closing && !h->w->stop.closing && wf__conn_usable(&h->w->cmd);
}

static void drop(wf__hooks *h, delivery *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        h->head = x->next;
    if (x->next) x->next->prev = x->prev;
    h->nheld--;
    free(x->output);
    free(x->error);
    free(x->body);
    free(x);
}

static delivery *held(wf__hooks *h, const hdef *d, const char *entry)
{
    for (delivery *x = h->head; x; x = x->next)
        if (x->d == d && strcmp(x->entry, entry) == 0) return x;
    return NULL;
}

/* ---- LOAD: the run's output and error ------------------------------------------------------ */

static void build_body(delivery *x)
{
    json_t *out = NULL;
    if (x->output) out = json_loads(x->output, JSON_DECODE_ANY, NULL);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:I}", "runId", x->run, "workflow",
                  x->workflow[0] ? x->workflow : x->d->name, "state", x->state, "output",
                  out ? out : json_null(), "error", x->error ? json_string(x->error) : json_null(),
                  "finishedAt", (json_int_t)x->finished_at);
    x->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    x->body_len = x->body ? strlen(x->body) : 0;
}

/* One of x's Redis replies came back. 0 when there is nothing more to do with it: the hooks are
 * being freed, or Redis failed (logged, naming `what`) and the phase's command goes out again on
 * the next tick. */
static int reply_usable(delivery *x, const redisReply *r, const char *what)
{
    x->busy--;
    if (x->d->h->closing) return 0;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r) wf__log(WF__LOG_ERROR, "webhook: %s for run %s failed: %s", what, x->run, r->str);
        x->sent = 0;
        return 0;
    }
    return 1;
}

static void load_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    delivery *x = privdata;
    wf__hooks *h = x->d->h;
    redisReply *r = reply;
    if (!reply_usable(x, r, "reading the run")) return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) { /* HMGET output error finished_at */
        const redisReply *out = r->element[0], *err = r->element[1], *fin = r->element[2];
        if (out->type == REDIS_REPLY_STRING && out->len > 0 && !x->output)
            wf_msgpack_to_json(out->str, out->len, &x->output, NULL);
        if (err->type == REDIS_REPLY_STRING && !x->error) x->error = strndup(err->str, err->len);
        x->finished_at = fin->type == REDIS_REPLY_STRING ? strtoll(fin->str, NULL, 10)
                                                         : strtoll(x->at, NULL, 10);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
               r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 4 &&
               r->element[0]->element[3]->type == REDIS_REPLY_INTEGER) {
        /* XPENDING: [[id, consumer, idle, deliveries]]; XAUTOCLAIM added one to our count. */
        long long n = r->element[0]->element[3]->integer - 1;
        x->attempts = n > 0 ? (int)n : 0;
    }
    if (x->busy > 0) return;
    build_body(x);
    if (!x->body) {
        x->sent = 0;
        return;
    }
    x->ph = P_READY;
    x->sent = 0;
    x->next_at = 0;
    pump(h, x, wf__mono_ms());
}

static void send_load(wf__hooks *h, delivery *x)
{
    wf_worker *w = h->w;
    char *run = wf__key_run(w->url.prefix, x->d->name, x->run);
    if (!run) return;
    if (wf__conn_command(&w->cmd, load_reply, x, "HMGET %s output error finished_at", run) ==
        REDIS_OK)
        x->busy++;
    if (x->takeover && wf__conn_command(&w->cmd, load_reply, x, "XPENDING %s %s %s %s 1",
                                        x->d->outbox, GROUP, x->entry, x->entry) == REDIS_OK)
        x->busy++;
    x->sent = x->busy > 0;
    free(run);
}

/* ---- SEND ------------------------------------------------------------------------------------ */

/* Hex HMAC-SHA256 of "<ts>.<body>" with the secret into `hex` (65 bytes). */
static int sign(const wf__ops *ops, const char *ts, const char *body, size_t len, char *hex)
{
    size_t tl = strlen(ts);
    unsigned char *msg = malloc(tl + 1 + len);
    if (!msg) return -1;
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = HMAC(EVP_sha256(), ops->webhook_secret, (int)ops->webhook_secret_len, msg,
                  tl + 1 + len, md, &mdlen) != NULL;
    free(msg);
    if (!ok) return -1;
    for (unsigned i = 0; i < mdlen; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static void post_done(void *arg, int code, long status, const char *error)
{
    delivery *x = arg;
    wf__hooks *h = x->d->h;
    x->busy--;
    h->nsending--;
    if (h->closing) return;
    x->attempts++;
    if (code == 0 && status >= 200 && status <= 299) {
        wf__metrics_inc(x->d->name, WF__C_HOOK_DELIVERED, 1);
        wf__log(WF__LOG_DEBUG,
                "webhook: notification of run %s (%s) delivered (HTTP %ld, attempt %d)", x->run,
                x->state, status, x->attempts);
        x->ph = P_END;
        x->end_dead = 0;
    } else {
        snprintf(x->reason, sizeof x->reason, "%s", error ? error : "unknown error");
        if (x->attempts >= h->ops->webhook_max_attempts) {
            wf__metrics_inc(x->d->name, WF__C_HOOK_DEAD, 1);
            wf__log(WF__LOG_ERROR,
                    "webhook: giving up on the notification of run %s (%s) after %d attempts (%s); "
                    "kept in %s",
                    x->run, x->state, x->attempts, x->reason, x->d->dead);
            x->ph = P_END;
            x->end_dead = 1;
        } else {
            int64_t delay = BACKOFF_MS;
            for (int i = 1; i < x->attempts && delay < MAX_BACKOFF; i++) delay *= 2;
            if (delay > MAX_BACKOFF) delay = MAX_BACKOFF;
            wf__metrics_inc(x->d->name, WF__C_HOOK_RETRIED, 1);
            wf__log(
                WF__LOG_WARN,
                "webhook: notification of run %s (%s) failed (attempt %d of %d): %s; retrying in "
                "%lld ms",
                x->run, x->state, x->attempts, h->ops->webhook_max_attempts, x->reason,
                (long long)delay);
            x->ph = P_READY;
            x->next_at = wf__mono_ms() + delay;
            /* Keep the count durable (a worker taking the entry over continues it) and reset
             * the entry's idle time. */
            if (usable(h)) {
                char n[16];
                snprintf(n, sizeof n, "%d", x->attempts);
                wf__conn_command(&h->w->cmd, NULL, NULL,
                                 "XCLAIM %s %s %s 0 %s RETRYCOUNT %s JUSTID", x->d->outbox, GROUP,
                                 h->w->consumer, x->entry, n);
            }
        }
    }
    x->sent = 0;
    pump(h, x, wf__mono_ms());
}

static void send_post(wf__hooks *h, delivery *x)
{
    char ts[24], hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    if (sign(h->ops, ts, x->body, x->body_len, hex) != 0) return;
    char h_ts[64], h_sig[160], h_ev[96], h_att[48];
    snprintf(h_ts, sizeof h_ts, "X-WF-Timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "X-WF-Signature: sha256=%s", hex);
    snprintf(h_ev, sizeof h_ev, "X-WF-Event: %s", x->entry);
    snprintf(h_att, sizeof h_att, "X-WF-Attempt: %d", x->attempts + 1);
    const char *headers[] = {"Content-Type: application/json", h_ts, h_sig, h_ev, h_att, "Expect:"};
    if (wf__curl_post(h->curl, h->ops->webhook_url, headers, 6, x->body, x->body_len,
                      h->ops->webhook_timeout_ms, post_done, x) != WF_OK)
        return; /* tried again on the next tick */
    x->ph = P_SENDING;
    x->sent = 1;
    x->busy++;
    h->nsending++;
}

/* ---- END: ack or dead --------------------------------------------------------------------- */

static void end_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    delivery *x = privdata;
    wf__hooks *h = x->d->h;
    redisReply *r = reply;
    if (!reply_usable(x, r, "outbox.lua")) return;
    drop(h, x);
}

static void send_end(wf__hooks *h, delivery *x)
{
    const char *keys[2] = {x->d->outbox, x->d->dead};
    char attempts[16];
    snprintf(attempts, sizeof attempts, "%d", x->attempts);
    const char *args[12] = {x->entry,   x->end_dead ? "dead" : "ack",
                            x->reason,  attempts,
                            "id",       x->run,
                            "state",    x->state,
                            "workflow", x->workflow,
                            "at",       x->at};
    if (wf__conn_script(&h->w->cmd, end_reply, x, WF__SCRIPT_OUTBOX, 2, keys, x->end_dead ? 12 : 2,
                        args, NULL) == WF_OK) {
        x->busy++;
        x->sent = 1;
    }
}

/* Moves one delivery on as far as it can go now. */
static void pump(wf__hooks *h, delivery *x, int64_t now)
{
    if (x->busy || x->sent || h->closing) return;
    switch (x->ph) {
    case P_LOAD:
        if (usable(h)) send_load(h, x);
        break;
    case P_READY:
        if (now >= x->next_at && h->nsending < MAX_SENDING) send_post(h, x);
        break;
    case P_SENDING:
        break;
    case P_END:
        if (usable(h)) send_end(h, x);
        break;
    }
}

/* ---- Reading the outbox ------------------------------------------------------------------- */

static void field(const redisReply *f, const char *name, char *out, size_t n)
{
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING) {
            snprintf(out, n, "%.*s", (int)f->element[i + 1]->len, f->element[i + 1]->str);
            return;
        }
}

/* Takes the entries of an XREADGROUP / XAUTOCLAIM reply ([[id, [field, value...]]...]). */
static void take(hdef *d, const redisReply *entries, int takeover)
{
    wf__hooks *h = d->h;
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= 48)
            continue;
        if (held(h, d, e->element[0]->str)) continue;
        delivery *x = calloc(1, sizeof *x);
        if (!x) return; /* the entry stays pending: taken over after the visibility timeout */
        x->d = d;
        x->takeover = takeover;
        snprintf(x->entry, sizeof x->entry, "%s", e->element[0]->str);
        field(e->element[1], "id", x->run, sizeof x->run);
        field(e->element[1], "state", x->state, sizeof x->state);
        field(e->element[1], "workflow", x->workflow, sizeof x->workflow);
        field(e->element[1], "at", x->at, sizeof x->at);
        x->next = h->head;
        if (h->head) h->head->prev = x;
        h->head = x;
        h->nheld++;
        char wfname[WF__NAME_MAX + 1];
        if (!x->run[0] || wf__runid_parse(x->run, wfname, NULL) != WF_OK ||
            strcmp(wfname, d->name) != 0) {
            snprintf(x->reason, sizeof x->reason, "not a run of workflow %s: '%s'", d->name,
                     x->run);
            wf__log(WF__LOG_WARN, "webhook: outbox entry %s of %s is malformed (%s): dead",
                    x->entry, d->outbox, x->reason);
            snprintf(x->run, sizeof x->run, "?");
            x->ph = P_END;
            x->end_dead = 1;
        }
        pump(h, x, wf__mono_ms());
    }
}

/* The reader's batch of entries of outbox `i` (group_reader.c). */
static void on_entries(void *ud, int i, const redisReply *entries, int takeover)
{
    wf__hooks *h = ud;
    if (h->closing) return;
    hdef *d = &h->defs[i];
    if (takeover)
        wf__log(WF__LOG_INFO,
                "webhook: taking over %zu notification%s of %s left by a worker "
                "that stopped delivering them",
                entries->elements, entries->elements == 1 ? "" : "s", d->name);
    take(d, entries, takeover);
}

/* ---- Life ------------------------------------------------------------------------------------ */

wf__hooks *wf__hooks_new(wf__ops *ops, wf_error *err)
{
    wf_worker *w = ops->w;
    wf__hooks *h = calloc(1, sizeof *h);
    if (!h) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    h->ops = ops;
    h->w = w;
    h->curl = wf__curl_new(w->base, err);
    h->defs = calloc((size_t)(w->ndefs ? w->ndefs : 1), sizeof *h->defs);
    if (!h->curl || !h->defs) goto fail;
    h->ndefs = w->ndefs;
    for (int i = 0; i < w->ndefs; i++) {
        hdef *d = &h->defs[i];
        d->h = h;
        d->i = i;
        d->name = w->defs[i]->name;
        d->outbox = wf__key_wf(w->url.prefix, d->name, "outbox");
        d->dead = wf__key_wf(w->url.prefix, d->name, "outbox:dead");
        if (!d->outbox || !d->dead) goto fail;
    }
    const char **outboxes = calloc(h->ndefs > 0 ? (size_t)h->ndefs : 1, sizeof *outboxes);
    for (int i = 0; outboxes && i < h->ndefs; i++) outboxes[i] = h->defs[i].outbox;
    if (outboxes)
        h->reader = wf__greader_new(w, GROUP, "the webhook outboxes (P:{W}:outbox)", outboxes,
                                    h->ndefs, READ_MS, on_entries, h);
    free(outboxes);
    if (!h->reader) goto fail;
    wf__log(WF__LOG_INFO,
            "webhook: notifying %s of runs that end (max %d attempts, timeout %lld "
            "ms, takeover after %lld ms)",
            ops->webhook_url, ops->webhook_max_attempts, (long long)ops->webhook_timeout_ms,
            (long long)ops->webhook_visibility_ms);
    return h;
fail:
    if (err && !err->code) wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    wf__hooks_free(h);
    return NULL;
}

void wf__hooks_nudge(wf__hooks *h)
{
    if (h) wf__greader_nudge(h->reader);
}

void wf__hooks_free(wf__hooks *h)
{
    if (!h) return;
    h->closing = 1;
    wf__curl_free(h->curl); /* aborts transfers: post_done only accounts */
    while (h->head) drop(h, h->head);
    wf__greader_free(h->reader);
    for (int i = 0; h->defs && i < h->ndefs; i++) {
        free(h->defs[i].outbox);
        free(h->defs[i].dead);
    }
    free(h->defs);
    free(h);
}

void wf__hooks_on_ready(wf__hooks *h)
{
    /* The outbox groups are set-up (setup.c), made before the worker registers. */
    for (delivery *x = h->head; x; x = x->next)
        if (x->ph != P_SENDING && !x->busy) x->sent = 0; /* resend what the drop lost */
}

void wf__hooks_tick(wf__hooks *h, int64_t now)
{
    wf_worker *w = h->w;
    for (delivery *x = h->head, *next; x; x = next) {
        next = x->next; /* pump may drop x */
        pump(h, x, now);
    }
    if (!usable(h)) return;
    int64_t vis = h->ops->webhook_visibility_ms;
    if (now >= h->next_refresh) {
        h->next_refresh = now + vis / 3;
        for (int i = 0; i < h->ndefs; i++) {
            hdef *d = &h->defs[i];
            int n = 0;
            for (delivery *x = h->head; x; x = x->next) n += x->d == d;
            if (n == 0) continue;
            const char **argv = calloc((size_t)n + 7, sizeof *argv);
            if (!argv) continue;
            int a = 0;
            argv[a++] = "XCLAIM";
            argv[a++] = d->outbox;
            argv[a++] = GROUP;
            argv[a++] = w->consumer;
            argv[a++] = "0";
            for (delivery *x = h->head; x; x = x->next)
                if (x->d == d) argv[a++] = x->entry;
            argv[a++] = "JUSTID";
            wf__conn_argv(&w->cmd, NULL, NULL, a, argv, NULL);
            free(argv);
        }
    }
    if (w->stop.draining) return;   /* finish what is held; take nothing new */
    int room = MAX_HELD - h->nheld; /* a soft limit: COUNT applies per outbox */
    if (room > 0 && h->ndefs > 0)
        wf__greader_read(h->reader, now, room / h->ndefs > 0 ? room / h->ndefs : 1);
    room = MAX_HELD - h->nheld;
    if (room > 16) room = 16;
    wf__greader_takeover(h->reader, now, vis, room, vis / 4 > 250 ? vis / 4 : 250);
}
