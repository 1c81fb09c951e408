/* ops_http.c - the HTTP helpers of the operations tests (ops_http.h): a blocking GET with
 * libcurl, and the tiny webhook receiver that runs in a thread. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ops_http.h"

/* ---- client -----------------------------------------------------------------------------------
 */

static size_t http_collect(char *data, size_t size, size_t n, void *userp)
{
    char **buf = userp;
    size_t old = *buf ? strlen(*buf) : 0, len = size * n;
    char *b = realloc(*buf, old + len + 1);
    if (!b) return 0;
    memcpy(b + old, data, len);
    b[old + len] = '\0';
    *buf = b;
    return len;
}

/* GETs http://127.0.0.1:PORT/PATH (token: a bearer token or NULL). Returns the status (0 when the
 * connection failed); *body (if not NULL) gets the body, malloc'd ("" when none). */
long http_get(int port, const char *path, const char *token, char **body)
{
    char url[256], auth[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    char *buf = NULL;
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &buf);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    if (body)
        *body = buf ? buf : strdup("");
    else
        free(buf);
    return status;
}

/* ---- the receiver ------------------------------------------------------------------------------
 */

static const char *hook_header(const char *head, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = head; (p = strchr(p, '\n'));) {
        p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            size_t l = strcspn(v, "\r\n");
            snprintf(out, n, "%.*s", (int)l, v);
            return out;
        }
    }
    return NULL;
}

static void hook_serve_one(hook_server *s, int c)
{
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap + 1);
    char *end = NULL;
    while (!end) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = read(c, buf + len, cap - len);
        if (r <= 0) {
            free(buf);
            return;
        }
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char cl[32];
    size_t body_len = hook_header(buf, "Content-Length", cl, sizeof cl) ? strtoul(cl, NULL, 10) : 0;
    while (len < head_len + body_len) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = read(c, buf + len, cap - len);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = '\0';
    }
    hook_req q;
    memset(&q, 0, sizeof q);
    sscanf(buf, "%7s %127s", q.method, q.path);
    hook_header(buf, "X-WF-Timestamp", q.ts, sizeof q.ts);
    hook_header(buf, "X-WF-Signature", q.sig, sizeof q.sig);
    hook_header(buf, "X-WF-Event", q.event, sizeof q.event);
    char att[16];
    if (hook_header(buf, "X-WF-Attempt", att, sizeof att)) q.attempt = atoi(att);
    size_t have = len > head_len ? len - head_len : 0;
    if (have > body_len) have = body_len;
    q.body = malloc(have + 1);
    memcpy(q.body, buf + head_len, have);
    q.body[have] = '\0';
    q.body_len = have;
    free(buf);
    int code = 200;
    if (atomic_load(&s->fail_first) > 0) {
        atomic_fetch_sub(&s->fail_first, 1);
        code = 500;
    } else if (atomic_load(&s->status)) {
        code = atomic_load(&s->status);
    }
    q.answered = code;
    const char *reply = s->reply ? s->reply : "";
    char out[512];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     code, strlen(reply), reply);
    pthread_mutex_lock(&s->mu);
    if (s->n < HOOK_MAX)
        s->req[s->n++] = q;
    else
        free(q.body);
    pthread_mutex_unlock(&s->mu);
    if (write(c, out, (size_t)n) != n) perror("hook server write");
}

static void *hook_main(void *arg)
{
    hook_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        hook_serve_one(s, c);
        close(c);
    }
    return NULL;
}

/* Listens on 127.0.0.1:port (0: any free port; s->port tells which) and serves in a thread.
 * Returns 0 or -1. */
int hook_start(hook_server *s, int port)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    socklen_t al = sizeof a;
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
        close(s->fd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, hook_main, s) == 0 ? 0 : -1;
}

void hook_stop(hook_server *s)
{
    if (s->fd <= 0) return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    s->fd = 0;
    for (int i = 0; i < s->n; i++) free(s->req[i].body);
    s->n = 0;
    pthread_mutex_destroy(&s->mu);
}

/* A copy of the requests received so far (caller frees the array, not the bodies: they stay
 * owned by the server until hook_stop). */
int hook_snapshot(hook_server *s, hook_req **out)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    *out = malloc(sizeof **out * (size_t)(n ? n : 1));
    memcpy(*out, s->req, sizeof **out * (size_t)n);
    pthread_mutex_unlock(&s->mu);
    return n;
}

int hook_count(hook_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}
