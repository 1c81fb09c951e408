/* web.c - `wf web --listen ADDR:PORT [--token TOKEN] [--base-path /PREFIX]`: the dashboard's HTTP
 * server on libevent's evhttp. It serves the page embedded from cli/web/ and hands /api/ to
 * web_api.c, after access checks:
 *
 *  - Listening off loopback needs a token (refused otherwise), and with a token every API call
 *    needs "Authorization: Bearer TOKEN" (compared in constant time).
 *  - Without a token (loopback only), API calls must name a loopback Host, so a web page on
 *    another site cannot reach the API through DNS rebinding.
 *  - A POST whose Origin is not this server's own is refused: no other site can press buttons.
 *  - Answers carry a strict Content-Security-Policy; the page puts data in the DOM as text only.
 *
 * With --base-path /PREFIX everything lives under /PREFIX/ (for a reverse proxy that forwards
 * that path unchanged): the prefix is stripped before routing, and the page refers to its files
 * and the API by relative URLs, so it works under any prefix.
 */
#include "web.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

/* Where `wf web` listens without --listen: loopback, so no token is needed, on the port the docs
 * and the docker files use. */
#define DEFAULT_LISTEN "127.0.0.1:8080"

static const char USAGE[] =
    "Usage: wf web [--listen ADDR:PORT] [--token TOKEN] [--base-path /PREFIX]\n"
    "\n"
    "Serves the dashboard: the workflows with their runs per state, history and pause /\n"
    "resume, a filterable list of runs with bulk retry / stop, each run's input, output,\n"
    "error, steps, waterfall and timeline with stop / retry / pause / resume / restart, and\n"
    "the schedules and dead letters; the page refreshes itself. Also a JSON API:\n"
    "  GET  /api/workflows                      counts per state of every workflow, and\n"
    "                                           liveWorkers: how many live workers run it\n"
    "  GET  /api/workers                        worker processes\n"
    "  GET  /api/runs?workflow=&state=&limit=&offset=&since=&until=&q=   runs, newest first;\n"
    "                                           q: a run id or its first characters (searched\n"
    "                                           among the newest 5000 runs the filters match)\n"
    "  GET  /api/runs/ID                        one run in detail (as `wf status ID`)\n"
    "  POST /api/runs/ID/stop|retry|pause|resume|restart   (stop?reason=TEXT)\n"
    "  POST /api/bulk?action=stop|retry&workflow=W&state=S[&dry_run=1][&until=MS]\n"
    "                                           stop or retry every run of W in state S\n"
    "                                           (dry_run: count them and answer `until`;\n"
    "                                           pass it back to act on just those)\n"
    "  POST /api/workflows/W/pause|resume       pause or resume a whole workflow\n"
    "  GET  /api/workflows/W/history?range=1h|1d runs started, completed, failed per minute\n"
    "                                           (1h) or per 15 minutes (1d)\n"
    "  GET  /api/schedules?workflow=W           schedules\n"
    "  POST /api/schedules/W/ID/pause|resume|trigger\n"
    "  GET  /api/dead?workflow=W&limit=N        dead letters, newest first\n"
    "Errors are {\"error\": MESSAGE, \"status\": CODE}: 400 malformed id or parameter, 401 no or\n"
    "wrong token, 404 no such run, 405 method not served (with an Allow header), 409 not\n"
    "allowed in the run's state, 503 Redis unreachable.\n"
    "\n"
    "Options:\n"
    "  --listen ADDR:PORT  where to listen, e.g. 0.0.0.0:8080 or [::1]:8080 (port 0: any\n"
    "                      free port); default " DEFAULT_LISTEN " (this machine only).\n"
    "                      Prints \"listening on http://ADDR:PORT/\" once ready\n"
    "  --token TOKEN       require \"Authorization: Bearer TOKEN\" on every API call (the page\n"
    "                      asks for it once per browser tab); also read from $WF_WEB_TOKEN.\n"
    "                      Required when ADDR is not a loopback address; at least 16 characters\n"
    "  --base-path /PREFIX serve everything under /PREFIX/ (the page at /PREFIX/, the API\n"
    "                      at /PREFIX/api/), to sit behind a reverse proxy that forwards\n"
    "                      /PREFIX/ unchanged; other paths answer 404\n"
    "  --redis URL, --help   as for every command (see `wf --help`)\n"
    "SIGINT or SIGTERM stops the server (exit 0). Exits 9 when it cannot listen, 1 when a token\n"
    "is needed but missing.\n";

#define MIN_TOKEN 16

/* ---- Answers ----------------------------------------------------------------------------------
 */

static void common_headers(struct evhttp_request *req, const char *type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; script-src 'self'; style-src 'self'; "
                      "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                      "base-uri 'none'; form-action 'none'");
}

void wf__web_send_json(struct evhttp_request *req, int code, json_t *body)
{
    char *text =
        body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    common_headers(req, "application/json");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    struct evbuffer *buf = evbuffer_new();
    if (!text || !buf) {
        if (buf) evbuffer_add_printf(buf, "{\"error\":\"out of memory\",\"status\":500}");
        evhttp_send_reply(req, 500, "Internal Server Error", buf);
    } else {
        evbuffer_add(buf, text, strlen(text));
        evhttp_send_reply(req, code, NULL, buf);
    }
    if (buf) evbuffer_free(buf);
    free(text);
}

void wf__web_send_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *body = json_object();
    json_t *m = json_string(msg);
    if (!m) { /* a message quoting bytes that are not UTF-8 */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
        m = json_string(msg);
    }
    if (body) {
        json_object_set_new(body, "error", m);
        json_object_set_new(body, "status", json_integer(code));
    } else {
        json_decref(m);
    }
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"wf\"");
    wf__web_send_json(req, code, body);
}

/* The HTTP status for a libwf error. */
static int status_for(int code)
{
    switch (code) {
    case WF_ERR_BAD_ID:
    case WF_ERR_BAD_NAME:
    case WF_ERR_INVALID:
        return 400;
    case WF_ERR_NOT_FOUND:
        return 404;
    case WF_ERR_FINAL:
    case WF_ERR_STATE:
        return 409;
    case WF_ERR_CONNECT:
    case WF_ERR_IO:
    case WF_ERR_TIMEOUT:
    case WF_ERR_SCHEMA:
        return 503;
    default:
        return 500;
    }
}

void wf__web_send_wf_error(struct evhttp_request *req, const wf_error *err)
{
    wf__web_send_error(req, status_for(err->code), "%s", wf__cli_error_text(err));
}

/* The name of a request's method, for messages. */
static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "this method";
}

void wf__web_send_405(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    wf__web_send_error(req, 405, "%s is not allowed here: use %s",
                       method_name(evhttp_request_get_command(req)), allow);
}

static void send_asset(struct evhttp_request *req, const wf__web_asset *a)
{
    common_headers(req, a->type);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add_reference(buf, a->data, a->len, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

/* ---- Access -----------------------------------------------------------------------------------
 */

/* 1 when `host` (an address or name, no port, IPv6 without brackets) is loopback. */
static int host_is_loopback(const char *host)
{
    unsigned char a4[4], a6[16];
    if (strcmp(host, "localhost") == 0) return 1;
    if (inet_pton(AF_INET, host, a4) == 1) return a4[0] == 127;
    if (inet_pton(AF_INET6, host, a6) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(a6, one, 16) == 0;
    }
    return 0;
}

/* The host part of a Host header ("127.0.0.1:8080", "[::1]:8080", "localhost") into `out`. */
static int host_part(const char *header, char *out, size_t size)
{
    const char *start = header, *end;
    if (*header == '[') {
        start = header + 1;
        end = strchr(start, ']');
        if (!end) return -1;
    } else {
        end = strchr(header, ':');
        if (!end) end = header + strlen(header);
    }
    if ((size_t)(end - start) >= size) return -1;
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 0;
}

/* Compares without an early exit, so the time taken says nothing about the token. */
static int same_secret(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    unsigned char diff = gl != wl;
    for (size_t i = 0; i < wl; i++) diff |= (unsigned char)(given[i < gl ? i : 0] ^ want[i]);
    return diff == 0;
}

/* Returns 1 when the request may use the API, else answers it and returns 0. */
static int api_allowed(wf__web *web, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *host = evhttp_find_header(in, "Host");
    if (web->token) {
        const char *auth = evhttp_find_header(in, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !same_secret(auth + 7, web->token)) {
            wf__web_send_error(req, 401,
                               "this dashboard needs its token: send "
                               "\"Authorization: Bearer TOKEN\"");
            return 0;
        }
    } else {
        char h[256];
        if (!host || host_part(host, h, sizeof h) != 0 || !host_is_loopback(h)) {
            wf__web_send_error(req, 403, "the API answers only requests to a loopback host");
            return 0;
        }
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        const char *origin = evhttp_find_header(in, "Origin");
        char own[300];
        char own_tls[300];
        snprintf(own, sizeof own, "http://%s", host ? host : "");
        snprintf(own_tls, sizeof own_tls, "https://%s", host ? host : "");
        /* https: a reverse proxy in front may end TLS and pass the Host on. */
        if (origin && strcmp(origin, own) != 0 && strcmp(origin, own_tls) != 0) {
            wf__web_send_error(req, 403, "cross-site request refused (Origin %.200s)", origin);
            return 0;
        }
    }
    return 1;
}

/* ---- Routing ----------------------------------------------------------------------------------
 */

static void on_request(struct evhttp_request *req, void *arg)
{
    wf__web *web = arg;
    web->requests++;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) path = "/";
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    size_t blen = strlen(web->base);
    if (blen) {
        if (strcmp(path, web->base) == 0) { /* the page's relative URLs need the slash */
            char to[300];
            snprintf(to, sizeof to, "%s/", web->base);
            evhttp_add_header(evhttp_request_get_output_headers(req), "Location", to);
            wf__web_send_error(req, 301, "the dashboard is at %s", to);
            return;
        }
        if (strncmp(path, web->base, blen) != 0 || path[blen] != '/') {
            wf__web_send_error(req, 404, "no such page: the dashboard is under %s/", web->base);
            return;
        }
        path += blen;
    }
    if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0) {
        if (api_allowed(web, req)) wf__web_api(web, req, path + 4, evhttp_uri_get_query(uri));
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        wf__web_send_405(req, "GET, HEAD");
        return;
    }
    if (strcmp(path, "/") == 0) path = "/index.html";
    for (const wf__web_asset *a = wf__web_assets; a->path; a++)
        if (strcmp(a->path, path) == 0) {
            send_asset(req, a);
            return;
        }
    wf__web_send_error(req, 404, "no such page");
}

/* ---- Listening --------------------------------------------------------------------------------
 */

/* Splits "ADDR:PORT" / "[V6]:PORT" into `addr` and `port`. Returns 0 or -1. */
static int parse_listen(const char *s, char *addr, size_t size, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -1;
    if (host_part(s, addr, size) != 0 || !addr[0]) return -1;
    if (s[0] == '[' && colon[-1] != ']') return -1;
    if (s[0] != '[' && strchr(addr, ':')) return -1; /* a bare IPv6 address needs brackets */
    long long p;
    if (wf__cli_parse_long(colon + 1, &p) != 0 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

/* Normalises --base-path into `out`: "/a/b/" -> "/a/b", "/" -> "". Returns 0, or -1 for a path
 * that does not start with '/', has an empty or dot-only segment, or other characters than
 * letters, digits and -_.~ between slashes. */
static int parse_base_path(const char *s, char *out, size_t size)
{
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/') n--;
    if (s[0] != '/' || n >= size) return -1;
    if (n == 1) {
        out[0] = '\0';
        return 0;
    }
    for (size_t i = 1, seg = 1; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - seg;
            if (len == 0 || strspn(s + seg, ".") >= len) return -1; /* "//", ".", ".." */
            seg = i + 1;
        } else if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~",
                           s[i])) {
            return -1;
        }
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

/* Binds, prints the address and serves until a signal. Returns an exit code. */
static int serve(wf__web *web, const char *addr, int port)
{
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct event *sigint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    struct event *sigterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    int rc = WF_CLI_OK;
    if (!http || !sigint || !sigterm) {
        fputs("wf: out of memory\n", stderr);
        rc = WF_CLI_USAGE;
        goto out;
    }
    web->http = http;
    /* Every method evhttp knows reaches on_request, which answers those it does not serve with
     * a JSON 405 and an Allow header; evhttp's own refusal would be an HTML 501. */
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                         EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(http, 4096);
    evhttp_set_max_headers_size(http, 16384);
    evhttp_set_timeout(http, 30);
    evhttp_set_gencb(http, on_request, web);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(http, addr, (uint16_t)port);
    if (!bound) {
        fprintf(stderr,
                "wf: cannot listen on %s:%d (address in use, or not an address of this "
                "machine?)\n",
                addr, port);
        rc = WF_CLI_LISTEN;
        goto out;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss); /* clang-analyzer does not see getsockname fill it */
    socklen_t len = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &len) == 0) {
        in_port_t bound_port = 0;
        if (ss.ss_family == AF_INET6)
            memcpy(&bound_port, &((struct sockaddr_in6 *)&ss)->sin6_port, sizeof bound_port);
        else
            memcpy(&bound_port, &((struct sockaddr_in *)&ss)->sin_port, sizeof bound_port);
        port = ntohs(bound_port);
    }
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    printf("wf web: listening on http://%s%s%s:%d%s/%s\n", strchr(addr, ':') ? "[" : "", addr,
           strchr(addr, ':') ? "]" : "", port, web->base, web->token ? " (token required)" : "");
    fflush(stdout);
    event_base_dispatch(base);
    fprintf(stderr, "wf web: stopped after %lld requests\n", web->requests);
out:
    if (sigint) event_free(sigint);
    if (sigterm) event_free(sigterm);
    if (http) evhttp_free(http);
    if (base) event_base_free(base);
    return rc;
}

int wf__cli_cmd_web(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_LISTEN = 1, OPT_TOKEN, OPT_BASE };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"base-path", required_argument, NULL, OPT_BASE},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *token = getenv("WF_WEB_TOKEN"), *base_arg = NULL;
    int c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c == OPT_LISTEN)
            listen = optarg;
        else if (c == OPT_TOKEN)
            token = optarg;
        else if (c == OPT_BASE)
            base_arg = optarg;
        else
            return WF_CLI_USAGE;
    }
    if (cli->help) return fputs(USAGE, stdout) == EOF ? WF_CLI_USAGE : WF_CLI_OK;
    if (optind != argc) return wf__cli_usage_error("web", "web takes no arguments");
    if (!listen) listen = DEFAULT_LISTEN;
    char addr[256];
    int port;
    if (parse_listen(listen, addr, sizeof addr, &port) != 0)
        return wf__cli_usage_error("web", "--listen wants ADDR:PORT or [IPV6]:PORT, not '%s'",
                                   listen);
    char base[256] = "";
    if (base_arg && parse_base_path(base_arg, base, sizeof base) != 0)
        return wf__cli_usage_error("web",
                                   "--base-path wants a path like /wf or /ops/wf (letters, digits, "
                                   "'-', '_', '.', '~' between slashes), not '%s'",
                                   base_arg);
    if (token && !*token) token = NULL;
    wf__web web = {cli, token, host_is_loopback(addr), base, NULL, 0};
    if (!web.loopback && !token)
        return wf__cli_usage_error("web",
                                   "%s is not a loopback address: anyone who reaches it could "
                                   "stop runs. Give --token TOKEN (or $WF_WEB_TOKEN), or listen "
                                   "on 127.0.0.1",
                                   addr);
    if (token && strlen(token) < MIN_TOKEN)
        return wf__cli_usage_error("web", "--token must have at least %d characters", MIN_TOKEN);
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    signal(SIGPIPE, SIG_IGN); /* a browser closing its connection must not end the server */
    evthread_use_pthreads();
    return serve(&web, addr, port);
}
