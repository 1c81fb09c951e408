/* http.c - the worker's own little HTTP server (libevent evhttp on the worker's event base, so
 * requests are answered on the loop thread, between Redis replies, and see its state directly):
 *
 *   GET /healthz   200 "ok" while the loop runs
 *   GET /readyz    200 "ready" when both Redis connections are up and a script answered since
 *                  they (re)connected, else 503 with the reason (draining included)
 *   GET /metrics   the Prometheus text exposition (metrics.c)
 *
 * With a token every request needs "Authorization: Bearer TOKEN" (compared in constant time), or
 * gets 401. A worker process of `wf-worker --processes N` takes the first free port of
 * PORT..PORT+N-1, so N processes on one machine serve N consecutive ports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "wf_worker_internal.h"

static int token_ok(const wf__ops *ops, struct evhttp_request *req)
{
    if (!ops->http_token) return 1;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0) return 0;
    const char *got = auth + 7;
    size_t n = strlen(ops->http_token), m = strlen(got);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(ops->http_token[i] ^ got[i < m ? i : 0]);
    return diff == 0;
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add_printf(b, "%s\n", text);
    evhttp_send_reply(req, code, reason, b);
    if (b) evbuffer_free(b);
}

static void handle(struct evhttp_request *req, void *arg)
{
    wf__ops *ops = arg;
    wf_worker *w = ops->w;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path) path = "";
    if (!token_ok(ops, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"wf-worker\"");
        reply_text(req, 401, "Unauthorized", "a bearer token is required (Authorization header)");
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        reply_text(req, 200, "OK", "ok");
    } else if (strcmp(path, "/readyz") == 0) {
        const char *why = wf__ops_not_ready(w);
        if (!why) {
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
        wf__metrics_render(w, b);
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_add_header(h, "Cache-Control", "no-store");
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
    } else {
        reply_text(req, 404, "Not Found", "not found: try /healthz, /readyz or /metrics");
    }
}

int wf__http_start(wf__ops *ops, wf_error *err)
{
    wf_worker *w = ops->w;
    ops->http = evhttp_new(w->base);
    if (!ops->http) return wf_error_set(err, WF_ERR_NOMEM, "out of memory (evhttp)");
    evhttp_set_allowed_methods(ops->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(ops->http, 10);
    evhttp_set_max_headers_size(ops->http, 16384);
    evhttp_set_max_body_size(ops->http, 4096);
    evhttp_set_gencb(ops->http, handle, ops);
    int saved = 0, port = 0;
    for (int i = 0; i < ops->http_span; i++) {
        port = ops->http_port + i;
        if (port > 65535) break;
        if (evhttp_bind_socket_with_handle(ops->http, ops->http_host, (ev_uint16_t)port)) {
            int v6 = strchr(ops->http_host, ':') != NULL;
            snprintf(ops->http_addr, sizeof ops->http_addr, "http://%s%s%s:%d/", v6 ? "[" : "",
                     ops->http_host, v6 ? "]" : "", port);
            wf__log(WF__LOG_INFO, "serving /healthz, /readyz and /metrics on %s%s", ops->http_addr,
                    ops->http_token ? " (bearer token required)" : "");
            return WF_OK;
        }
        saved = errno;
    }
    evhttp_free(ops->http);
    ops->http = NULL;
    if (ops->http_span > 1)
        return wf_error_set(err, WF_ERR_SYSTEM,
                            "cannot listen on any port of %s:%d-%d for metrics: %s (each worker "
                            "process takes one; choose another --http base port)",
                            ops->http_host, ops->http_port, ops->http_port + ops->http_span - 1,
                            strerror(saved));
    return wf_error_set(err, WF_ERR_SYSTEM, "cannot listen on %s:%d for metrics: %s",
                        ops->http_host, ops->http_port, strerror(saved));
}

void wf__http_stop(wf__ops *ops)
{
    if (!ops || !ops->http) return;
    evhttp_free(ops->http);
    ops->http = NULL;
}
