/* metrics_env.h - what the suites of the worker's operations endpoints (test_metrics_*.c) share
 * on top of pool_env.h: their Criterion suite's set-up (a free pair of HTTP ports), starting
 * wf-worker with --http on them, waiting for HTTP answers, starting runs from JSON, and a strict
 * parser of the Prometheus text exposition with waits on a metric's value. Lives in
 * metrics_env.c. */
#ifndef WF_TEST_METRICS_ENV_H
#define WF_TEST_METRICS_ENV_H

#include "ops_http.h"
#include "pool_env.h"

/* The --http port of the worker (its supervisor); nothing serves http_port + 1. */
extern int http_port;
/* The body of the last /metrics scrape. */
extern char *scraped_text;

/* The suites' .init and .fini. */
void metrics_setup(void);
void metrics_teardown(void);

/* Starts wf-worker with the test workflows, --http 127.0.0.1:http_port and `extra` flags
 * (NULL-terminated); waits until it registered its workflows. */
pid_t start_worker(const char *const *extra);

/* Waits up to 15 s for GET path on port to answer `want`; fails the test when it does not. */
void wait_http(int port, const char *path, long want);

typedef struct http_wait {
    int port;
    const char *path, *token;
    long want;
} http_wait;

/* 1 when GET h->path (with h->token) answers h->want. */
int answers(void *arg);

/* Starts a run of `workflow` with a JSON input and priority `priority`. */
wf_run *start_prio(const char *workflow, const char *json, int priority);
/* The same at the normal priority. */
wf_run *start_json(const char *workflow, const char *json);

typedef struct count_wait {
    const char *key;
    long long want;
} count_wait;

/* 1 when ZCARD c->key is c->want. */
int zcard_is(void *arg);

/* ---- a Prometheus text parser ------------------------------------------------------------ */

typedef struct sample {
    char name[128], labels[256];
    double value;
} sample;

typedef struct expo {
    sample s[2048];
    int n;
    char family[128][128], type[128][32];
    int nfam;
} expo;

/* The last scrape, parsed. */
extern expo scraped;

/* The TYPE of family `name`, or NULL. */
const char *family_type(const expo *e, const char *name);

/* Parses the exposition; asserts on every malformed line. */
void parse(const char *text, expo *e);

/* The value of name{labels} (labels exactly as printed), NAN when absent. */
double value(const expo *e, const char *name, const char *labels);

/* GETs /metrics on port into scraped and scraped_text; fails the test unless it answers 200. */
void scrape(int port);

/* Scrapes http_port until name{labels} is `want` (15 s); fails the test when it is not. */
void wait_metric(const char *name, const char *labels, double want);

/* Every wf_* and process_* name that the file `rel` (under the source tree) mentions is a
 * family of the last scrape (a histogram's _bucket/_sum/_count count as its family). Returns how
 * many names were checked. */
int names_in_scrape(const char *rel);

#endif
