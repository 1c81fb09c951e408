/* drafts-service.c - the original's three HTTP handlers as one C service on libevent's evhttp:
 *
 *   POST /drafts           readValidatedPayload(body) -> runWorkflow('publish-draft', {title})
 *                          -> 200 {"runId": ..., "status": {...}}; a missing, blank or
 *                          non-string title -> 400 {"statusCode": 400, "statusMessage":
 *                          "Enter a title for the draft."}
 *   GET  /runs/:id         getWorkflowRun(id) -> {"found": true, "status": {...}}, or
 *                          {"found": false} when there is no such run; a malformed id is
 *                          answered the same way (200, found false), as the original's
 *                          getWorkflowRun() returns nothing for an id it cannot find
 *   POST /drafts/deferred  deferWorkflow('publish-draft', {title: 'Hello from waitUntil'}) ->
 *                          {"ok": true} at once; the run is queued on this loop afterwards
 *
 * Usage: drafts-service [--listen HOST:PORT] [--redis URL]   (default 127.0.0.1:8080;
 * PORT 0 picks a free port, printed on stderr). SIGINT/SIGTERM stop it cleanly.
 *
 * Status objects have the shape `wf status` prints (cli/status_json.c, compiled in). Redis calls
 * are synchronous on the loop thread: simple and fine for an example. A service that must never
 * block its loop would run them on worker threads, one wf_client per thread.
 */
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <jansson.h>
#include <wf/wf.h>

#include "js_string.h"
#include "status_json.h"

#define WORKFLOW       "publish-draft"
#define MAX_BODY_BYTES ((size_t)64 * 1024)
#define MAX_BODY_DEPTH 16
#define TITLE_MESSAGE  "Enter a title for the draft."

typedef struct service {
    struct event_base *base;
    struct evhttp *http;
    wf_client *client;
    struct event *on_sigint, *on_sigterm;
} service;

/* ---- Answers --------------------------------------------------------------------------------- */

/* Sends `body` (stolen; NULL means the answer could not be built) as JSON with status `code`. */
static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!text) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        free(text);
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, NULL, out);
    evbuffer_free(out);
}

/* h3's createError() shape: {"statusCode": code, "statusMessage": message}. */
static void reply_error(struct evhttp_request *req, int code, const char *message)
{
    reply_json(req, code, json_pack("{s:i, s:s}", "statusCode", code, "statusMessage", message));
}

/* An error from wf: 503 when Redis is the problem, 500 otherwise. */
static void reply_wf_error(struct evhttp_request *req, const wf_error *err)
{
    int redis = err->code == WF_ERR_CONNECT || err->code == WF_ERR_IO ||
                err->code == WF_ERR_TIMEOUT || err->code == WF_ERR_UNKNOWN_WORKFLOW;
    fprintf(stderr, "drafts-service: %s\n", err->message);
    reply_error(req, redis ? HTTP_SERVUNAVAIL : HTTP_INTERNAL, err->message);
}

static int method_is(struct evhttp_request *req, enum evhttp_cmd_type method)
{
    if (evhttp_request_get_command(req) == method) return 1;
    reply_error(req, 405, "Method not allowed.");
    return 0;
}

/* ---- POST /drafts ---------------------------------------------------------------------------- */

/* The route's validator: the body must be an object whose title is a non-blank string; keeps
 * {title: the trimmed title}. */
static int validate_draft(const msgpack_object *input, msgpack_packer *out, void *userdata,
                          wf_error *err)
{
    const char *title = NULL;
    size_t len = 0;
    if (input->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < input->via.map.size; i++) {
            const msgpack_object_kv *kv = &input->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size != 5 ||
                memcmp(kv->key.via.str.ptr, "title", 5) != 0)
                continue;
            title = kv->val.type == MSGPACK_OBJECT_STR ? kv->val.via.str.ptr : NULL;
            len = kv->val.type == MSGPACK_OBJECT_STR ? kv->val.via.str.size : 0;
        }
    }
    if (title) js_trim(&title, &len);
    if (!title || len == 0) return wf_error_set(err, WF_ERR_VALIDATION, TITLE_MESSAGE);
    msgpack_pack_map(out, 1);
    msgpack_pack_str(out, 5);
    msgpack_pack_str_body(out, "title", 5);
    msgpack_pack_str(out, len);
    msgpack_pack_str_body(out, title, len);
    return WF_OK;
}

static void on_drafts(struct evhttp_request *req, void *arg)
{
    service *svc = arg;
    if (!method_is(req, EVHTTP_REQ_POST)) return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const unsigned char *body = evbuffer_pullup(in, -1);

    msgpack_sbuffer payload;
    msgpack_sbuffer_init(&payload);
    wf_payload_limits limits = {MAX_BODY_BYTES, MAX_BODY_DEPTH};
    wf_error err = {0};
    int rc = wf_read_validated_payload(body, len, WF_PAYLOAD_JSON, &limits, validate_draft, NULL,
                                       &payload, &err);
    if (rc == WF_ERR_TOO_LARGE) {
        reply_error(req, 413, err.message);
    } else if (rc == WF_ERR_BAD_PAYLOAD) {
        /* An empty or unparsable body has no title either: the original answers the same. */
        reply_error(req, HTTP_BADREQUEST, TITLE_MESSAGE);
    } else if (rc != WF_OK) {
        reply_error(req, HTTP_BADREQUEST, err.message);
    } else {
        wf_run *run = wf_run_workflow(svc->client, WORKFLOW, payload.data, payload.size, &err);
        wf_status st = {0};
        if (run && wf_run_status(run, &st, &err) == WF_OK)
            reply_json(req, HTTP_OK, wf__cli_run_json(run, &st));
        else
            reply_wf_error(req, &err);
        wf_status_clear(&st);
        wf_run_free(run);
    }
    msgpack_sbuffer_destroy(&payload);
}

/* ---- POST /drafts/deferred ------------------------------------------------------------------- */

static void on_deferred(struct evhttp_request *req, void *arg)
{
    service *svc = arg;
    if (!method_is(req, EVHTTP_REQ_POST)) return;
    /* {"title": "Hello from waitUntil"} in msgpack. */
    static const char payload[] = "\x81\xa5title\xb4Hello from waitUntil";
    int rc = wf_defer_workflow(svc->client, WORKFLOW, payload, sizeof payload - 1);
    if (rc != WF_OK) {
        wf_error err = {0};
        wf_error_set(&err, rc, "could not defer the run: %s", wf_strerror(rc));
        reply_wf_error(req, &err);
        return;
    }
    reply_json(req, HTTP_OK, json_pack("{s:b}", "ok", 1));
}

/* ---- GET /runs/:id --------------------------------------------------------------------------- */

static void on_run(struct evhttp_request *req, service *svc, const char *id)
{
    if (!method_is(req, EVHTTP_REQ_GET)) return;
    wf_error err = {0};
    wf_status st = {0};
    wf_run *run = wf_get_workflow_run(svc->client, id, &err);
    if (run && wf_run_status(run, &st, &err) == WF_OK) {
        json_t *status = wf__cli_status_json(wf_run_id(run), wf_run_workflow_name(run), &st);
        reply_json(req, HTTP_OK, json_pack("{s:b, s:o}", "found", 1, "status", status));
    } else if (err.code == WF_ERR_NOT_FOUND || err.code == WF_ERR_BAD_ID) {
        reply_json(req, HTTP_OK, json_pack("{s:b}", "found", 0));
    } else {
        reply_wf_error(req, &err);
    }
    wf_status_clear(&st);
    wf_run_free(run);
}

/* Everything that is not /drafts or /drafts/deferred: /runs/:id, or 404. */
static void on_other(struct evhttp_request *req, void *arg)
{
    static const char prefix[] = "/runs/";
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (!path || strncmp(path, prefix, sizeof prefix - 1) != 0 || !path[sizeof prefix - 1]) {
        reply_error(req, HTTP_NOTFOUND, "Not found.");
        return;
    }
    char *id = evhttp_uridecode(path + sizeof prefix - 1, 0, NULL);
    if (!id) {
        reply_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    on_run(req, arg, id);
    free(id);
}

/* ---- Start-up and shutdown ------------------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    service *svc = arg;
    fprintf(stderr, "drafts-service: signal %d, shutting down\n", (int)sig);
    event_base_loopexit(svc->base, NULL);
}

static void on_defer_error(const char *workflow, const wf_error *err, void *userdata)
{
    fprintf(stderr, "drafts-service: deferred run of %s not queued: %s\n", workflow, err->message);
}

/* Binds `listen` ("HOST:PORT") and prints the address actually bound. Returns 0 or -1. */
static int bind_http(service *svc, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == listen || *end || port < 0 || port > 65535) {
        fprintf(stderr, "drafts-service: --listen wants HOST:PORT, not '%s'\n", listen);
        return -1;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    struct evhttp_bound_socket *sock =
        evhttp_bind_socket_with_handle(svc->http, host, (ev_uint16_t)port);
    if (!sock) {
        fprintf(stderr, "drafts-service: cannot listen on %s\n", listen);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    char addr[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sslen) == 0)
        getnameinfo((struct sockaddr *)&ss, sslen, addr, sizeof addr, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV);
    fprintf(stderr, "drafts-service: listening on http://%s:%s\n", addr, serv);
    return 0;
}

static int start(service *svc, const char *listen, const char *redis_url)
{
    wf_error err = {0};
    svc->base = event_base_new();
    svc->http = svc->base ? evhttp_new(svc->base) : NULL;
    if (!svc->http) {
        fputs("drafts-service: cannot create the event loop\n", stderr);
        return -1;
    }
    svc->client = wf_client_connect(redis_url, &err);
    if (!svc->client || wf_client_attach(svc->client, svc->base, &err) != WF_OK) {
        fprintf(stderr, "drafts-service: %s\n", err.message);
        return -1;
    }
    wf_client_on_defer_error(svc->client, on_defer_error, svc);
    evhttp_set_max_body_size(svc->http, (ev_ssize_t)MAX_BODY_BYTES);
    evhttp_set_allowed_methods(svc->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_timeout(svc->http, 30);
    evhttp_set_cb(svc->http, "/drafts", on_drafts, svc);
    evhttp_set_cb(svc->http, "/drafts/deferred", on_deferred, svc);
    evhttp_set_gencb(svc->http, on_other, svc);
    svc->on_sigint = evsignal_new(svc->base, SIGINT, on_signal, svc);
    svc->on_sigterm = evsignal_new(svc->base, SIGTERM, on_signal, svc);
    if (!svc->on_sigint || !svc->on_sigterm || event_add(svc->on_sigint, NULL) != 0 ||
        event_add(svc->on_sigterm, NULL) != 0) {
        fputs("drafts-service: cannot install signal handlers\n", stderr);
        return -1;
    }
    return bind_http(svc, listen);
}

/* Frees whatever start() created; the client before the loop it is attached to. */
static void stop(service *svc)
{
    if (svc->http) evhttp_free(svc->http);
    if (svc->on_sigint) event_free(svc->on_sigint);
    if (svc->on_sigterm) event_free(svc->on_sigterm);
    wf_client_free(svc->client);
    if (svc->base) event_base_free(svc->base);
}

static const char USAGE[] =
    "Usage: drafts-service [--listen HOST:PORT] [--redis URL]\n"
    "  --listen HOST:PORT  where to serve HTTP (default 127.0.0.1:8080; port 0: any free port)\n"
    "  --redis URL         Redis (default: $WF_REDIS_URL, else redis://127.0.0.1:6379)\n";

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"redis", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:8080", *redis_url = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (c == 'l')
            listen = optarg;
        else if (c == 'r')
            redis_url = optarg;
        else {
            fputs(USAGE, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 1;
        }
    }
    if (optind != argc) {
        fputs(USAGE, stderr);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill the service */
    evthread_use_pthreads();  /* before any event_base, as libwf may use threads */
    service svc = {0};
    int rc = start(&svc, listen, redis_url) == 0 ? 0 : 1;
    if (rc == 0 && event_base_dispatch(svc.base) < 0) rc = 1;
    stop(&svc);
    libevent_global_shutdown();
    return rc;
}
