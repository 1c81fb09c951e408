/* curl_ev.c - HTTP requests from the loop thread without blocking it and without a thread per
 * request: libcurl's multi interface driven by the worker's libevent base.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one persistent libevent event
 * per socket, remade when the interest changes) and when to wake it (CURLMOPT_TIMERFUNCTION: one
 * libevent timer); we hand every readiness and timeout back with curl_multi_socket_action() and
 * then collect finished transfers with curl_multi_info_read(). This is the pattern of curl's own
 * multi-event.c example. Host names are resolved by curl (its threaded resolver; IP literals and
 * "localhost" need none).
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "wf_worker_internal.h"

#define RESPONSE_KEEP 256 /* bytes of a response body kept for the error message */

typedef struct xfer xfer;
typedef struct sock sock;

struct wf__curl {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    int freeing; /* wf__curl_free is aborting transfers */
    xfer *xfers; /* transfers in flight (list) */
    sock *socks; /* sockets curl asked us to watch (list) */
};

struct xfer {
    xfer *prev, *next;
    wf__curl *c;
    CURL *easy;
    struct curl_slist *headers;
    wf__curl_done_fn fn;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
    char body[RESPONSE_KEEP + 1];
    size_t body_len;
};

struct sock {
    sock *prev, *next;
    struct event *ev;
    curl_socket_t fd;
};

#define LIST_ADD(head, x)                                                                          \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if (head) (head)->prev = (x);                                                              \
        (head) = (x);                                                                              \
    } while (0)
/* Unlinks `x`. Tests `x` against `head`, not `x->prev` against NULL: the same thing while the
 * list is sound, but it lets clang-analyzer see that the head moves on, which it cannot prove
 * from `prev` (it reported use-after-free in the free-every-entry loops of wf__curl_free). */
#define LIST_DEL(head, x)                                                                          \
    do {                                                                                           \
        if ((head) == (x))                                                                         \
            (head) = (x)->next;                                                                    \
        else                                                                                       \
            (x)->prev->next = (x)->next;                                                           \
        if ((x)->next) (x)->next->prev = (x)->prev;                                                \
    } while (0)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;

static void global_init(void)
{
    global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* Takes `x` out of the multi handle, calls its callback once, frees it. */
static void finish(wf__curl *c, xfer *x, CURLcode code)
{
    long status = 0;
    if (code == CURLE_OK) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, x->easy);
    LIST_DEL(c->xfers, x);
    char error[CURL_ERROR_SIZE + RESPONSE_KEEP + 32] = "";
    if (code != CURLE_OK)
        snprintf(error, sizeof error, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
    else if (status < 200 || status > 299)
        snprintf(error, sizeof error, "HTTP %ld%s%s", status, x->body_len ? ": " : "", x->body);
    if (x->fn) x->fn(x->arg, (int)code, status, error[0] ? error : NULL);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x);
}

/* Finishes every transfer curl reports done. */
static void check_done(wf__curl *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x) finish(c, x, msg->data.result);
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    wf__curl *c = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_done(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf__curl *c = arg;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch `s` for `what`, or stop watching it. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    wf__curl *c = userp;
    sock *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            if (k->ev) event_free(k->ev);
            LIST_DEL(c->socks, k);
            free(k);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k) return -1;
        k->fd = s;
        LIST_ADD(c->socks, k);
        curl_multi_assign(c->multi, s, k);
    } else if (k->ev) {
        event_free(k->ev);
    }
    k->ev = event_new(c->base, s, kind, on_socket_event, c);
    if (!k->ev) return -1;
    event_add(k->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake curl in `timeout_ms` (-1: never). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    wf__curl *c = userp;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    xfer *x = userp;
    size_t len = size * n;
    size_t room = RESPONSE_KEEP - x->body_len;
    size_t take = len < room ? len : room;
    memcpy(x->body + x->body_len, data, take);
    x->body_len += take;
    x->body[x->body_len] = '\0';
    return len; /* the rest is discarded */
}

wf__curl *wf__curl_new(struct event_base *base, wf_error *err)
{
    pthread_once(&global_once, global_init);
    if (!global_ok) {
        wf_error_set(err, WF_ERR_SYSTEM, "curl_global_init failed");
        return NULL;
    }
    wf__curl *c = calloc(1, sizeof *c);
    if (!c) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    if (!c->multi || !c->timer) {
        wf__curl_free(c);
        wf_error_set(err, WF_ERR_NOMEM, "out of memory (curl multi)");
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

int wf__curl_post(wf__curl *c, const char *url, const char *const *headers, int nheaders,
                  const char *body, size_t len, int64_t timeout_ms, wf__curl_done_fn fn, void *arg)
{
    if (c->freeing) return WF_ERR_CLOSED;
    xfer *x = calloc(1, sizeof *x);
    if (!x) return WF_ERR_NOMEM;
    x->c = c;
    x->fn = fn;
    x->arg = arg;
    x->easy = curl_easy_init();
    int ok = x->easy != NULL;
    for (int i = 0; ok && i < nheaders; i++) {
        struct curl_slist *l = curl_slist_append(x->headers, headers[i]);
        if (!l) ok = 0;
        x->headers = l ? l : x->headers;
    }
    if (ok) {
        CURL *e = x->easy;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "wf-worker");
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
        curl_easy_setopt(e, CURLOPT_PRIVATE, x);
        ok = curl_multi_add_handle(c->multi, e) == CURLM_OK;
    }
    if (!ok) {
        if (x->easy) curl_easy_cleanup(x->easy);
        curl_slist_free_all(x->headers);
        free(x);
        return WF_ERR_NOMEM;
    }
    LIST_ADD(c->xfers, x);
    return WF_OK;
}

void wf__curl_free(wf__curl *c)
{
    if (!c) return;
    c->freeing = 1;
    /* Abort what is in flight: each callback fires once, with CURLE_ABORTED_BY_CALLBACK. */
    while (c->xfers) finish(c, c->xfers, CURLE_ABORTED_BY_CALLBACK);
    if (c->multi) curl_multi_cleanup(c->multi); /* closes cached connections */
    while (c->socks) {                          /* sockets curl did not report removed */
        sock *k = c->socks;
        LIST_DEL(c->socks, k);
        if (k->ev) event_free(k->ev);
        free(k);
    }
    if (c->timer) event_free(c->timer);
    free(c);
}
