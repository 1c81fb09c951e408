/* reply_action.c - what a Redis error reply means for the command that got it (reply_action.h).
 * Redis error replies start with an upper-case code and a space ("LOADING Redis is loading the
 * dataset in memory"), but for FCALL's "ERR Function not found"; a script's own errors are matched
 * elsewhere (wf__script_error). */
#include "reply_action.h"

#include <string.h>

static const struct {
    const char *code;
    wf__reply_act act;
} codes[] = {
    {"MOVED", WF__ACT_MOVED},      {"ASK", WF__ACT_ASK},
    {"BUSY", WF__ACT_RETRY},       {"LOADING", WF__ACT_RETRY},
    {"TRYAGAIN", WF__ACT_RETRY},   {"CLUSTERDOWN", WF__ACT_RETRY},
    {"MASTERDOWN", WF__ACT_RETRY}, {"READONLY", WF__ACT_RECONNECT},
};

/* FCALL's answer for a function Redis does not have (no library `wf` there: a restart without
 * persistence, FUNCTION FLUSH, a new cluster master). The code is the generic ERR. */
static const char no_function[] = "ERR Function not found";

wf__reply_act wf__reply_action_of(const char *msg, size_t len)
{
    if (!msg) return WF__ACT_DONE;
    if (len == sizeof no_function - 1 && memcmp(msg, no_function, len) == 0) return WF__ACT_LOAD;
    /* The code is the first word: up to a space or the end. */
    size_t n = 0;
    while (n < len && msg[n] != ' ') n++;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strlen(codes[i].code) == n && memcmp(codes[i].code, msg, n) == 0) return codes[i].act;
    return WF__ACT_DONE;
}

wf__reply_act wf__reply_action(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR) return WF__ACT_DONE;
    return wf__reply_action_of(r->str, r->len);
}

const char *wf__reply_act_name(wf__reply_act a)
{
    static const char *const names[] = {"done", "moved", "ask", "load", "retry", "reconnect"};
    return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "unknown";
}

int wf__reply_retry_ms(int attempt)
{
    int ms = 20;
    for (int i = 0; i < attempt && ms < 500; i++) ms *= 2;
    return ms > 500 ? 500 : ms;
}
