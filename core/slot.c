/* slot.c - Redis Cluster's key -> slot mapping and where a command's routing key sits.
 *
 * The slot is CRC16 (XMODEM: polynomial 0x1021, initial value 0, no reflection) of the key's
 * hash tag - the bytes between the first '{' and the next '}' when that is not empty, else the
 * whole key - modulo 16384, as the cluster specification defines it. wf puts every key one Lua
 * call touches under one tag ({W} for a workflow, {ev:NAME} for an event), so one slot answers
 * each call.
 *
 * Routing works on commands already formatted as RESP (what hiredis sends), so the synchronous
 * and async routers can follow a MOVED or ASK by re-sending the same bytes elsewhere.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "slot.h"

static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int wf__key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - open - 1);
        }
    }
    return crc16(key, len) & (WF__SLOTS - 1);
}

/* Reads a RESP integer line at p ("123\r\n"); returns the position after it or NULL. */
static const char *resp_int(const char *p, const char *end, long long *out)
{
    long long v = 0;
    int any = 0;
    while (p < end && isdigit((unsigned char)*p)) {
        if (v > (1LL << 40)) return NULL;
        v = v * 10 + (*p++ - '0');
        any = 1;
    }
    if (!any || p + 2 > end || p[0] != '\r' || p[1] != '\n') return NULL;
    *out = v;
    return p + 2;
}

int wf__resp_args(const char *cmd, size_t len, int max, const char **argv, size_t *argvlen)
{
    const char *p = cmd, *end = cmd + len;
    long long n;
    if (p >= end || *p != '*' || !(p = resp_int(p + 1, end, &n))) return -1;
    int got = 0;
    for (long long i = 0; i < n; i++) {
        long long l;
        if (p >= end || *p != '$' || !(p = resp_int(p + 1, end, &l))) return -1;
        if (l > end - p - 2) return -1;
        if (got < max) {
            argv[got] = p;
            argvlen[got] = (size_t)l;
            got++;
        }
        p += l + 2;
    }
    return (int)n;
}

static int is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

int wf__cmd_slot(const char *cmd, size_t len)
{
    enum { MAXA = 64 };
    const char *a[MAXA];
    size_t al[MAXA];
    int n = wf__resp_args(cmd, len, MAXA, a, al);
    if (n > MAXA) n = MAXA;
    if (n < 2) return -1;
    if (is(a[0], al[0], "FCALL") || is(a[0], al[0], "FCALL_RO") || is(a[0], al[0], "EVALSHA") ||
        is(a[0], al[0], "EVAL")) {
        if (n < 4 || (al[2] == 1 && a[2][0] == '0')) return -1;
        return wf__key_slot(a[3], al[3]);
    }
    if (is(a[0], al[0], "XREADGROUP") || is(a[0], al[0], "XREAD")) {
        for (int i = 1; i + 1 < n; i++)
            if (is(a[i], al[i], "STREAMS")) return wf__key_slot(a[i + 1], al[i + 1]);
        return -1;
    }
    static const char *const keyless[] = {
        "PING",   "TIME",   "INFO", "SCRIPT",  "CLUSTER", "AUTH",     "SELECT",
        "ASKING", "CLIENT", "ROLE", "DBSIZE",  "CONFIG",  "FLUSHALL", "WAIT",
        "ECHO",   "MULTI",  "EXEC", "DISCARD", "HELLO",   "COMMAND",  "FUNCTION"};
    for (size_t i = 0; i < sizeof keyless / sizeof keyless[0]; i++)
        if (is(a[0], al[0], keyless[i])) return -1;
    return wf__key_slot(a[1], al[1]);
}

int wf__redirect_parse(const char *msg, size_t len, int *ask, int *slot, char *host, size_t hostsz,
                       int *port)
{
    int isask;
    if (len > 6 && memcmp(msg, "MOVED ", 6) == 0)
        isask = 0;
    else if (len > 4 && memcmp(msg, "ASK ", 4) == 0)
        isask = 1;
    else
        return 0;
    const char *p = msg + (isask ? 4 : 6), *end = msg + len;
    long s = 0;
    if (p >= end || !isdigit((unsigned char)*p)) return 0;
    while (p < end && isdigit((unsigned char)*p)) s = s * 10 + (*p++ - '0');
    if (p >= end || *p != ' ' || s >= WF__SLOTS) return 0;
    p++;
    const char *colon = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == ':') colon = q; /* the last ':' (IPv6 addresses contain colons) */
    if (!colon || colon == p || (size_t)(colon - p) >= hostsz) return 0;
    long pt = 0;
    for (const char *q = colon + 1; q < end; q++) {
        if (!isdigit((unsigned char)*q) || pt > 65535) return 0;
        pt = pt * 10 + (*q - '0');
    }
    if (pt < 1 || pt > 65535) return 0;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    *ask = isask;
    *slot = (int)s;
    *port = (int)pt;
    return 1;
}
