/* http.c - a little HTTP server for health and metrics (libevent evhttp on the caller's event
 * base, so requests are answered on that loop, between its other events, and see its state):
 *
 *   GET /healthz   200 "ok" while the loop runs
 *   GET /readyz    200 "ready", or 503 with the reason the owner gives (not_ready)
 *   GET /metrics   the Prometheus text exposition (metrics_render.c)
 *
 * Two owners use it: a lone worker process (ops.c) and the supervisor of `wf-worker --processes
 * N` (supervisor.c), which serves the whole host on one port. The server knows neither: it calls
 * the functions it was handed. With a token every request needs "Authorization: Bearer TOKEN"
 * (compared in constant time), or gets 401.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "wf_worker_internal.h"

struct wf__http {
    struct evhttp *ev;
    struct evhttp_bound_socket *sock;
    char *token; /* NULL: none */
    wf__http_fns fns;
    void *arg;
};

static int token_ok(const wf__http *h, struct evhttp_request *req)
{
    if (!h->token) return 1;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0) return 0;
    const char *got = auth + 7;
    size_t n = strlen(h->token), m = strlen(got);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(h->token[i] ^ got[i < m ? i : 0]);
    return diff == 0;
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", "text/plain; charset=utf-8");
    evhttp_add_header(hd, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add_printf(b, "%s\n", text);
    evhttp_send_reply(req, code, reason, b);
    if (b) evbuffer_free(b);
}

static void handle(struct evhttp_request *req, void *arg)
{
    wf__http *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path) path = "";
    if (!token_ok(h, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"wf-worker\"");
        reply_text(req, 401, "Unauthorized", "a bearer token is required (Authorization header)");
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        reply_text(req, 200, "OK", "ok");
    } else if (strcmp(path, "/readyz") == 0) {
        char why[256];
        if (!h->fns.not_ready(h->arg, why, sizeof why)) {
            reply_text(req, 200, "OK", "ready");
        } else {
            char text[300];
            snprintf(text, sizeof text, "not ready: %s", why);
            reply_text(req, 503, "Service Unavailable", text);
        }
    } else if (strcmp(path, "/metrics") == 0) {
        struct evbuffer *b = evbuffer_new();
        if (!b) {
            evhttp_send_error(req, 500, "out of memory");
            return;
        }
        h->fns.metrics(h->arg, b);
        struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
        evhttp_add_header(hd, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_add_header(hd, "Cache-Control", "no-store");
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
    } else {
        reply_text(req, 404, "Not Found", "not found: try /healthz, /readyz or /metrics");
    }
}

wf__http *wf__http_new(struct event_base *base, const char *host, int port, const char *token,
                       const wf__http_fns *fns, void *arg, char *addr, size_t addrlen,
                       wf_error *err)
{
    wf__http *h = calloc(1, sizeof *h);
    if (!h || !(h->ev = evhttp_new(base)) || (token && !(h->token = strdup(token)))) {
        wf__http_free(h);
        wf_error_set(err, WF_ERR_NOMEM, "out of memory (evhttp)");
        return NULL;
    }
    h->fns = *fns;
    h->arg = arg;
    evhttp_set_allowed_methods(h->ev, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(h->ev, 10);
    evhttp_set_max_headers_size(h->ev, 16384);
    evhttp_set_max_body_size(h->ev, 4096);
    evhttp_set_gencb(h->ev, handle, h);
    h->sock = evhttp_bind_socket_with_handle(h->ev, host, (ev_uint16_t)port);
    if (!h->sock) {
        int saved = errno;
        wf__http_free(h);
        wf_error_set(err, WF_ERR_SYSTEM, "cannot listen on %s:%d for metrics: %s", host, port,
                     strerror(saved));
        return NULL;
    }
    int v6 = strchr(host, ':') != NULL;
    snprintf(addr, addrlen, "http://%s%s%s:%d/", v6 ? "[" : "", host, v6 ? "]" : "", port);
    wf__log(WF__LOG_INFO, "serving /healthz, /readyz and /metrics on %s%s", addr,
            token ? " (bearer token required)" : "");
    return h;
}

int wf__http_fd(const wf__http *h)
{
    return h && h->sock ? (int)evhttp_bound_socket_get_fd(h->sock) : -1;
}

void wf__http_free(wf__http *h)
{
    if (!h) return;
    if (h->ev) evhttp_free(h->ev);
    free(h->token);
    free(h);
}
