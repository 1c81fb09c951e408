/* cron.c - schedule specs: 5-field cron expressions and fixed intervals ("@every 30s"), parsed
 * into bit sets and stepped forward in UTC; and the catch-up plan of a due firing.
 *
 * The grammar is Vixie cron's: fields minute (0-59), hour (0-23), day of month (1-31), month
 * (1-12 or jan..dec) and day of week (0-7 or sun..sat, 0 and 7 both Sunday); each field is a
 * comma list of `*`, `N`, `N-M`, each optionally `/STEP` (`N/STEP` means N up to the field's
 * maximum). When both day fields are restricted, a day matches if either does.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schedule_internal.h"

/* ---- Parsing -------------------------------------------------------------------------------- */

typedef struct field_def {
    const char *name;
    int lo, hi;
    const char *const *names; /* 3-letter names for lo.., or NULL */
} field_def;

static const char *const MONTHS[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const DAYS[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const field_def FIELDS[5] = {
    {"minute", 0, 59, NULL},  {"hour", 0, 23, NULL},       {"day of month", 1, 31, NULL},
    {"month", 1, 12, MONTHS}, {"day of week", 0, 7, DAYS},
};

/* Reads a number or a name at *p; advances *p. Returns 0 or -1. */
static int read_value(const char **p, const field_def *f, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*s)) {
            if (++digits > 4) return -1;
            v = v * 10 + (*s++ - '0');
        }
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (!f->names) return -1;
    int n = f == &FIELDS[3] ? 12 : 7;
    for (int i = 0; i < n; i++) {
        if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
            *out = f->lo + i;
            *p = s + 3;
            return 0;
        }
    }
    return -1;
}

/* Parses one field (text [s, s+n)) into `bits`; *star set when it starts with '*'. */
static int parse_field(const char *s, size_t n, const field_def *f, uint64_t *bits, int *star,
                       wf_error *err)
{
    /* Zeroed whole, not just buf[n]: clang-analyzer does not model isdigit()/isspace() and
     * otherwise walks read_value past the terminator into bytes it calls undefined. */
    char buf[WF__SCHED_SPEC_MAX + 1] = "";
    memcpy(buf, s, n);
    buf[n] = '\0';
    *bits = 0;
    *star = buf[0] == '*';
    const char *p = buf;
    for (;;) {
        int lo, hi, step = 1, ranged = 0;
        if (*p == '*') {
            lo = f->lo;
            hi = f->hi == 7 ? 6 : f->hi;
            ranged = 1;
            p++;
        } else {
            if (read_value(&p, f, &lo) != 0) goto bad;
            hi = lo;
            if (*p == '-') {
                p++;
                if (read_value(&p, f, &hi) != 0) goto bad;
                ranged = 1;
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p)) goto bad;
            long v = 0;
            while (isdigit((unsigned char)*p)) {
                v = v * 10 + (*p++ - '0');
                if (v > 1000) goto bad;
            }
            if (v < 1) goto bad;
            step = (int)v;
            if (!ranged) hi = f->hi == 7 ? 6 : f->hi; /* N/S: from N to the maximum */
        }
        if (lo < f->lo || hi > f->hi || lo > f->hi || hi < f->lo)
            return wf_error_set(err, WF_ERR_INVALID, "cron %s field '%s': values must be %d-%d",
                                f->name, buf, f->lo, f->hi);
        if (lo > hi)
            return wf_error_set(err, WF_ERR_INVALID,
                                "cron %s field '%s': range %d-%d goes backwards", f->name, buf, lo,
                                hi);
        for (int v = lo; v <= hi; v += step) {
            int bit = f->hi == 7 && v == 7 ? 0 : v; /* day of week 7 is Sunday, bit 0 */
            if (bit < 0 || bit > 63) goto bad;      /* bounded above; says so to the analyzer */
            *bits |= 1ULL << bit;
        }
        if (*p == '\0') return WF_OK;
        if (*p != ',') goto bad;
        p++;
    }
bad:
    return wf_error_set(err, WF_ERR_INVALID,
                        "cron %s field '%s' is not valid (use *, N, N-M, lists with ',' and "
                        "steps with '/')",
                        f->name, buf);
}

/* "1h30m", "45s", "500ms", "2d": returns the milliseconds, or -1. */
static int64_t parse_duration(const char *s)
{
    int64_t total = 0;
    if (!*s) return -1;
    while (*s) {
        if (!isdigit((unsigned char)*s)) return -1;
        int64_t v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            if (v > 100000000) return -1;
        }
        int64_t unit;
        if (strncmp(s, "ms", 2) == 0) {
            unit = 1;
            s += 2;
        } else if (*s == 's' || *s == 'm' || *s == 'h' || *s == 'd') {
            unit = *s == 's' ? 1000 : *s == 'm' ? 60000 : *s == 'h' ? 3600000 : 86400000;
            s++;
        } else {
            return -1;
        }
        total += v * unit;
        if (total > 366LL * 86400000) return -1;
    }
    return total;
}

int wf__cron_parse(const char *spec, wf__cron *out, wf_error *err)
{
    static const struct {
        const char *name, *expr;
    } macros[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                  {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
                  {"@hourly", "0 * * * *"}};
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return wf_error_set(err, WF_ERR_INVALID, "empty schedule spec");
    size_t len = strlen(spec);
    if (len > WF__SCHED_SPEC_MAX)
        return wf_error_set(err, WF_ERR_INVALID, "schedule spec longer than %d bytes",
                            WF__SCHED_SPEC_MAX);
    while (isspace((unsigned char)*spec)) spec++;
    if (spec[0] == '@') {
        if (strncmp(spec, "@every", 6) == 0 && isspace((unsigned char)spec[6])) {
            const char *d = spec + 6;
            while (isspace((unsigned char)*d)) d++;
            char buf[WF__SCHED_SPEC_MAX + 1];
            snprintf(buf, sizeof buf, "%s", d);
            for (size_t n = strlen(buf); n > 0 && isspace((unsigned char)buf[n - 1]); n--)
                buf[n - 1] = '\0';
            int64_t ms = parse_duration(buf);
            if (ms < 0)
                return wf_error_set(err, WF_ERR_INVALID,
                                    "'@every %.40s': want a duration such as 30s, 5m, 1h30m "
                                    "(units ms, s, m, h, d; at most 366d)",
                                    buf);
            if (ms < WF__SCHED_MIN_EVERY_MS)
                return wf_error_set(err, WF_ERR_INVALID, "'@every %.40s' is shorter than 1s", buf);
            out->every_ms = ms;
            return WF_OK;
        }
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strcmp(spec, macros[i].name) == 0) return wf__cron_parse(macros[i].expr, out, err);
        return wf_error_set(err, WF_ERR_INVALID,
                            "unknown schedule macro '%.40s' (known: @every DUR, @yearly, "
                            "@monthly, @weekly, @daily, @hourly)",
                            spec);
    }
    const char *p = spec;
    uint64_t bits[5];
    int stars[5];
    int nf = 0;
    while (*p) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (nf == 5) break; /* a sixth field: refused below */
        const char *start = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        int rc = parse_field(start, (size_t)(p - start), &FIELDS[nf], &bits[nf], &stars[nf], err);
        if (rc != WF_OK) return rc;
        nf++;
    }
    while (isspace((unsigned char)*p)) p++;
    if (nf != 5 || *p)
        return wf_error_set(err, WF_ERR_INVALID,
                            "cron spec '%.60s' needs exactly 5 fields: minute hour day-of-month "
                            "month day-of-week (or @every DUR, @daily, ...)",
                            spec);
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint32_t)bits[3];
    out->dow = (uint32_t)bits[4];
    out->dom_star = stars[2];
    out->dow_star = stars[4];
    return WF_OK;
}

/* ---- Stepping ----------------------------------------------------------------------------- */

static int day_matches(const wf__cron *c, const struct tm *tm)
{
    int dom = (c->dom >> tm->tm_mday) & 1, dow = (c->dow >> tm->tm_wday) & 1;
    if (c->dom_star || c->dow_star) return dom && dow;
    return dom || dow;
}

/* timegm() then back: normalises out-of-range fields (day 32, hour 24, ...). */
static time_t normalise(struct tm *tm)
{
    time_t t = timegm(tm);
    gmtime_r(&t, tm);
    return t;
}

int64_t wf__cron_next(const wf__cron *c, int64_t after_ms)
{
    if (c->every_ms > 0) return after_ms + c->every_ms;
    time_t t = (time_t)(after_ms >= 0 ? after_ms / 1000 : (after_ms - 999) / 1000);
    t = t - (t % 60 + 60) % 60 + 60; /* the next whole minute, strictly after */
    struct tm tm;
    gmtime_r(&t, &tm);
    int last_year = tm.tm_year + 8;
    while (tm.tm_year <= last_year) {
        if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = 0;
            normalise(&tm);
        } else if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = 0;
            normalise(&tm);
        } else if (!((c->hour >> tm.tm_hour) & 1)) {
            tm.tm_hour++;
            tm.tm_min = 0;
            normalise(&tm);
        } else if (!((c->minute >> tm.tm_min) & 1)) {
            tm.tm_min++;
            normalise(&tm);
        } else {
            return (int64_t)timegm(&tm) * 1000;
        }
    }
    return -1;
}

int64_t wf__sched_next(const wf__cron *c, int64_t anchor_ms, int64_t after_ms)
{
    if (c->every_ms <= 0) return wf__cron_next(c, after_ms);
    if (after_ms < anchor_ms) return anchor_ms;
    return anchor_ms + ((after_ms - anchor_ms) / c->every_ms + 1) * c->every_ms;
}

void wf__sched_plan(const wf__cron *c, wf_catch_up policy, int64_t due_ms, int64_t now_ms,
                    int *fire, int64_t *next)
{
    if (now_ms < due_ms) now_ms = due_ms;
    switch (policy) {
    case WF_CATCH_UP_ALL:
        *fire = 1;
        *next = wf__sched_next(c, due_ms, due_ms);
        break;
    case WF_CATCH_UP_NONE: {
        int64_t following = wf__sched_next(c, due_ms, due_ms);
        int missed =
            (following >= 0 && following <= now_ms) || now_ms - due_ms > WF__SCHED_GRACE_MS;
        *fire = !missed;
        *next = wf__sched_next(c, due_ms, now_ms);
        break;
    }
    case WF_CATCH_UP_ONE:
    default:
        *fire = 1;
        *next = wf__sched_next(c, due_ms, now_ms);
        break;
    }
}
