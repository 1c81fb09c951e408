/* metrics_env.c - the shared set-up and helpers of the worker-operations suites (metrics_env.h):
 * ports, starting the worker with --http, HTTP waits, runs from JSON, and the Prometheus parser. */
#include <ctype.h>
#include <math.h>

#include <criterion/criterion.h>

#include "metrics_env.h"

int http_port;
char *scraped_text; /* the body of the last /metrics scrape */

/* A free port whose successor is free too (a test checks that no worker process takes it). */
static int free_port_pair(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int p = wf_test_free_port();
        if (p > 0 && p < 65535 && wf_test_port_free(p + 1)) return p;
    }
    return wf_test_free_port();
}

void metrics_setup(void)
{
    pool_env_setup("metrics");
    http_port = free_port_pair();
}

void metrics_teardown(void)
{
    pool_env_teardown();
    free(scraped_text);
    scraped_text = NULL;
}

/* What start_worker waits for. */
static const char *const registers[] = {"echo",    "fatal",   "flaky", "slow",
                                        "stepper", "timeout", NULL};

pid_t start_worker(const char *const *extra)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", http_port);
    const char *args[40] = {"--http", listen};
    int n = 2;
    for (; extra && *extra && n < 38; extra++) args[n++] = *extra;
    args[n] = NULL;
    return pool_env_worker(args, NULL, registers);
}

int answers(void *arg)
{
    http_wait *h = arg;
    return http_get(h->port, h->path, h->token, NULL) == h->want;
}

void wait_http(int port, const char *path, long want)
{
    http_wait h = {port, path, NULL, want};
    if (!wf_test_wait(answers, &h, 15000)) {
        char *body = NULL;
        long got = http_get(port, path, NULL, &body);
        cr_assert_fail("GET %s on port %d: %ld (%s), not %ld", path, port, got, body, want);
    }
}

wf_run *start_prio(const char *workflow, const char *json, int priority)
{
    return wf_test_start_json(cl, workflow, json, &(wf_run_options){.priority = priority});
}

wf_run *start_json(const char *workflow, const char *json)
{
    return start_prio(workflow, json, WF_PRIORITY_NORMAL);
}

int zcard_is(void *arg)
{
    count_wait *c = arg;
    return wf_test_cmd_int(rc, "ZCARD %s", c->key) == c->want;
}

/* ---- a Prometheus text parser ------------------------------------------------------------ */

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':')) return 0;
    return 1;
}

const char *family_type(const expo *e, const char *name)
{
    for (int i = 0; i < e->nfam; i++)
        if (strcmp(e->family[i], name) == 0) return e->type[i];
    return NULL;
}

/* The family a sample belongs to: its name, or for a histogram the name without the suffix. */
static const char *sample_type(const expo *e, const char *name)
{
    const char *t = family_type(e, name);
    if (t) return t;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int k = 0; k < 3; k++) {
        size_t nl = strlen(name), sl = strlen(sfx[k]);
        if (nl > sl && strcmp(name + nl - sl, sfx[k]) == 0) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(nl - sl), name);
            t = family_type(e, base);
            if (t && strcmp(t, "histogram") == 0) return t;
        }
    }
    return NULL;
}

/* Parses the exposition; asserts on every malformed line. */
void parse(const char *text, expo *e)
{
    memset(e, 0, sizeof *e);
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *nm = line + 7;
            cr_assert(name_ok(nm, strcspn(nm, " ")), "bad HELP line: %s", line);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char nm[128], ty[32];
            cr_assert_eq(sscanf(line + 7, "%127s %31s", nm, ty), 2, "bad TYPE line: %s", line);
            cr_assert(name_ok(nm, strlen(nm)), "bad metric name: %s", line);
            cr_assert(strcmp(ty, "counter") == 0 || strcmp(ty, "gauge") == 0 ||
                          strcmp(ty, "histogram") == 0 || strcmp(ty, "summary") == 0 ||
                          strcmp(ty, "untyped") == 0,
                      "bad type: %s", line);
            cr_assert_null(family_type(e, nm), "TYPE given twice: %s", line);
            cr_assert_lt(e->nfam, 128);
            snprintf(e->family[e->nfam], 128, "%s", nm);
            snprintf(e->type[e->nfam++], 32, "%s", ty);
            continue;
        }
        cr_assert_neq(line[0], '#', "unknown comment line: %s", line);
        size_t nl = strcspn(line, "{ ");
        cr_assert(name_ok(line, nl), "bad sample name: %s", line);
        cr_assert_lt(e->n, 2048);
        sample *s = &e->s[e->n++];
        snprintf(s->name, sizeof s->name, "%.*s", (int)nl, line);
        const char *p = line + nl;
        if (*p == '{') {
            const char *q = p + 1;
            while (*q != '}') { /* name="value", with \" \\ \n escapes */
                size_t ln = strcspn(q, "=");
                cr_assert(name_ok(q, ln) && q[ln] == '=' && q[ln + 1] == '"', "bad label: %s",
                          line);
                q += ln + 2;
                while (*q && *q != '"') q += *q == '\\' ? 2 : 1;
                cr_assert_eq(*q, '"', "unterminated label value: %s", line);
                q++;
                if (*q == ',') q++;
                cr_assert(*q == '}' || isalpha((unsigned char)*q), "bad label list: %s", line);
            }
            snprintf(s->labels, sizeof s->labels, "%.*s", (int)(q - p - 1), p + 1);
            p = q + 1;
        }
        cr_assert_eq(*p, ' ', "no value: %s", line);
        char *end;
        s->value = strtod(p + 1, &end);
        cr_assert(end != p + 1 && (*end == '\0' || *end == ' '), "bad value: %s", line);
        cr_assert_not_null(sample_type(e, s->name), "sample before its TYPE: %s", line);
    }
    free(copy);
}

/* The value of name{labels} (labels exactly as printed), NAN when absent. */
double value(const expo *e, const char *name, const char *labels)
{
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, name) == 0 && strcmp(e->s[i].labels, labels) == 0)
            return e->s[i].value;
    return NAN;
}

expo scraped;

void scrape(int port)
{
    char *body = NULL;
    cr_assert_eq(http_get(port, "/metrics", NULL, &body), 200, "GET /metrics: %s", body);
    parse(body, &scraped);
    free(scraped_text);
    scraped_text = body;
}

typedef struct metric_wait {
    const char *name, *labels;
    double want;
} metric_wait;

static int metric_is(void *arg)
{
    metric_wait *m = arg;
    scrape(http_port);
    return value(&scraped, m->name, m->labels) == m->want;
}

void wait_metric(const char *name, const char *labels, double want)
{
    /* A worker that just registered may not listen yet: scrape() asserts a 200. */
    wait_http(http_port, "/metrics", 200);
    metric_wait m = {name, labels, want};
    cr_assert(wf_test_wait(metric_is, &m, 15000), "%s{%s} is %g, not %g", name, labels,
              value(&scraped, name, labels), want);
}

/* Every wf_* and process_* name that the file `rel` (under the source tree) mentions is a
 * family of the last scrape (a histogram's _bucket/_sum/_count count as its family). Returns how
 * many names were checked. */
int names_in_scrape(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", WF_SOURCE_DIR, rel);
    char *text = wf_test_slurp(path);
    cr_assert(text && *text, "cannot read %s", path);
    int checked = 0;
    for (const char *p = text; *p; p++) {
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) continue;
        if (strncmp(p, "wf_", 3) != 0 && strncmp(p, "process_", 8) != 0) continue;
        size_t n = 0;
        while (isalnum((unsigned char)p[n]) || p[n] == '_') n++;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        cr_assert_not_null(sample_type(&scraped, name), "%s names %s, which /metrics does not have",
                           rel, name);
        checked++;
        p += n - 1;
    }
    free(text);
    return checked;
}
