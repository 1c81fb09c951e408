/* runid.c - workflow names and run ids.
 *
 * A run id is "WORKFLOW:SUFFIX". Carrying the workflow lets wf_get_workflow_run() find the run's
 * hash (whose key holds the workflow as its hash tag) in one round trip. The generated suffix is a
 * ULID: 48 bits of milliseconds then 80 random bits in Crockford base32, so ids sort by creation
 * time. Ids come from users, URLs and command lines, so parsing admits only characters that can
 * never change the meaning of a key: no braces (hash tags), colons, globs, spaces or NULs.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "wf_core.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

int wf__name_valid(const char *name)
{
    if (!name || !name_char((unsigned char)name[0]) || name[0] == '.' || name[0] == '-' ||
        name[0] == '_')
        return 0;
    size_t i = 0;
    for (; name[i]; i++)
        if (i >= WF__NAME_MAX || !name_char((unsigned char)name[i])) return 0;
    return 1;
}

/* Per-thread xorshift128+ state, seeded from the kernel: ids are unique across threads and
 * processes without a syscall per id. */
static _Thread_local uint64_t rng_s[2];
static _Thread_local int rng_seeded;

static uint64_t rng_next(void)
{
    if (!rng_seeded) {
        if (getrandom(rng_s, sizeof rng_s, 0) != (ssize_t)sizeof rng_s) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            rng_s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)&rng_s;
            rng_s[1] = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL;
        }
        if (!rng_s[0] && !rng_s[1]) rng_s[1] = 1;
        rng_seeded = 1;
    }
    uint64_t s1 = rng_s[0];
    const uint64_t s0 = rng_s[1];
    rng_s[0] = s0;
    s1 ^= s1 << 23;
    rng_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_s[1] + s0;
}

void wf__runid_new(const char *workflow, char *out)
{
    uint64_t ms = (uint64_t)wf__now_ms();
    uint64_t r1 = rng_next(), r2 = rng_next();
    size_t n = strlen(workflow);
    memcpy(out, workflow, n);
    out[n++] = ':';
    for (int i = 9; i >= 0; i--) out[n + (size_t)i] = crockford[(ms >> (5 * (9 - i))) & 31];
    n += 10;
    /* 80 random bits: 64 from r1, 16 from r2. */
    for (int i = 0; i < 16; i++) {
        uint64_t bits = i < 12 ? (r1 >> (5 * i)) : (r2 >> (5 * (i - 12)));
        out[n++] = crockford[bits & 31];
    }
    out[n] = '\0';
}

int wf__runid_parse(const char *id, char *workflow, wf_error *err)
{
    if (!id) return wf_error_set(err, WF_ERR_BAD_ID, "run id is missing");
    size_t len = strnlen(id, WF__ID_MAX + 1);
    if (len == 0) return wf_error_set(err, WF_ERR_BAD_ID, "run id is empty");
    if (len > WF__ID_MAX - 1)
        return wf_error_set(err, WF_ERR_BAD_ID, "run id is longer than %d bytes", WF__ID_MAX - 1);
    const char *colon = strchr(id, ':');
    if (!colon)
        return wf_error_set(err, WF_ERR_BAD_ID,
                            "run id must look like WORKFLOW:SUFFIX (e.g. publish-draft:01JD...)");
    size_t wlen = (size_t)(colon - id);
    if (wlen == 0 || wlen > WF__NAME_MAX)
        return wf_error_set(err, WF_ERR_BAD_ID, "run id's workflow part must be 1-%d bytes",
                            WF__NAME_MAX);
    memcpy(workflow, id, wlen);
    workflow[wlen] = '\0';
    if (!wf__name_valid(workflow)) {
        workflow[0] = '\0';
        return wf_error_set(err, WF_ERR_BAD_ID,
                            "run id's workflow part may hold only [A-Za-z0-9._-] and must start "
                            "with a letter or digit");
    }
    const char *s = colon + 1;
    size_t slen = len - wlen - 1;
    if (slen == 0 || slen > WF__SUFFIX_MAX) {
        workflow[0] = '\0';
        return wf_error_set(err, WF_ERR_BAD_ID, "run id's suffix must be 1-%d bytes",
                            WF__SUFFIX_MAX);
    }
    for (size_t i = 0; i < slen; i++)
        if (!name_char((unsigned char)s[i])) {
            workflow[0] = '\0';
            return wf_error_set(err, WF_ERR_BAD_ID,
                                "run id contains a character that is not allowed (byte 0x%02x at "
                                "%zu); ids hold only [A-Za-z0-9._-] after the colon",
                                (unsigned char)s[i], wlen + 1 + i);
        }
    return WF_OK;
}

int wf__suffix_valid(const char *s)
{
    if (!s || !*s) return 0;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= WF__SUFFIX_MAX || !name_char((unsigned char)s[i])) return 0;
    return 1;
}
