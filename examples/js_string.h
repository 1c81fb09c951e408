/* js_string.h - JavaScript's String.prototype.trim() on UTF-8 text, so that the C examples treat
 * a title exactly as the original's `title.trim()` does. Header-only because it is shared by the
 * drafts-service program and the publish-draft workflow module (one source file each). */
#ifndef WF_EXAMPLES_JS_STRING_H
#define WF_EXAMPLES_JS_STRING_H

#include <stddef.h>

/* Length in bytes of the JavaScript white space or line terminator that starts `s` (`len` bytes
 * available), or 0: tab, LF, VT, FF, CR, space, and in UTF-8 U+00A0, U+1680, U+2000-U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF. */
static inline size_t js_space_len(const unsigned char *s, size_t len)
{
    if (len >= 1 && (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))) return 1;
    if (len >= 2 && s[0] == 0xC2 && s[1] == 0xA0) return 2;
    if (len < 3) return 0;
    unsigned cp3 = (unsigned)s[0] << 16 | (unsigned)s[1] << 8 | s[2];
    if (cp3 == 0xE19A80 || cp3 == 0xE2819F || cp3 == 0xE38080 || cp3 == 0xEFBBBF) return 3;
    if (s[0] == 0xE2 && s[1] == 0x80 &&
        (s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF) && s[2] >= 0x80)
        return 3;
    return 0;
}

/* Narrows [*s, *s + *len) to its trimmed part. */
static inline void js_trim(const char **s, size_t *len)
{
    const unsigned char *p = (const unsigned char *)*s;
    size_t n = *len, k;
    while (n > 0 && (k = js_space_len(p, n)) > 0) {
        p += k;
        n -= k;
    }
    for (int found = 1; found && n > 0;) {
        found = 0;
        for (k = 1; k <= 3 && k <= n; k++) {
            if (js_space_len(p + n - k, k) == k) {
                n -= k;
                found = 1;
                break;
            }
        }
    }
    *s = (const char *)p;
    *len = n;
}

#endif
