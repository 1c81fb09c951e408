/* script_table.c - the embedded Lua scripts as the protocol knows them: which lua/ file each
 * wf__script is and its function in the library `wf` (generated wf_scripts.c), whether the
 * library Redis holds should be replaced by this build's, and what a script's error reply means as
 * a wf_err.
 */
#include <stdio.h>
#include <string.h>

#include "reply_action.h"
#include "wf_core.h"

const wf__script_src *wf__script_get(wf__script script)
{
    /* The ids are generated in the table's order (cmake/embed_lua.cmake). */
    return (unsigned)script < WF__SCRIPT_COUNT ? &wf__script_sources[script] : NULL;
}

/* Reads "MAJOR.MINOR.PATCH TIME HASH" into v[0..3] and hash; 0, or -1 when `s` is not that. */
static int parse_version(const char *s, size_t len, long long v[4], char hash[16])
{
    char buf[96];
    if (len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (sscanf(buf, "%lld.%lld.%lld %lld %15s", &v[0], &v[1], &v[2], &v[3], hash) != 5) return -1;
    return 0;
}

int wf__library_replace(const char *loaded, size_t len)
{
    if (!loaded) return 1;
    long long a[4], b[4];
    char ha[16], hb[16];
    if (parse_version(loaded, len, a, ha) != 0) return 1;
    if (parse_version(wf__library_version, strlen(wf__library_version), b, hb) != 0) return 0;
    if (strcmp(ha, hb) == 0) return 0; /* the same sources */
    for (int i = 0; i < 4; i++)
        if (a[i] != b[i]) return a[i] < b[i];
    return 1;
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
