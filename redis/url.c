/* url.c - parsing Redis URLs into connection settings.
 *
 * Accepted: redis://[user[:password]@]host[:port][/db][?query], unix:///path[?query] and
 * redis+sentinel://[user[:password]@]h1:p1,h2:p2/master[/db][?query] (sentinel.c),
 * redis+cluster://[user[:password]@]h1:p1,h2:p2[/][?query] (cluster.c), where the
 * query may set prefix, db, timeout_ms, max_payload, retention_ms and password_file (a file whose
 * first line is the password, so it never appears in the URL, a process list or a log). Hostile
 * input is expected (the URL may come from a config file or an environment variable), so every part
 * is bounded and checked, and error messages name the offending part but never echo a password.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "wf_redis.h"

#define URL_MAX      4096
#define PASSWORD_MAX 1024

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL on a bad escape or an embedded NUL. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) goto bad;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) goto bad;
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

static int parse_long(const char *s, size_t n, long long lo, long long hi, long long *out)
{
    if (n == 0 || n > 19) return -1;
    char buf[24];
    memcpy(buf, s, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)buf[i])) return -1;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int prefix_valid(const char *p)
{
    /* Walks to the NUL rather than to strlen(p): the same bytes, but clang-analyzer, which
     * takes strlen() of pct_decode's buffer as unknown, then sees every byte read is written. */
    size_t n = 0;
    for (; n <= 64 && p[n]; n++)
        if (!isalnum((unsigned char)p[n]) && p[n] != '_' && p[n] != '-' && p[n] != '.') return 0;
    return n > 0 && n <= 64;
}

/* Reads the password from `path` (the URL's password_file option): the file's first line, without
 * its line end, at most PASSWORD_MAX bytes. The password is never echoed; the path is. */
static int read_password_file(const char *path, wf__url *u, wf_error *err)
{
    if (u->password)
        return wf_error_set(err, WF_ERR_URL,
                            "the URL gives a password and a password_file: use only one");
    FILE *f = fopen(path, "re");
    if (!f)
        return wf_error_set(err, WF_ERR_URL, "cannot read the URL's password_file %s: %s", path,
                            strerror(errno));
    char buf[PASSWORD_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    int rc = WF_OK;
    if (n == 0 || n > PASSWORD_MAX || memchr(buf, '\0', n) != NULL || strlen(buf) != n)
        rc = wf_error_set(err, WF_ERR_URL,
                          "the URL's password_file %s must hold a password of 1-%d bytes on its "
                          "first line",
                          path, PASSWORD_MAX);
    else if (!(u->password = strdup(buf)))
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    volatile char *p = buf; /* do not leave the secret on the stack */
    for (size_t i = 0; i < sizeof buf; i++) p[i] = 0;
    return rc;
}

/* Query text is echoed in messages only when it looks like an option name (a password never
 * does: the authority part is never echoed, and a stray query key is shown as "...") . */
static int echo_len(const char *s, size_t n)
{
    if (n == 0 || n > 40) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) return 0;
    return (int)n;
}

static int parse_query(const char *q, wf__url *u, wf_error *err)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        if (!eq)
            return wf_error_set(err, WF_ERR_URL, "URL query part '%.*s' has no '='",
                                echo_len(q, len) ? echo_len(q, len) : 3,
                                echo_len(q, len) ? q : "...");
        size_t klen = (size_t)(eq - q), vlen = len - klen - 1;
        const char *v = eq + 1;
        long long n;
        if (klen == 6 && memcmp(q, "prefix", 6) == 0) {
            char *p = pct_decode(v, vlen);
            if (!p || !prefix_valid(p)) {
                free(p);
                return wf_error_set(err, WF_ERR_URL,
                                    "URL prefix must be 1-64 characters of [A-Za-z0-9._-]");
            }
            free(u->prefix);
            u->prefix = p;
        } else if (klen == 2 && memcmp(q, "db", 2) == 0) {
            if (parse_long(v, vlen, 0, 1 << 20, &n))
                return wf_error_set(err, WF_ERR_URL, "URL db must be a number >= 0");
            u->db = (int)n;
        } else if (klen == 10 && memcmp(q, "timeout_ms", 10) == 0) {
            if (parse_long(v, vlen, 1, 3600000, &n))
                return wf_error_set(err, WF_ERR_URL, "URL timeout_ms must be 1..3600000");
            u->timeout_ms = (int)n;
        } else if (klen == 11 && memcmp(q, "max_payload", 11) == 0) {
            if (parse_long(v, vlen, 1, 512LL * 1024 * 1024, &n))
                return wf_error_set(err, WF_ERR_URL, "URL max_payload must be 1..536870912 bytes");
            u->max_payload = (size_t)n;
        } else if (klen == 13 && memcmp(q, "password_file", 13) == 0) {
            char *path = pct_decode(v, vlen);
            if (!path || path[0] != '/') {
                free(path);
                return wf_error_set(err, WF_ERR_URL, "URL password_file must be an absolute path");
            }
            int rc = read_password_file(path, u, err);
            free(path);
            if (rc != WF_OK) return rc;
        } else if (klen == 12 && memcmp(q, "retention_ms", 12) == 0) {
            if (parse_long(v, vlen, 0, 100LL * 365 * 24 * 3600 * 1000, &n))
                return wf_error_set(err, WF_ERR_URL, "URL retention_ms must be >= 0");
            u->retention_ms = n;
        } else {
            return wf_error_set(err, WF_ERR_URL,
                                "unknown URL option '%.*s' (known: prefix, db, timeout_ms, "
                                "max_payload, retention_ms, password_file)",
                                echo_len(q, klen) ? echo_len(q, klen) : 3,
                                echo_len(q, klen) ? q : "...");
        }
        q = amp ? amp + 1 : q + len;
    }
    return WF_OK;
}

int wf__url_userinfo(const char **sp, size_t *np, wf__url *u, wf_error *err)
{
    const char *s = *sp, *at = NULL;
    size_t n = *np;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == '@') {
            at = s + i - 1;
            break;
        }
    if (!at) return WF_OK;
    const char *colon = memchr(s, ':', (size_t)(at - s));
    size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
    if (ulen > 0 && !(u->user = pct_decode(s, ulen)))
        return wf_error_set(err, WF_ERR_URL, "bad percent-escape in the URL's user name");
    if (colon && !(u->password = pct_decode(colon + 1, (size_t)(at - colon - 1))))
        return wf_error_set(err, WF_ERR_URL, "bad percent-escape in the URL's password");
    *np = n - (size_t)(at + 1 - s);
    *sp = at + 1;
    return WF_OK;
}

/* Parses "[user[:password]@]host[:port][/db]" of a redis:// URL. */
static int parse_authority(const char *s, size_t n, wf__url *u, wf_error *err)
{
    int rc = wf__url_userinfo(&s, &n, u, err);
    if (rc != WF_OK) return rc;
    const char *slash = memchr(s, '/', n);
    size_t hlen = slash ? (size_t)(slash - s) : n;
    if (slash) {
        long long db;
        size_t dlen = n - hlen - 1;
        if (dlen > 0) {
            if (parse_long(slash + 1, dlen, 0, 1 << 20, &db))
                return wf_error_set(err, WF_ERR_URL, "URL path must be a database number");
            u->db = (int)db;
        }
    }
    const char *portp = NULL;
    size_t hostlen = hlen;
    if (hlen > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', hlen);
        if (!close) return wf_error_set(err, WF_ERR_URL, "URL has '[' without ']' in the host");
        u->host = strndup(s + 1, (size_t)(close - s - 1));
        if (close + 1 < s + hlen) {
            if (close[1] != ':') return wf_error_set(err, WF_ERR_URL, "bad text after ']'");
            portp = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', hlen);
        if (colon) {
            hostlen = (size_t)(colon - s);
            portp = colon + 1;
        }
        if (hostlen == 0) return wf_error_set(err, WF_ERR_URL, "URL has no host");
        u->host = strndup(s, hostlen);
    }
    if (!u->host) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    for (const char *p = u->host; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_:", *p))
            return wf_error_set(err, WF_ERR_URL,
                                "URL host contains a character not allowed "
                                "in a host name");
    if (portp) {
        long long port;
        if (parse_long(portp, (size_t)(s + hlen - portp), 1, 65535, &port))
            return wf_error_set(err, WF_ERR_URL, "URL port must be a number 1..65535");
        u->port = (int)port;
    }
    return WF_OK;
}

static void make_redacted(wf__url *u)
{
    if (u->sentinel || u->seeds) {
        u->redacted = u->sentinel ? wf__sentinel_redacted(u) : wf__cluster_redacted(u);
        return;
    }
    char buf[URL_MAX + 64];
    int v6 = !u->unix_path && strchr(u->host, ':') != NULL;
    if (u->unix_path)
        snprintf(buf, sizeof buf, "unix://%s?db=%d&prefix=%s", u->unix_path, u->db, u->prefix);
    else
        snprintf(buf, sizeof buf, "redis://%s%s%s%s%s%s:%d/%d?prefix=%s", u->user ? u->user : "",
                 u->password ? ":***" : "", (u->user || u->password) ? "@" : "", v6 ? "[" : "",
                 u->host, v6 ? "]" : "", u->port, u->db, u->prefix);
    u->redacted = strdup(buf);
}

int wf__url_parse(const char *url, wf__url *u, wf_error *err)
{
    memset(u, 0, sizeof *u);
    if (!url || !*url) url = getenv("WF_REDIS_URL");
    if (!url || !*url) url = "redis://127.0.0.1:6379";
    size_t n = strnlen(url, URL_MAX + 1);
    if (n > URL_MAX) return wf_error_set(err, WF_ERR_URL, "URL longer than %d bytes", URL_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || (unsigned char)url[i] == 0x7f)
            return wf_error_set(err, WF_ERR_URL, "URL contains a space or control character");
    u->port = 6379;
    u->timeout_ms = WF__DEFAULT_TIMEOUT_MS;
    u->max_payload = WF__DEFAULT_MAX_PAYLOAD;
    u->retention_ms = WF__DEFAULT_RETENTION_MS;
    u->prefix = strdup("wf");
    if (!u->prefix) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    int rc;
    const char *q = strchr(url, '?');
    size_t main_len = q ? (size_t)(q - url) : n;
    if (strncmp(url, "redis://", 8) == 0) {
        rc = parse_authority(url + 8, main_len - 8, u, err);
    } else if (strncmp(url, "redis+sentinel://", 17) == 0) {
        rc = wf__sentinel_parse(url + 17, main_len - 17, u, err);
    } else if (strncmp(url, "redis+cluster://", 16) == 0) {
        rc = wf__cluster_url_parse(url + 16, main_len - 16, u, err);
    } else if (strncmp(url, "unix://", 7) == 0) {
        if (main_len <= 7 || url[7] != '/')
            rc = wf_error_set(err, WF_ERR_URL, "unix URL needs an absolute path: unix:///path");
        else if (!(u->unix_path = strndup(url + 7, main_len - 7)))
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        else
            rc = WF_OK;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        rc = wf_error_set(err, WF_ERR_URL,
                          "rediss:// (TLS) is not supported by this build's hiredis; connect "
                          "through a TLS sidecar such as stunnel (see docs/security.md)");
    } else {
        rc = wf_error_set(err, WF_ERR_URL,
                          "URL must start with redis://, redis+sentinel://, redis+cluster:// or "
                          "unix://");
    }
    if (rc == WF_OK && q) rc = parse_query(q + 1, u, err);
    if (rc == WF_OK && u->seeds && u->db != 0)
        rc = wf_error_set(err, WF_ERR_URL, "Redis Cluster has only db 0; drop db from the URL");
    if (rc == WF_OK && !u->password) {
        const char *pw = getenv("WF_REDIS_PASSWORD");
        if (pw && *pw && !(u->password = strdup(pw)))
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    if (rc == WF_OK) {
        make_redacted(u);
        if (!u->redacted) rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    }
    if (rc != WF_OK) wf__url_free(u);
    return rc;
}

void wf__url_free(wf__url *u)
{
    if (!u) return;
    free(u->host);
    free(u->unix_path);
    free(u->user);
    if (u->password) {
        /* Do not leave the secret lying in freed memory. */
        volatile char *p = u->password;
        while (*p) *p++ = 0;
        free(u->password);
    }
    free(u->prefix);
    free(u->redacted);
    wf__sentinel_free(u->sentinel);
    wf__sentinel_free(u->seeds);
    memset(u, 0, sizeof *u);
}
