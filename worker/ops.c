/* ops.c - the operational side of a worker tied to its loop (see wf_ops.h): the options of
 * wf_worker_options that concern operations, start and stop, the hooks the loop calls, counting
 * the outcome of end operations, the readiness probe and the gauges refreshed on the tick.
 *
 * Readiness: both Redis connections usable, not draining, and a script answered since the cmd
 * connection last (re)connected. The probe is heartbeat.lua with no runs (it touches nothing),
 * sent at every (re)connect and every 5 s. The gauges are one TIME (its round trip is
 * wf_redis_rtt_seconds) then, in the one process that holds the gauge lease, per workflow XLEN
 * of each queue lane and the oldest member of state:queued, about every second.
 *
 * The gauge lease: a workflow's queue depth and oldest queued run describe Redis, not a process,
 * so one process of the whole deployment exports them (metrics_render.c), not every process
 * that serves the workflow, with a note to aggregate them with max. Every LEADER_MS each process
 * sends, per workflow, SET P:{W}:gauges CONSUMER NX PX LEASE GET: nil means it just took the
 * lease, its own name that it holds it (it then renews it with PEXPIRE), anything else that
 * another process does. Only the holder reads the workflow's queue. A holder that dies is
 * replaced within LEASE + LEADER_MS; in between the gauges are absent rather than doubled, and
 * a workflow that no live process serves has none (the WfNoLiveWorker alert relies on that).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "wf_worker_internal.h"

#define PROBE_MS  5000
#define GAUGES_MS 1000
#define LEADER_MS 2000
#define LEASE_MS  "6000"
#define TOKEN_MIN 16

/* Monotonic microseconds, for the Redis round trip (ms would round a local Redis to 0). */
static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Options ------------------------------------------------------------------------------- */

static int is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0) return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int wf__ops_parse_listen(const char *listen, const char *token, char **host, int *port,
                         wf_error *err)
{
    *host = NULL;
    *port = 0;
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || colon == listen)
        return wf_error_set(err, WF_ERR_INVALID,
                            "HTTP address '%s' is not HOST:PORT (e.g. 127.0.0.1:9100)",
                            listen ? listen : "(null)");
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1]:9100 */
        h++;
        hl -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535 || !colon[1])
        return wf_error_set(err, WF_ERR_INVALID, "HTTP address '%s': the port must be 1-65535",
                            listen);
    char *hc = strndup(h, hl);
    if (!hc) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    if (!is_loopback(hc) && (!token || strlen(token) < TOKEN_MIN)) {
        wf_error_set(err, WF_ERR_INVALID,
                     "refusing to serve metrics on %s, which is not a loopback address, without "
                     "a token: give --http-token (or $WF_HTTP_TOKEN) of at least %d characters, "
                     "or listen on 127.0.0.1",
                     hc, TOKEN_MIN);
        free(hc);
        return WF_ERR_INVALID;
    }
    *host = hc;
    *port = (int)p;
    return WF_OK;
}

wf__ops *wf__ops_new(wf_worker *w, const wf_worker_options *o, wf_error *err)
{
    wf__ops *ops = calloc(1, sizeof *ops);
    if (!ops) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ops->w = w;
    ops->rtt_s = -1;
    if (gethostname(ops->host, sizeof ops->host) != 0) snprintf(ops->host, sizeof ops->host, "?");
    ops->host[sizeof ops->host - 1] = '\0';
    int nomem = 0;
    if (o && o->http_listen) {
        if (wf__ops_parse_listen(o->http_listen, o->http_token, &ops->http_host, &ops->http_port,
                                 err) != WF_OK)
            goto fail;
        if (o->http_token && !(ops->http_token = strdup(o->http_token))) nomem = 1;
    }
    if (o && o->webhook_url) {
        if (!o->webhook_secret || !o->webhook_secret[0]) {
            wf_error_set(err, WF_ERR_INVALID,
                         "a webhook URL needs a secret to sign its notifications with "
                         "(webhook_secret, wf-worker --webhook-secret-file FILE)");
            goto fail;
        }
        if (strncmp(o->webhook_url, "http://", 7) != 0 &&
            strncmp(o->webhook_url, "https://", 8) != 0) {
            wf_error_set(err, WF_ERR_INVALID, "webhook URL '%s' is not http:// or https://",
                         o->webhook_url);
            goto fail;
        }
        ops->webhook_url = strdup(o->webhook_url);
        ops->webhook_secret = strdup(o->webhook_secret);
        ops->webhook_secret_len = strlen(o->webhook_secret);
        if (!ops->webhook_url || !ops->webhook_secret) nomem = 1;
        ops->webhook_max_attempts = o->webhook_max_attempts > 0 ? o->webhook_max_attempts : 10;
        ops->webhook_timeout_ms = o->webhook_timeout_ms > 0 ? o->webhook_timeout_ms : 10000;
        ops->webhook_visibility_ms =
            o->webhook_visibility_ms > 0 ? o->webhook_visibility_ms : 60000;
        if (ops->webhook_visibility_ms < 2 * ops->webhook_timeout_ms) {
            wf_error_set(err, WF_ERR_INVALID,
                         "webhook visibility timeout (%lld ms) must be at least twice the "
                         "request timeout (%lld ms), or other workers take over deliveries "
                         "still in flight",
                         (long long)ops->webhook_visibility_ms, (long long)ops->webhook_timeout_ms);
            goto fail;
        }
    }
    if (nomem) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    return ops;
fail:
    wf__ops_free(ops);
    return NULL;
}

char *wf__ops_read_secret(const char *path, wf_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        wf_error_set(err, WF_ERR_INVALID, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[4097];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == sizeof buf) {
        wf_error_set(err, WF_ERR_INVALID, "%s holds more than 4 KiB: not a secret key", path);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        wf_error_set(err, WF_ERR_INVALID, "%s holds a NUL byte: not a text secret", path);
        return NULL;
    }
    char *start = buf;
    while (*start && isspace((unsigned char)*start)) start++;
    size_t len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1])) len--;
    if (len == 0) {
        wf_error_set(err, WF_ERR_INVALID, "%s is empty: no secret", path);
        return NULL;
    }
    char *s = strndup(start, len);
    memset(buf, 0, sizeof buf);
    if (!s) wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    return s;
}

void wf__ops_free(wf__ops *ops)
{
    if (!ops) return;
    wf__hooks_free(ops->hooks);
    wf__http_free(ops->http);
    for (int i = 0; ops->gauges && i < ops->w->ndefs; i++) free(ops->gauges[i].lease_key);
    free(ops->gauges);
    free(ops->http_host);
    free(ops->http_token);
    free(ops->webhook_url);
    if (ops->webhook_secret) {
        memset(ops->webhook_secret, 0, ops->webhook_secret_len);
        free(ops->webhook_secret);
    }
    free(ops);
}

void wf__ops_set_served_by(wf_worker *w, const char *addr)
{
    if (!w || !w->ops) return;
    free(w->ops->http_host);
    w->ops->http_host = NULL;
    snprintf(w->ops->http_addr, sizeof w->ops->http_addr, "%s", addr ? addr : "");
}

static int worker_not_ready(void *arg, char *why, size_t len)
{
    const char *r = wf__ops_not_ready(arg);
    if (r) snprintf(why, len, "%s", r);
    return r != NULL;
}

static void worker_metrics(void *arg, struct evbuffer *out)
{
    wf__metrics_publish(arg); /* the gauges as of now, not of the last tick */
    wf__metrics_render(out, 0);
}

const char *wf__ops_notify_mode(const wf_worker *w)
{
    return w->ops && w->ops->webhook_url ? "1" : "auto";
}

int wf__ops_start(wf_worker *w, wf_error *err)
{
    wf__ops *ops = w->ops;
    ops->gauges = calloc((size_t)(w->ndefs > 0 ? w->ndefs : 1), sizeof *ops->gauges);
    if (!ops->gauges) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < w->ndefs; i++) {
        ops->gauges[i].depth = -1;
        for (int l = 0; l < WF__NLANES; l++) ops->gauges[i].lane_depth[l] = -1;
    }
    for (int i = 0; i < w->ndefs; i++) {
        wf__metrics_slot_claim(w->defs[i]->name);
        ops->gauges[i].lease_key = wf__key_wf(w->url.prefix, w->defs[i]->name, "gauges");
        if (!ops->gauges[i].lease_key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    if (ops->http_host) {
        wf__http_fns fns = {worker_not_ready, worker_metrics};
        ops->http = wf__http_new(w->base, ops->http_host, ops->http_port, ops->http_token, &fns, w,
                                 ops->http_addr, sizeof ops->http_addr, err);
        if (!ops->http) return err ? err->code : WF_ERR_SYSTEM;
    }
    if (ops->webhook_url) {
        ops->hooks = wf__hooks_new(ops, err);
        if (!ops->hooks) return err ? err->code : WF_ERR_SYSTEM;
    }
    return WF_OK;
}

void wf__ops_stop(wf_worker *w)
{
    if (!w->ops) return;
    wf__http_free(w->ops->http);
    w->ops->http = NULL;
    wf__presence_remove(w);
}

/* ---- Readiness ----------------------------------------------------------------------------- */

const char *wf__ops_not_ready(const wf_worker *w)
{
    if (w->stop.closing) return "the worker is shutting down";
    if (w->stop.draining) return "the worker is draining (stopping)";
    if (!wf__conn_usable(&w->cmd)) return "the command connection to Redis is not ready";
    if (!wf__conn_usable(&w->block)) return "the blocking connection to Redis is not ready";
    if (!w->ops->scripts_ok) return "no Lua script has answered yet since Redis (re)connected";
    return NULL;
}

static void probe_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    wf__ops *ops = privdata;
    redisReply *r = reply;
    ops->probe_busy = 0;
    if (!r) return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (ops->scripts_ok) wf__log(WF__LOG_ERROR, "readiness probe (heartbeat.lua): %s", r->str);
        ops->scripts_ok = 0;
        return;
    }
    ops->scripts_ok = 1;
}

/* heartbeat.lua with no runs: extends nothing, answers an empty list. */
static void probe(wf_worker *w)
{
    wf__ops *ops = w->ops;
    if (ops->probe_busy || w->ndefs == 0 || !wf__conn_usable(&w->cmd)) return;
    const char *keys[WF__NFIXED];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = w->defs[0]->keys.k[i];
    const char *args[1] = {"1000"};
    if (wf__conn_script(&w->cmd, probe_reply, ops, WF__SCRIPT_HEARTBEAT, WF__NFIXED, keys, 1, args,
                        NULL) == WF_OK)
        ops->probe_busy = 1;
}

/* ---- Gauges --------------------------------------------------------------------------------- */

typedef struct gauge_req {
    wf__ops *ops;
    int def;  /* index in w->defs; -1 for TIME */
    int kind; /* 0 TIME, 1 XLEN, 2 XRANGE - + COUNT 1 (the lane's first entry) */
    int lane; /* XLEN, XRANGE: of which lane (wf__lane) */
} gauge_req;

static void gauge_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    gauge_req *g = privdata;
    wf__ops *ops = g->ops;
    redisReply *r = reply;
    ops->gauges_inflight--;
    if (r && r->type != REDIS_REPLY_ERROR) {
        if (g->kind == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            ops->rtt_s = (double)(mono_us() - ops->rtt_sent_us) / 1e6;
            int64_t ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                         strtoll(r->element[1]->str, NULL, 10) / 1000;
            for (int i = 0; i < ops->w->ndefs; i++) ops->gauges[i].redis_now_ms = ms;
        } else if (g->kind == 1 && r->type == REDIS_REPLY_INTEGER) {
            /* The depth is the lanes added up, once each has answered. */
            wf__gauges *gg = &ops->gauges[g->def];
            gg->lane_depth[g->lane] = r->integer;
            long long sum = 0;
            for (int l = 0; l < WF__NLANES && sum >= 0; l++)
                sum = gg->lane_depth[l] < 0 ? -1 : sum + gg->lane_depth[l];
            if (sum >= 0) gg->depth = sum;
        } else if (g->kind == 2 && r->type == REDIS_REPLY_ARRAY) {
            /* Queued runs are lane entries (schema 2): the oldest is the earliest first entry,
             * once the last lane (low, sent last) has answered. */
            wf__gauges *gg = &ops->gauges[g->def];
            const redisReply *e = r->elements ? r->element[0] : NULL;
            gg->lane_first[g->lane] = e && e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
                                              e->element[0]->type == REDIS_REPLY_STRING
                                          ? strtoll(e->element[0]->str, NULL, 10)
                                          : 0;
            if (g->lane == WF__NLANES - 1) {
                int64_t since = 0;
                for (int l = 0; l < WF__NLANES; l++)
                    if (gg->lane_first[l] > 0 && (!since || gg->lane_first[l] < since))
                        since = gg->lane_first[l];
                gg->oldest_age_s =
                    since > 0 && gg->redis_now_ms > since ? (gg->redis_now_ms - since) / 1000.0 : 0;
            }
        }
    }
    free(g);
}

static void gauge_cmd(wf_worker *w, int def, int kind, int lane, const char *fmt, const char *key)
{
    gauge_req *g = malloc(sizeof *g);
    if (!g) return;
    g->ops = w->ops;
    g->def = def;
    g->kind = kind;
    g->lane = lane;
    int rc = key ? wf__conn_command(&w->cmd, gauge_reply, g, fmt, key)
                 : wf__conn_command(&w->cmd, gauge_reply, g, fmt);
    if (rc != REDIS_OK) {
        free(g);
        return;
    }
    w->ops->gauges_inflight++;
}

static void refresh_gauges(wf_worker *w)
{
    wf__ops *ops = w->ops;
    if (ops->gauges_inflight > 0 || !wf__conn_usable(&w->cmd)) return;
    ops->rtt_sent_us = mono_us();
    gauge_cmd(w, -1, 0, 0, "TIME", NULL);
    for (int i = 0; i < w->ndefs; i++) {
        if (!ops->gauges[i].leader) continue;
        for (int l = 0; l < WF__NLANES; l++)
            gauge_cmd(w, i, 1, l, "XLEN %s", w->defs[i]->keys.k[wf__lane_key((wf__lane)l)]);
        for (int l = 0; l < WF__NLANES; l++)
            gauge_cmd(w, i, 2, l, "XRANGE %s - + COUNT 1",
                      w->defs[i]->keys.k[wf__lane_key((wf__lane)l)]);
    }
}

/* ---- The gauge lease ------------------------------------------------------------------------ */

typedef struct lease_req {
    wf_worker *w;
    int def; /* index in w->defs */
} lease_req;

static void lease_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    lease_req *q = privdata;
    wf_worker *w = q->w;
    wf__gauges *g = &w->ops->gauges[q->def];
    redisReply *r = reply;
    g->lease_busy = 0;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        g->leader = 0;
    } else if (r->type == REDIS_REPLY_NIL) {
        g->leader = 1;
    } else {
        g->leader = r->type == REDIS_REPLY_STRING && strcmp(r->str, w->consumer) == 0;
        if (g->leader)
            wf__conn_command(&w->cmd, NULL, NULL, "PEXPIRE %s %s", g->lease_key, LEASE_MS);
    }
    if (!g->leader) g->depth = -1; /* stale figures must not be exported if it comes back */
    free(q);
}

static void lease_tick(wf_worker *w, int64_t now)
{
    wf__ops *ops = w->ops;
    if (now < ops->next_lease) return;
    ops->next_lease = now + LEADER_MS;
    for (int i = 0; i < w->ndefs; i++) {
        wf__gauges *g = &ops->gauges[i];
        if (g->lease_busy) continue;
        lease_req *q = malloc(sizeof *q);
        if (!q) return;
        q->w = w;
        q->def = i;
        if (wf__conn_command(&w->cmd, lease_reply, q, "SET %s %s NX PX %s GET", g->lease_key,
                             w->consumer, LEASE_MS) == REDIS_OK)
            g->lease_busy = 1;
        else
            free(q);
    }
}

/* ---- Hooks ---------------------------------------------------------------------------------- */

void wf__ops_on_ready(wf_worker *w)
{
    wf__ops *ops = w->ops;
    if (!ops || !ops->gauges) return;
    wf__sd_on_ready(w);
    ops->scripts_ok = 0;
    ops->next_presence = 0; /* register at once (Redis may have restarted empty) */
    ops->next_probe = wf__mono_ms() + PROBE_MS;
    probe(w);
    wf__presence_tick(w, wf__mono_ms());
    if (ops->hooks) wf__hooks_on_ready(ops->hooks);
}

void wf__ops_tick(wf_worker *w, int64_t now)
{
    wf__ops *ops = w->ops;
    wf__sd_tick(w, now); /* the watchdog pings while Redis is down too: it watches the loop */
    if (ops && ops->gauges) wf__metrics_publish(w); /* readiness too, connected or not */
    if (!ops || !ops->gauges || w->stop.closing || !wf__conn_usable(&w->cmd)) return;
    if (now >= ops->next_probe) {
        ops->next_probe = now + PROBE_MS;
        probe(w);
    }
    lease_tick(w, now);
    if (now >= ops->next_gauges) {
        ops->next_gauges = now + GAUGES_MS;
        refresh_gauges(w);
    }
    wf__presence_tick(w, now);
    if (ops->hooks) wf__hooks_tick(ops->hooks, now);
}

void wf__ops_on_end(wf_worker *w, wf__job *job, const redisReply *r)
{
    (void)w;
    if (!r) return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "STALE", 5) == 0) {
            if (job->op != WF__OP_RELEASE) wf__metrics_inc(job->workflow, WF__C_CANCELLED, 1);
            wf__metrics_attempt_end(job, WF__O_CANCELLED);
        }
        return;
    }
    if (job->op == WF__OP_RELEASE) {
        wf__metrics_attempt_end(job, WF__O_RELEASED);
        return;
    }
    wf__counter c = WF__C_COMPLETED;
    wf__outcome o = WF__O_COMPLETED;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        const char *state = r->element[0]->str;
        c = strcmp(state, "waiting") == 0      ? WF__C_RETRIED
            : strcmp(state, "terminated") == 0 ? WF__C_TERMINATED
                                               : WF__C_FAILED;
        o = c == WF__C_RETRIED      ? WF__O_RETRIED
            : c == WF__C_TERMINATED ? WF__O_TERMINATED
                                    : WF__O_FAILED;
    }
    wf__metrics_inc(job->workflow, c, 1);
    wf__metrics_run_ms(job->workflow, wf__mono_ms() - job->claimed_mono);
    wf__metrics_attempt_end(job, o);
}
