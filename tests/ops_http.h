/* ops_http.h - HTTP for the operations tests (test_metrics_*.c, test_webhook.c), in ops_http.c:
 *
 *   http_get()     a blocking GET with libcurl (the worker's /healthz, /readyz, /metrics)
 *   hook_server    a tiny HTTP/1.1 server on a loopback port, in a thread: it records every
 *                  request (headers of interest, body) and answers 500 to the first `fail_first`
 *                  requests, then `status` (200), with `reply` as the body; one request per
 *                  connection ("Connection: close")
 *
 * Every wait in the tests polls with wf_test_wait; the server thread only ever blocks in poll()
 * with a short timeout, so stopping it is prompt.
 */
#ifndef WF_TEST_OPS_HTTP_H
#define WF_TEST_OPS_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* GETs http://127.0.0.1:PORT/PATH (token: a bearer token or NULL). Returns the status (0 when the
 * connection failed); *body (if not NULL) gets the body, malloc'd ("" when none). */
long http_get(int port, const char *path, const char *token, char **body);

/* ---- the receiver ------------------------------------------------------------------------------
 */

#define HOOK_MAX 1024

typedef struct hook_req {
    char method[8];
    char path[128];
    char ts[32];    /* X-WF-Timestamp */
    char sig[160];  /* X-WF-Signature */
    char event[64]; /* X-WF-Event */
    int attempt;    /* X-WF-Attempt */
    int answered;   /* the status we answered */
    char *body;     /* malloc'd, NUL-terminated */
    size_t body_len;
} hook_req;

typedef struct hook_server {
    int fd, port;
    pthread_t thread;
    atomic_int stop;
    atomic_int fail_first; /* answer 500 to this many requests first */
    atomic_int status;     /* then this; 0 means 200 */
    const char *reply;     /* response body ("" when NULL) */
    pthread_mutex_t mu;
    hook_req req[HOOK_MAX];
    int n;
} hook_server;

/* Listens on 127.0.0.1:port (0: any free port; s->port tells which) and serves in a thread.
 * Returns 0 or -1. */
int hook_start(hook_server *s, int port);

/* Stops the thread and frees what it recorded. */
void hook_stop(hook_server *s);

/* A copy of the requests received so far (caller frees the array, not the bodies: they stay
 * owned by the server until hook_stop). */
int hook_snapshot(hook_server *s, hook_req **out);

/* How many requests it received so far. */
int hook_count(hook_server *s);

#endif
