/* aroute.c - wf__ar, the one async Redis router (aroute.h): a command's bytes kept until its
 * final reply, routing by slot or lane, and what each reply asks for (wf__reply_action): the
 * library loaded and the FCALL sent again after "Function not found", MOVED and ASK followed, a
 * refusal for now waited out on a timer, a lost node or READONLY told to the owner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "aroute_impl.h"
#include "reply_action.h"

#define MAX_HOPS   8    /* redirects and library loads one command follows */
#define NOTE_EVERY 5000 /* ms between two WF__AR_REFUSED notes */

typedef struct wf__fwd {
    wf__ar *ar;
    redisCallbackFn *fn;
    void *priv;
    char *cmd; /* the formatted command (RESP) */
    size_t len;
    int lane;   /* >= 0: the fixed lane; -1: routed by slot */
    int script; /* 1: an FCALL of the library, loaded once if Redis lacks it; 0: not, or done */
    int hops;
    wf__ar_merge *m; /* a part of a split XREADGROUP: the reply goes there */
    /* Waiting on `ev` to be sent again (in ar->refused meanwhile). */
    struct event *ev;
    int retries;
    int64_t deadline_mono; /* set at the first wait: give up rather than wait past it */
    struct wf__fwd *rnext, *rprev;
} wf__fwd;

static void note(wf__ar *ar, wf__ar_event ev, redisAsyncContext *ac, const redisReply *r)
{
    wf__ar_note n = {.ev = ev, .ac = ac, .r = r, .lane = -1};
    if (ar->cfg.note) ar->cfg.note(ar->cfg.owner, &n);
}

static void fwd_free(wf__fwd *f)
{
    if (f->ev) event_free(f->ev);
    free(f->cmd);
    free(f);
}

static void deliver(wf__fwd *f, redisAsyncContext *ac, redisReply *r)
{
    if (!ac) ac = &f->ar->stub;
    if (f->m)
        wf__ar_merge_part(f->m, ac, r);
    else if (f->fn)
        f->fn(ac, r, f->priv);
    fwd_free(f);
}

static void fwd_reply(redisAsyncContext *ac, void *reply, void *privdata);

static redisAsyncContext *ctx_for(wf__ar *ar, int lane, int node)
{
    if (ar->cfg.ctx) return ar->cfg.ctx(ar->cfg.owner, lane, node);
    return lane < 0 ? wf__ar_node_ctx(ar, node) : NULL;
}

static int send_on(wf__fwd *f, redisAsyncContext *ac)
{
    return ac && redisAsyncFormattedCommand(ac, fwd_reply, f, f->cmd, f->len) == REDIS_OK ? 0 : -1;
}

/* Sends f where it belongs now: its lane, or its slot's owner (-1: keyless, or one server). 0,
 * or -1 (not sent; the caller still owns f). */
static int route(wf__fwd *f)
{
    wf__ar *ar = f->ar;
    int node = -1;
    if (ar->cfg.map) {
        int slot = wf__cmd_slot(f->cmd, f->len);
        node = slot >= 0 ? ar->cfg.map->owner[slot] : -1;
    }
    return send_on(f, ctx_for(ar, f->lane, node));
}

/* Redis answered "Function not found" on `ac` (it lost the library, or a new master never had
 * it): FUNCTION LOAD there, then the same FCALL after it on the same connection, so the call runs
 * once the library is in. Without REPLACE: a library `wf` that is there already is left to the
 * synchronous load at connect, which knows which version to keep (wf__functions_load). 0 or -1. */
static int load_and_resend(wf__fwd *f, redisAsyncContext *ac)
{
    if (redisAsyncCommand(ac, NULL, NULL, "FUNCTION LOAD %b", wf__library_src, wf__library_len) !=
        REDIS_OK)
        return -1;
    f->script = 0;
    return send_on(f, ac);
}

/* ---- sending again after a wait --------------------------------------------------------------
 */

static void refused_unlink(wf__fwd *f)
{
    wf__ar *ar = f->ar;
    /* The head test first: clang-analyzer cannot prove head->rprev is NULL, and otherwise saw
     * the flush at close free the head and read it again. */
    if (ar->refused == f)
        ar->refused = f->rnext;
    else if (f->rprev)
        f->rprev->rnext = f->rnext;
    if (f->rnext) f->rnext->rprev = f->rprev;
    f->rnext = f->rprev = NULL;
}

static void lost(wf__fwd *f, redisAsyncContext *ac, redisReply *r);

static void resend_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wf__fwd *f = arg;
    refused_unlink(f);
    /* route() picks the context of now: the one that refused may have been replaced. */
    if (f->ar->closing)
        deliver(f, NULL, NULL);
    else if (route(f) != 0)
        lost(f, NULL, NULL);
}

/* Sends f again after the backoff, or, past its deadline (or when closing), gives up with `r`
 * (the refusal; NULL for a lost node). */
static void retry_later(wf__fwd *f, redisAsyncContext *ac, redisReply *r)
{
    wf__ar *ar = f->ar;
    int64_t now = wf__mono_ms();
    int ms = wf__reply_retry_ms(f->retries);
    if (f->retries == 0) f->deadline_mono = now + ar->cfg.budget_ms;
    if (!f->ev) f->ev = evtimer_new(ar->cfg.base, resend_cb, f);
    if (ar->closing || !f->ev || now + ms > f->deadline_mono) {
        deliver(f, ac, r);
        return;
    }
    f->retries++;
    if (wf__reply_action(r) == WF__ACT_RETRY && now - ar->refused_note_mono >= NOTE_EVERY &&
        ar->cfg.note) {
        ar->refused_note_mono = now;
        wf__ar_note n = {WF__AR_REFUSED, ac, r, f->lane, ms, ar->cfg.budget_ms};
        ar->cfg.note(ar->cfg.owner, &n);
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(f->ev, &tv);
    f->rnext = ar->refused;
    f->rprev = NULL;
    if (ar->refused) ar->refused->rprev = f;
    ar->refused = f;
}

/* `ac` was lost (r NULL; ac NULL: no context could be had) or answered READONLY (r). The owner
 * hears of it; f is sent again later (resend_lost) or answered NULL at once. */
static void lost(wf__fwd *f, redisAsyncContext *ac, redisReply *r)
{
    wf__ar *ar = f->ar;
    wf__ar_event ev = r ? WF__AR_READONLY : WF__AR_LOST;
    if (ar->cfg.resend_lost && !ar->closing) {
        note(ar, ev, ac, r);
        retry_later(f, ac, r);
        return;
    }
    deliver(f, ac, NULL);
    /* A lost context the owner hears of from hiredis (its disconnect callback). */
    if (r) note(ar, ev, ac, r);
}

/* A redirect (MOVED / ASK). 0 when f was taken care of (sent, or waiting to be). */
static int redirect(wf__fwd *f, const redisReply *r)
{
    wf__ar *ar = f->ar;
    int ask = 0, slot = 0, port = 0;
    char host[256];
    if (!ar->cfg.map || !wf__redirect_parse(r->str, r->len, &ask, &slot, host, sizeof host, &port))
        return -1;
    int node = wf__slotmap_node(ar->cfg.map, host, port);
    if (node >= 0 && !ask && slot >= 0 && slot < WF__SLOTS)
        ar->cfg.map->owner[slot] = (int16_t)node;
    if (node >= 0 && f->lane < 0) {
        redisAsyncContext *to = ctx_for(ar, -1, node);
        if (to && ask) redisAsyncCommand(to, NULL, NULL, "ASKING");
        if (send_on(f, to) == 0) return 0;
        if (ar->cfg.resend_lost) {
            lost(f, NULL, NULL);
            return 0;
        }
    }
    if (f->lane >= 0 && ar->cfg.note) {
        /* A lane is tied to its node: the owner re-maps it. */
        wf__ar_note n = {.ev = WF__AR_LANE_MOVED, .r = r, .lane = f->lane};
        ar->cfg.note(ar->cfg.owner, &n);
    }
    return -1;
}

static void fwd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__fwd *f = privdata;
    wf__ar *ar = f->ar;
    redisReply *r = reply;
    if (!r) {
        lost(f, ac, NULL);
        return;
    }
    wf__reply_act act = wf__reply_action(r);
    if (act == WF__ACT_DONE && ar->refused_since_mono) {
        wf__ar_note n = {.ev = WF__AR_ACCEPTED, .ac = ac, .lane = -1};
        n.ms = wf__mono_ms() - ar->refused_since_mono;
        ar->refused_since_mono = 0;
        if (ar->cfg.note) ar->cfg.note(ar->cfg.owner, &n);
    }
    if (act == WF__ACT_DONE || ar->closing || f->hops >= MAX_HOPS) {
        deliver(f, ac, r);
        return;
    }
    if (act != WF__ACT_RETRY) f->hops++;
    switch (act) {
    case WF__ACT_LOAD:
        if (f->script && load_and_resend(f, ac) == 0) return;
        break;
    case WF__ACT_MOVED:
    case WF__ACT_ASK:
        if (redirect(f, r) == 0) return;
        break;
    case WF__ACT_RETRY:
        if (!ar->refused_since_mono) ar->refused_since_mono = wf__mono_ms();
        retry_later(f, ac, r);
        return;
    case WF__ACT_RECONNECT:
        lost(f, ac, r);
        return;
    default:
        break;
    }
    deliver(f, ac, r);
}

/* ---- sending ---------------------------------------------------------------------------------
 */

/* Sends a formatted command (takes `cmd`). REDIS_OK or REDIS_ERR (fn never fires). */
static int send_formatted(wf__ar *ar, redisCallbackFn *fn, void *priv, char *cmd, size_t len,
                          int lane, int script, wf__ar_merge *m)
{
    wf__fwd *f = ar->closing ? NULL : calloc(1, sizeof *f);
    if (!f) {
        free(cmd);
        return REDIS_ERR;
    }
    f->ar = ar;
    f->fn = fn;
    f->priv = priv;
    f->cmd = cmd;
    f->len = len;
    f->lane = ar->cfg.map ? lane : -1;
    f->script = script;
    f->m = m;
    if (route(f) == 0) return REDIS_OK;
    if (!ar->cfg.resend_lost) {
        fwd_free(f);
        return REDIS_ERR;
    }
    lost(f, NULL, NULL); /* sent once a node takes it, within the budget */
    return REDIS_OK;
}

int wf__ar_send_argv(wf__ar *ar, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *lens, int lane, int script, wf__ar_merge *m)
{
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) return REDIS_ERR;
    return send_formatted(ar, fn, priv, cmd, (size_t)len, lane, script, m);
}

int wf__ar_argv(wf__ar *ar, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                const size_t *argvlen)
{
    if (ar->cfg.map && argc > 0 && strcasecmp(argv[0], "XREADGROUP") == 0) {
        int rc = wf__ar_split_xread(ar, fn, priv, argc, argv, argvlen);
        if (rc != 1) return rc;
    }
    return wf__ar_send_argv(ar, fn, priv, argc, argv, argvlen, -1, 0, NULL);
}

int wf__ar_lane_argv(wf__ar *ar, int lane, redisCallbackFn *fn, void *priv, int argc,
                     const char **argv, const size_t *argvlen)
{
    return wf__ar_send_argv(ar, fn, priv, argc, argv, argvlen, lane, 0, NULL);
}

int wf__ar_vcommand(wf__ar *ar, redisCallbackFn *fn, void *priv, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0) return REDIS_ERR;
    return send_formatted(ar, fn, priv, cmd, (size_t)len, -1, 0, NULL);
}

int wf__ar_script(wf__ar *ar, redisCallbackFn *fn, void *priv, wf__script script, int nkeys,
                  const char *const *keys, int nargs, const char *const *args,
                  const size_t *arglens)
{
    const wf__script_src *src = wf__script_get(script);
    if (!src) return WF_ERR_INVALID;
    int argc = 3 + nkeys + nargs;
    const char **argv = malloc(sizeof *argv * (size_t)argc);
    size_t *lens = malloc(sizeof *lens * (size_t)argc);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return WF_ERR_NOMEM;
    }
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "FCALL";
    lens[0] = 5;
    argv[1] = src->fn;
    lens[1] = strlen(src->fn);
    argv[2] = nk;
    lens[2] = strlen(nk);
    for (int i = 0; i < nkeys; i++) {
        argv[3 + i] = keys[i];
        lens[3 + i] = strlen(keys[i]);
    }
    for (int i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = args[i] ? args[i] : "";
        lens[3 + nkeys + i] = arglens ? arglens[i] : (args[i] ? strlen(args[i]) : 0);
    }
    int rc = wf__ar_send_argv(ar, fn, priv, argc, argv, lens, -1, 1, NULL);
    free(argv);
    free(lens);
    return rc == REDIS_OK ? WF_OK : WF_ERR_IO;
}

/* ---- life ------------------------------------------------------------------------------------
 */

wf__ar *wf__ar_new(const wf__ar_cfg *cfg, const wf__url *url)
{
    if (!cfg->ctx && (!cfg->map || !url)) return NULL;
    wf__ar *ar = calloc(1, sizeof *ar);
    if (!ar) return NULL;
    ar->cfg = *cfg;
    ar->url = url;
    ar->stub.data = cfg->owner;
    return ar;
}

void wf__ar_close(wf__ar *ar)
{
    if (!ar) return;
    ar->closing = 1;
    /* Detach the whole list first: a callback below may queue nothing here (closing). */
    wf__fwd *f = ar->refused;
    ar->refused = NULL;
    while (f) {
        wf__fwd *next = f->rnext;
        f->rnext = f->rprev = NULL;
        deliver(f, NULL, NULL);
        f = next;
    }
    wf__ar_nodes_close(ar); /* commands in flight there get their NULL replies now */
}

void wf__ar_free(wf__ar *ar)
{
    if (!ar) return;
    wf__ar_close(ar);
    free(ar);
}
