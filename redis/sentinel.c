/* sentinel.c - redis+sentinel:// URLs (see sentinel.h): parsing them, and finding the master the
 * sentinels name, checked with ROLE, for the synchronous connections (wf__redis_connect) and the
 * async ones (the worker's and the deferred-start connection resolve with wf__url_target on every
 * (re)connect, so after a failover they follow the new master).
 *
 * The procedure is the one Redis documents for sentinel clients: ask the sentinels in turn for
 * the master's address, connect to it, and accept it only if ROLE says "master" (a sentinel may
 * still name the old master for a moment after a failover).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentinel.h"

#define DEFAULT_PORT   26379
#define ASK_TIMEOUT_MS 1000 /* per sentinel, at most */

/* ---- Parsing -------------------------------------------------------------------------------- */

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) return 0;
    return 1;
}

int wf__hostport_parse(const char *s, size_t n, wf__sentinel *st, int default_port,
                       const char *what, wf_error *err)
{
    if (st->n == WF__SENTINEL_MAX)
        return wf_error_set(err, WF_ERR_URL, "a URL lists at most %d %ss", WF__SENTINEL_MAX, what);
    const char *host = s, *portp = NULL;
    size_t hlen = n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return wf_error_set(err, WF_ERR_URL, "%s address has '[' without ']'", what);
        host = s + 1;
        hlen = (size_t)(close - s - 1);
        if (close + 1 < s + n) {
            if (close[1] != ':') return wf_error_set(err, WF_ERR_URL, "bad text after ']'");
            portp = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            hlen = (size_t)(colon - s);
            portp = colon + 1;
        }
    }
    if (hlen == 0 || hlen > 255) return wf_error_set(err, WF_ERR_URL, "empty %s host", what);
    for (size_t i = 0; i < hlen; i++)
        if (!isalnum((unsigned char)host[i]) && !strchr(".-_:", host[i]))
            return wf_error_set(err, WF_ERR_URL,
                                "%s host contains a character not allowed in a host name", what);
    int port = default_port;
    if (portp) {
        size_t plen = (size_t)(s + n - portp);
        port = 0;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)portp[i]) || port > 65535) {
                port = 0;
                break;
            }
            port = port * 10 + (portp[i] - '0');
        }
        if (plen == 0 || port < 1 || port > 65535)
            return wf_error_set(err, WF_ERR_URL, "%s port must be a number 1..65535", what);
    }
    if (!(st->host[st->n] = strndup(host, hlen)))
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    st->port[st->n++] = port;
    return WF_OK;
}

int wf__sentinel_parse(const char *s, size_t n, wf__url *u, wf_error *err)
{
    wf__sentinel *st = calloc(1, sizeof *st);
    if (!st) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    u->sentinel = st;
    int rc = wf__url_userinfo(&s, &n, u, err);
    if (rc != WF_OK) return rc;
    const char *slash = memchr(s, '/', n);
    if (!slash)
        return wf_error_set(err, WF_ERR_URL,
                            "sentinel URL needs the master's name: "
                            "redis+sentinel://host:26379[,host2:26379]/MASTER[/db]");
    for (const char *p = s; p < slash;) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *end = comma ? comma : slash;
        rc = wf__hostport_parse(p, (size_t)(end - p), st, DEFAULT_PORT, "sentinel", err);
        if (rc != WF_OK) return rc;
        p = comma ? comma + 1 : slash;
        if (comma && p == slash) return wf_error_set(err, WF_ERR_URL, "empty sentinel address");
    }
    if (st->n == 0) return wf_error_set(err, WF_ERR_URL, "sentinel URL lists no sentinel");
    const char *name = slash + 1, *end = s + n;
    const char *dbp = memchr(name, '/', (size_t)(end - name));
    size_t nlen = (size_t)((dbp ? dbp : end) - name);
    if (!name_ok(name, nlen))
        return wf_error_set(err, WF_ERR_URL,
                            "sentinel master name must be 1-64 characters of [A-Za-z0-9._-]");
    if (!(st->master = strndup(name, nlen)))
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    if (dbp && dbp + 1 < end) {
        long db = 0;
        for (const char *p = dbp + 1; p < end; p++) {
            if (!isdigit((unsigned char)*p) || db > (1 << 20))
                return wf_error_set(err, WF_ERR_URL,
                                    "URL db after the master name must be a "
                                    "number");
            db = db * 10 + (*p - '0');
        }
        u->db = (int)db;
    }
    free(u->host);
    if (!(u->host = strdup(st->host[0]))) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    u->port = st->port[0];
    return WF_OK;
}

char *wf__sentinel_redacted(const wf__url *u)
{
    const wf__sentinel *st = u->sentinel;
    char buf[4096];
    size_t off =
        (size_t)snprintf(buf, sizeof buf, "redis+sentinel://%s%s%s", u->user ? u->user : "",
                         u->password ? ":***" : "", (u->user || u->password) ? "@" : "");
    for (int i = 0; i < st->n && off < sizeof buf; i++) {
        int v6 = strchr(st->host[i], ':') != NULL;
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s%s%s:%d", i ? "," : "",
                                v6 ? "[" : "", st->host[i], v6 ? "]" : "", st->port[i]);
    }
    if (off < sizeof buf)
        snprintf(buf + off, sizeof buf - off, "/%s/%d?prefix=%s", st->master, u->db, u->prefix);
    return strdup(buf);
}

void wf__sentinel_free(wf__sentinel *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->host[i]);
    free(s->master);
    free(s);
}

/* ---- Resolving --------------------------------------------------------------------------------
 */

/* Asks sentinel i for the master's address. Returns WF_OK with host/port filled, else an error
 * text in `why`. */
static int ask(const wf__url *u, int i, char *host, size_t size, int *port, char *why, size_t wn)
{
    const wf__sentinel *st = u->sentinel;
    int ms = u->timeout_ms < ASK_TIMEOUT_MS ? u->timeout_ms : ASK_TIMEOUT_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(st->host[i], st->port[i], tv);
    if (!c || c->err) {
        snprintf(why, wn, "%s:%d unreachable (%s)", st->host[i], st->port[i],
                 c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", st->master);
    int rc = -1;
    if (!r)
        snprintf(why, wn, "%s:%d: %s", st->host[i], st->port[i], c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, wn, "%s:%d answered %s", st->host[i], st->port[i], r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
             r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= size)
        snprintf(why, wn, "%s:%d does not know master '%s'", st->host[i], st->port[i], st->master);
    else {
        memcpy(host, r->element[0]->str, r->element[0]->len + 1);
        *port = atoi(r->element[1]->str ? r->element[1]->str : "0");
        rc = *port > 0 ? 0 : -1;
        if (rc) snprintf(why, wn, "%s:%d gave a bad port", st->host[i], st->port[i]);
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* 1 when `c` answers ROLE with "master". */
static int is_master(redisContext *c)
{
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    if (r) freeReplyObject(r);
    return ok;
}

/* Finds the master and fills host/port. Sets *rc to WF_OK or the error; on success returns the
 * master's checked connection when `keep` (caller frees), else closes it and returns NULL. */
static redisContext *resolve(const wf__url *u, char *host, size_t size, int *port, int keep,
                             int *rc, wf_error *err)
{
    const wf__sentinel *st = u->sentinel;
    char why[WF__SENTINEL_MAX][160];
    for (int i = 0; i < st->n; i++) {
        why[i][0] = '\0';
        if (ask(u, i, host, size, port, why[i], sizeof why[i]) != 0) continue;
        wf__url m = *u;
        m.sentinel = NULL;
        m.host = host;
        m.port = *port;
        wf_error e = {0};
        redisContext *c = wf__redis_connect(&m, &e);
        if (!c) {
            snprintf(why[i], sizeof why[i], "%s:%d named %s:%d, which failed: %.80s", st->host[i],
                     st->port[i], host, *port, e.message);
            continue;
        }
        if (!is_master(c)) {
            snprintf(why[i], sizeof why[i], "%s:%d named %s:%d, which is not a master (yet)",
                     st->host[i], st->port[i], host, *port);
            redisFree(c);
            continue;
        }
        *rc = WF_OK;
        if (keep) return c;
        redisFree(c);
        return NULL;
    }
    char msg[512];
    size_t off = 0;
    for (int i = 0; i < st->n && off < sizeof msg; i++)
        off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%s", i ? "; " : "", why[i]);
    *rc = wf_error_set(err, WF_ERR_CONNECT,
                       "no sentinel named a reachable master '%s' (%s); check the URL and "
                       "`redis-cli -p PORT SENTINEL masters`",
                       st->master, msg);
    return NULL;
}

int wf__url_target(const wf__url *u, char *host, size_t size, int *port, wf_error *err)
{
    if (!u->sentinel) {
        if (!u->host || strlen(u->host) >= size)
            return wf_error_set(err, WF_ERR_URL, "URL has no usable host");
        memcpy(host, u->host, strlen(u->host) + 1);
        *port = u->port;
        return WF_OK;
    }
    int rc = WF_ERR_CONNECT;
    resolve(u, host, size, port, 0, &rc, err);
    return rc;
}

redisContext *wf__sentinel_connect(const wf__url *u, wf_error *err)
{
    char host[256];
    int port = 0, rc = WF_ERR_CONNECT;
    return resolve(u, host, sizeof host, &port, 1, &rc, err);
}
