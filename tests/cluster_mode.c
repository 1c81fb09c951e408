/* cluster_mode.c - the harness's cluster mode (harness.h): every suite that runs on "a Redis"
 * also runs on the shared 3-master, 3-replica cluster that tests/cluster_fixture.c starts once
 * per ctest run. libwf, the worker and the CLI are handed the cluster's URL and route for
 * themselves; what is here serves only the tests' own asserting connection, which must reach the
 * key's master the way any cluster client does: by following MOVED and ASK, not by computing
 * slots (so a slot bug in libwf cannot hide behind the same bug here). Keyless commands that
 * mean "the whole data set" (DBSIZE, KEYS, FLUSHALL, CONFIG SET, INFO clients, FUNCTION FLUSH,
 * ...) go to every master and their replies are merged. Also running one of libwf's scripts on a
 * test's connection or the shared cluster (script_call.h). */
#include "harness.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "script_call.h"

#define MAX_MASTERS 16
#define MAX_CONNS   32

/* Per test process (Criterion forks one per test): read from the fixture file on first use. */
static struct {
    int checked; /* env looked at */
    int on;
    char url[128];
    int masters[MAX_MASTERS]; /* ports of the masters, from CLUSTER SLOTS at wf_test_redis_start */
    int nmasters;
    struct {
        int port;
        redisContext *c;
    } conn[MAX_CONNS];
    wf__url parsed;
    wf__rc *rc;
} cm;

int wf_test_cluster_mode(void)
{
    if (!cm.checked) {
        cm.checked = 1;
        const char *file = getenv("WF_TEST_CLUSTER_FILE");
        if (file && *file) {
            char *text = wf_test_slurp(file);
            if (sscanf(text, "url %127s", cm.url) == 1)
                cm.on = 1;
            else
                fprintf(stderr, "harness: WF_TEST_CLUSTER_FILE=%s holds no cluster URL\n", file);
            free(text);
        }
    }
    return cm.on;
}

const char *wf_test_cluster_url(void)
{
    return wf_test_cluster_mode() ? cm.url : NULL;
}

/* A cached connection to 127.0.0.1:port (the cluster runs on loopback only). */
static redisContext *node_conn(int port)
{
    int free_slot = -1;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (cm.conn[i].c && cm.conn[i].port == port) {
            if (!cm.conn[i].c->err) return cm.conn[i].c;
            redisFree(cm.conn[i].c);
            cm.conn[i].c = NULL;
        }
        if (!cm.conn[i].c && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) return NULL;
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    cm.conn[free_slot].port = port;
    cm.conn[free_slot].c = c;
    return c;
}

static void conns_close(void)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (cm.conn[i].c) {
            redisFree(cm.conn[i].c);
            cm.conn[i].c = NULL;
        }
    if (cm.rc) {
        wf__rc_free(cm.rc);
        wf__url_free(&cm.parsed);
        cm.rc = NULL;
    }
}

static void set_error(redisContext *c, const char *why)
{
    c->err = REDIS_ERR_IO;
    snprintf(c->errstr, sizeof c->errstr, "%s", why);
}

static redisReply *send_formatted(redisContext *c, const char *cmd, size_t len)
{
    void *r = NULL;
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) return NULL;
    if (redisGetReply(c, &r) != REDIS_OK) return NULL;
    return r;
}

/* The masters serving slots now, as a node of the cluster sees them. */
static int masters_load(int seed_port)
{
    redisContext *c = node_conn(seed_port);
    redisReply *r = c ? redisCommand(c, "CLUSTER SLOTS") : NULL;
    cm.nmasters = 0;
    if (r && r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *range = r->element[i];
            if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
            const redisReply *m = range->element[2];
            if (m->type != REDIS_REPLY_ARRAY || m->elements < 2) continue;
            int port = (int)m->element[1]->integer, seen = 0;
            for (int k = 0; k < cm.nmasters; k++) seen |= cm.masters[k] == port;
            if (!seen && cm.nmasters < MAX_MASTERS) cm.masters[cm.nmasters++] = port;
        }
    if (r) freeReplyObject(r);
    return cm.nmasters;
}

int wf__test_cluster_attach(wf_test_redis *r)
{
    int seed = 0;
    const char *p = strstr(cm.url, "://127.0.0.1:");
    if (p) seed = atoi(p + strlen("://127.0.0.1:"));
    if (seed <= 0 || masters_load(seed) < 1) {
        fprintf(stderr, "harness: the shared cluster at %s does not answer\n", cm.url);
        return -1;
    }
    /* A clean data set per test, as a fresh server would be, and the limits some tests lower
     * (and restore, unless they failed midway: one failure must not fail every suite after). */
    for (int i = 0; i < cm.nmasters; i++) {
        redisContext *c = node_conn(cm.masters[i]);
        redisReply *limits = c ? redisCommand(c, "CONFIG SET maxclients 10000") : NULL;
        if (limits) freeReplyObject(limits);
        limits = c ? redisCommand(c, "CONFIG SET maxmemory 0") : NULL;
        if (limits) freeReplyObject(limits);
        redisReply *f = c ? redisCommand(c, "FLUSHALL") : NULL;
        int ok = f && f->type == REDIS_REPLY_STATUS;
        if (f) freeReplyObject(f);
        if (!ok) {
            fprintf(stderr, "harness: FLUSHALL on 127.0.0.1:%d failed\n", cm.masters[i]);
            return -1;
        }
    }
    snprintf(r->dir, sizeof r->dir, "/tmp/wf-test-cluster-XXXXXX");
    if (!mkdtemp(r->dir)) return -1;
    snprintf(r->url, sizeof r->url, "%s", cm.url);
    r->port = seed;
    r->pid = 0;
    r->cluster = 1;
    return 0;
}

void wf__test_cluster_detach(wf_test_redis *r)
{
    (void)r;
    conns_close();
}

/* The command name (upper-cased) and, for two-word commands, the sub-command. */
static void command_words(const char *cmd, size_t len, char *name, char *sub, size_t size)
{
    name[0] = sub[0] = '\0';
    const char *p = cmd, *end = cmd + len;
    char *out[2] = {name, sub};
    if (p < end && *p == '*') p = memchr(p, '\n', (size_t)(end - p));
    for (int w = 0; w < 2 && p && p + 1 < end; w++) {
        p++;
        if (*p != '$') return;
        size_t n = (size_t)strtoul(p + 1, NULL, 10);
        p = memchr(p, '\n', (size_t)(end - p));
        if (!p || p + 1 + n > end) return;
        size_t k = n < size - 1 ? n : size - 1;
        for (size_t i = 0; i < k; i++) out[w][i] = (char)toupper((unsigned char)p[1 + i]);
        out[w][k] = '\0';
        p += 1 + n + 1; /* past the bulk and its \r; the loop's p++ steps over \n */
    }
}

static int fans_out(const char *name, const char *sub)
{
    static const char *whole[] = {"DBSIZE", "KEYS", "FLUSHALL", "FLUSHDB", NULL};
    for (int i = 0; whole[i]; i++)
        if (!strcmp(name, whole[i])) return 1;
    if (!strcmp(name, "SCRIPT") && !strcmp(sub, "FLUSH")) return 1;
    if (!strcmp(name, "FUNCTION") &&
        (!strcmp(sub, "FLUSH") || !strcmp(sub, "DELETE") || !strcmp(sub, "LOAD")))
        return 1;
    if (!strcmp(name, "CONFIG") && (!strcmp(sub, "SET") || !strcmp(sub, "RESETSTAT"))) return 1;
    if (!strcmp(name, "MEMORY") && !strcmp(sub, "PURGE")) return 1;
    if (!strcmp(name, "CLIENT") && !strcmp(sub, "KILL")) return 1;
    if (!strcmp(name, "INFO") && !strcmp(sub, "CLIENTS")) return 1;
    return 0;
}

/* Merges `add` into `acc` (both owned; add is consumed): integers add up, arrays and strings
 * (INFO) concatenate, the first error wins, anything else keeps the first reply. */
static redisReply *merge(redisReply *acc, redisReply *add)
{
    if (!acc) return add;
    if (!add) return acc;
    if (acc->type == REDIS_REPLY_ERROR) {
        freeReplyObject(add);
        return acc;
    }
    if (add->type == REDIS_REPLY_ERROR) {
        freeReplyObject(acc);
        return add;
    }
    if (acc->type == REDIS_REPLY_INTEGER && add->type == REDIS_REPLY_INTEGER)
        acc->integer += add->integer;
    if (acc->type == REDIS_REPLY_STRING && add->type == REDIS_REPLY_STRING) {
        char *joined = realloc(acc->str, acc->len + add->len + 1);
        if (joined) {
            memcpy(joined + acc->len, add->str, add->len);
            acc->len += add->len;
            joined[acc->len] = '\0';
            acc->str = joined;
        }
    }
    if (acc->type == REDIS_REPLY_ARRAY && add->type == REDIS_REPLY_ARRAY && add->elements) {
        redisReply **e =
            realloc(acc->element, (acc->elements + add->elements) * sizeof *acc->element);
        if (e) {
            memcpy(e + acc->elements, add->element, add->elements * sizeof *e);
            acc->element = e;
            acc->elements += add->elements;
            free(add->element); /* its children now belong to acc */
            add->element = NULL;
            add->elements = 0;
        }
    }
    freeReplyObject(add);
    return acc;
}

static redisReply *fan_out(redisContext *c, const char *cmd, size_t len)
{
    redisReply *acc = NULL;
    for (int i = 0; i < cm.nmasters; i++) {
        /* The caller's own connection for its node: CLIENT KILL spares the connection it
         * comes from, and the test's connection must be that one. */
        redisContext *n = c->tcp.port == cm.masters[i] ? c : node_conn(cm.masters[i]);
        redisReply *r = n ? send_formatted(n, cmd, len) : NULL;
        if (!r) {
            if (acc) freeReplyObject(acc);
            set_error(c, "cluster master did not answer");
            return NULL;
        }
        acc = merge(acc, r);
    }
    return acc;
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the target port, and whether it is an ASK. */
static int redirect_of(const redisReply *r, int *ask)
{
    if (!r || r->type != REDIS_REPLY_ERROR) return 0;
    int moved = !strncmp(r->str, "MOVED ", 6);
    *ask = !strncmp(r->str, "ASK ", 4);
    if (!moved && !*ask) return 0;
    const char *colon = strrchr(r->str, ':');
    return colon ? atoi(colon + 1) : 0;
}

static redisReply *route(redisContext *c, const char *cmd, size_t len)
{
    if (!wf_test_cluster_mode()) return send_formatted(c, cmd, len);
    char name[32], sub[32];
    command_words(cmd, len, name, sub, sizeof name);
    /* Only a connection to the cluster fans out: a test may also hold one to a server of its
     * own (extra_conf), which is asked alone. */
    int on_cluster = 0;
    for (int i = 0; i < cm.nmasters; i++) on_cluster |= c->tcp.port == cm.masters[i];
    if (on_cluster && fans_out(name, sub)) return fan_out(c, cmd, len);
    redisContext *at = c;
    redisReply *r = send_formatted(at, cmd, len);
    for (int hops = 0; hops < 5; hops++) {
        int ask = 0, port = redirect_of(r, &ask);
        if (!port) return r;
        freeReplyObject(r);
        at = node_conn(port);
        if (!at) {
            set_error(c, "redirected to a node that does not answer");
            return NULL;
        }
        if (ask) {
            redisReply *a = redisCommand(at, "ASKING");
            if (a) freeReplyObject(a);
        }
        r = send_formatted(at, cmd, len);
    }
    return r;
}

redisReply *wf_test_vcommand(redisContext *c, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0) return NULL;
    redisReply *r = route(c, cmd, (size_t)len);
    free(cmd);
    return r;
}

redisReply *wf_test_command(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = wf_test_vcommand(c, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *wf_test_command_argv(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) return NULL;
    redisReply *r = route(c, cmd, (size_t)len);
    free(cmd);
    return r;
}

wf__rc *wf_test_cluster_rc(void)
{
    if (!wf_test_cluster_mode()) return NULL;
    if (cm.rc) return cm.rc;
    wf_error err = {0};
    if (wf__url_parse(cm.url, &cm.parsed, &err) != WF_OK) return NULL;
    cm.rc = wf__rc_open(&cm.parsed, &err);
    if (!cm.rc) {
        fprintf(stderr, "harness: %s\n", err.message);
        wf__url_free(&cm.parsed);
    }
    return cm.rc;
}

redisReply *wf_test_script(redisContext *c, wf__script s, int nkeys, const char *const *keys,
                           int nargs, const char *const *args, const size_t *lens, wf_error *err)
{
    wf__rc *shared = wf_test_cluster_rc();
    if (shared) return wf__script_call(shared, s, nkeys, keys, nargs, args, lens, err);
    wf__rc *w = wf__rc_wrap(c);
    redisReply *r = w ? wf__script_call(w, s, nkeys, keys, nargs, args, lens, err) : NULL;
    wf__rc_free(w);
    return r;
}

int wf_test_ensure_group(redisContext *c, const char *queue, wf_error *err)
{
    wf__rc *shared = wf_test_cluster_rc();
    if (shared) return wf__ensure_group(shared, queue, err);
    wf__rc *w = wf__rc_wrap(c);
    int code = w ? wf__ensure_group(w, queue, err) : WF_ERR_NOMEM;
    wf__rc_free(w);
    return code;
}

int wf_test_functions_load(redisContext *c, wf_error *err)
{
    wf__rc *shared = wf_test_cluster_rc();
    if (shared) return wf__functions_load(shared, err);
    wf__rc *w = wf__rc_wrap(c);
    int code = w ? wf__functions_load(w, err) : WF_ERR_NOMEM;
    wf__rc_free(w);
    return code;
}
