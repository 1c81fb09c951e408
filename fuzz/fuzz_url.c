/* fuzz_url.c - wf__url_parse: URLs come from config files and the environment. Whatever it accepts
 * has a host or a socket path, a valid prefix, and a redacted form that never shows the password.
 */
#include "fuzz.h"

/* Text every redacted URL may show: a password that is part of it ("sentinel" of
 * "redis+sentinel://") proves nothing. */
static int fixed_text(const char *pw)
{
    static const char *const fixed[] = {"redis+sentinel://", "redis://", "unix://",
                                        "?prefix=",          "26379",    "6379"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strstr(fixed[i], pw)) return 1;
    return 0;
}

/* Whether `pw` stands in the URL more than once (then the other place, e.g. a sentinel's master
 * name, may show it legitimately). */
static int elsewhere(const char *url, const char *pw)
{
    const char *first = strstr(url, pw);
    return first && strstr(first + 1, pw) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        unsetenv("WF_REDIS_URL");
        unsetenv("WF_REDIS_PASSWORD");
        init = 1;
    }
    char *s = fuzz_cstr(data, size);
    wf__url u;
    wf_error err = {0};
    if (s[0] && wf__url_parse(s, &u, &err) == WF_OK) {
        FUZZ_CHECK(u.host || u.unix_path, "neither host nor path");
        FUZZ_CHECK(u.prefix && u.prefix[0], "no prefix");
        FUZZ_CHECK(u.port >= 1 && u.port <= 65535, "port %d", u.port);
        FUZZ_CHECK(u.redacted, "no redacted form");
        /* The password must not show; only checked for one that cannot occur by chance in the
         * parts that are shown (user, host, path, prefix). */
        const char *pw = u.password;
        static const char alnum[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        if (pw && strlen(pw) >= 6 && strspn(pw, alnum) == strlen(pw) &&
            !(u.user && strstr(u.user, pw)) && !(u.host && strstr(u.host, pw)) &&
            !(u.unix_path && strstr(u.unix_path, pw)) && !strstr(u.prefix, pw) && !fixed_text(pw) &&
            !elsewhere(s, pw))
            FUZZ_CHECK(!strstr(u.redacted, pw), "password shown in '%s'", u.redacted);
        wf__url_free(&u);
    } else if (s[0]) {
        FUZZ_CHECK(err.code == WF_ERR_URL || err.code == WF_ERR_NOMEM, "code %d", err.code);
        if (err.code == WF_ERR_URL && strchr(s, '@') && strchr(s, ':')) {
            /* Messages must not echo a password: none of them quotes the authority part. */
            const char *at = strrchr(s, '@');
            const char *start = strstr(s, "://");
            start = start && start < at ? start + 3 : at;
            const char *colon = memchr(start, ':', (size_t)(at - start));
            /* (Text the caller typed into the query part itself may be quoted back.) */
            const char *q = strchr(s, '?');
            if (colon && at - colon > 8 && !(q && q < colon)) {
                char pw[64];
                size_t n = (size_t)(at - colon - 1) < sizeof pw - 1 ? (size_t)(at - colon - 1)
                                                                    : sizeof pw - 1;
                memcpy(pw, colon + 1, n);
                pw[n] = '\0';
                static const char alnum[] =
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                if (!(q && strstr(q, pw)) && strspn(pw, alnum) == n && n >= 8 &&
                    strstr(err.message, pw)) {
                    /* It may be fixed text of the message ("sentinel" of "redis+sentinel://"):
                     * the same URL with the password blanked out must then say it too. */
                    char *blank = strdup(s);
                    memset(blank + (colon + 1 - s), 'X', n);
                    wf__url u2;
                    wf_error err2 = {0};
                    if (wf__url_parse(blank, &u2, &err2) == WF_OK) wf__url_free(&u2);
                    FUZZ_CHECK(strstr(err2.message, pw), "password in message '%s'", err.message);
                    free(blank);
                }
            }
        }
    }
    free(s);
    return 0;
}
