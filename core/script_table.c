/* script_table.c - the embedded Lua scripts as the protocol knows them: which lua/ file each
 * wf__script is, its source (generated wf_scripts.c), its SHA1 once Redis told it, and what a
 * script's error reply means as a wf_err.
 *
 * SHA1s are learnt from Redis (SCRIPT LOAD answers with the digest, redis/scripts.c) rather than
 * computed here, so libwf carries no SHA1 code; they are process-wide because the sources never
 * change.
 */
#include <pthread.h>
#include <string.h>

#include "reply_action.h"
#include "wf_core.h"

static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;
static char shas[WF__SCRIPT_COUNT][41];

const wf__script_src *wf__script_get(wf__script script)
{
    /* The ids are generated in the table's order (cmake/embed_lua.cmake). */
    return (unsigned)script < WF__SCRIPT_COUNT ? &wf__script_sources[script] : NULL;
}

const char *wf__script_sha(wf__script script)
{
    if ((int)script < 0 || script >= WF__SCRIPT_COUNT) return NULL;
    pthread_mutex_lock(&sha_lock);
    const char *r = shas[script][0] ? shas[script] : NULL;
    pthread_mutex_unlock(&sha_lock);
    return r;
}

void wf__script_sha_remember(wf__script script, const char *sha, size_t len)
{
    if (len != 40) return;
    pthread_mutex_lock(&sha_lock);
    memcpy(shas[script], sha, 40);
    shas[script][40] = '\0';
    pthread_mutex_unlock(&sha_lock);
}

int wf__script_error(const char *text, size_t len, wf_error *err)
{
    static const struct {
        const char *prefix;
        int code;
    } map[] = {{"STALE ", WF_ERR_STALE}, {"NOTFOUND ", WF_ERR_NOT_FOUND},
               {"FINAL ", WF_ERR_FINAL}, {"BADSTATE ", WF_ERR_STATE},
               {"STEP ", WF_ERR_STEP},   {"EXISTS ", WF_ERR_EXISTS}};
    /* Redis wraps script errors ("ERR Error running script ... : STALE ..." in older versions,
     * the bare text from redis.error_reply in 7.x); look for our marker anywhere. */
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t pl = strlen(map[i].prefix);
        for (size_t off = 0; off + pl <= len; off++)
            if (memcmp(text + off, map[i].prefix, pl) == 0)
                return wf_error_set(err, map[i].code, "%.*s", (int)(len - off), text + off);
    }
    if (len >= 4 && memcmp(text, "OOM ", 4) == 0)
        return wf_error_set(err, WF_ERR_REDIS,
                            "Redis is out of memory (maxmemory reached): %.*s; free memory or "
                            "raise maxmemory",
                            (int)len, text);
    if (wf__reply_action_of(text, len) == WF__ACT_RETRY)
        return wf_error_set(err, WF_ERR_IO,
                            "Redis kept refusing the command for longer than the URL's "
                            "timeout_ms (%.*s): it is loading its data set after a restart, busy "
                            "with a long script, or a cluster is failing over; try again, or raise "
                            "?timeout_ms=N to wait longer",
                            (int)(len > 200 ? 200 : len), text);
    if (len >= 9 && memcmp(text, "READONLY ", 9) == 0)
        return wf_error_set(err, WF_ERR_REDIS,
                            "Redis is a read-only replica: %.*s; point wf at the master", (int)len,
                            text);
    if (len >= 10 && memcmp(text, "WRONGTYPE ", 10) == 0)
        return wf_error_set(err, WF_ERR_REDIS,
                            "a wf key holds the wrong type (clobbered by something else?): %.*s",
                            (int)len, text);
    return wf_error_set(err, WF_ERR_REDIS, "Redis error: %.*s", (int)len, text);
}
