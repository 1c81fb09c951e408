/* web.h - `wf web`, the dashboard: what its server (web.c: listening, access control, the
 * embedded page, routing) and its JSON API (web_api.c) share.
 *
 * One libevent loop on one thread serves everything. API handlers call libwf synchronously on
 * the loop thread: each call is a few Redis round trips on localhost bounded by the client's
 * timeout, and a dashboard has few users, so the simplicity is worth a short stall.
 */
#ifndef WF_CLI_WEB_H
#define WF_CLI_WEB_H

#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

#include "cli.h"

/* A file of cli/web/, embedded at build time by cmake/embed_web.cmake. */
typedef struct wf__web_asset {
    const char *path; /* "/index.html", "/app.js", "/style.css" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} wf__web_asset;

/* Generated: every file of cli/web/, then a {0} terminator. */
extern const wf__web_asset wf__web_assets[];

/* The dashboard server. */
typedef struct wf__web {
    wf__cli *cli;        /* its client (cli->client) serves every API call */
    const char *token;   /* required as "Authorization: Bearer TOKEN" on /api/; NULL: none */
    int loopback;        /* listening on a loopback address only */
    const char *base;    /* --base-path without its trailing '/', e.g. "/wf"; "" when none */
    struct evhttp *http; /* the server */
    long long requests;  /* answered so far (for the log line at exit) */
} wf__web;

/* Answers a request under /api/ (access already checked). `path` is the part after "/api",
 * still percent-encoded; `query` the raw query string or NULL. */
void wf__web_api(wf__web *web, struct evhttp_request *req, const char *path, const char *query);

/* Sends `body` (stolen; NULL means out of memory: 500) as JSON with status `code`. */
void wf__web_send_json(struct evhttp_request *req, int code, json_t *body);

/* Sends {"error": MESSAGE, "status": code} with status `code`. */
void wf__web_send_error(struct evhttp_request *req, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Sends the error of a libwf call with the HTTP status its code maps to (400 bad id or name,
 * 404 not found, 409 not allowed in the run's state, 503 Redis unreachable, else 500). */
void wf__web_send_wf_error(struct evhttp_request *req, const wf_error *err);

/* POST /api/bulk?action=&workflow=&state=&dry_run=&until= (web_bulk.c). */
void wf__web_bulk(wf__web *web, struct evhttp_request *req, const char *query);

/* Answers the routes of web_ops.c (schedules, dead letters, workflow pause, history) and returns
 * 1, or returns 0 when `path` is none of them. */
int wf__web_ops(wf__web *web, struct evhttp_request *req, const char *path, const char *query);

/* Sends 405 {"error": ..., "status": 405} with "Allow: `allow`" (e.g. "GET, HEAD"), naming the
 * request's method. */
void wf__web_send_405(struct evhttp_request *req, const char *allow);

#endif
