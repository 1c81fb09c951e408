/* web_env.h - what the dashboard API suites (test_web_api.c: runs and access; test_web_ops.c:
 * bulk actions, schedules, workflows, dead letters) share: `wf web` on a free port over
 * ops_env's Redis and worker (started by web_setup, stopped by web_teardown), and a minimal
 * blocking HTTP/1.1 client. The state lives in web_env.c. */
#ifndef WF_TEST_WEB_ENV_H
#define WF_TEST_WEB_ENV_H

#include "ops_env.h"

#define TOKEN "web-api-test-token-0123456789"

/* The servers of a test: `web` on `port` (no token), and a second one a test may start on
 * `token_port` (stopped by web_teardown when set). */
extern pid_t web, web_token;
extern int port, token_port;

typedef struct response {
    int status;
    char *head; /* status line and headers */
    char *body;
} response;

void response_free(response *r);

/* One request to port `p` with extra header lines `headers` (each ending in \r\n, may be NULL;
 * a "Host:" among them replaces the default one). Returns the status or -1. */
int http_to(int p, const char *method, const char *path, const char *headers, response *res);
int http(const char *method, const char *path, response *res);

/* The body as JSON; frees the response. */
json_t *body_json(response *res);

/* GET/POST that must answer `code`; returns the JSON body. */
json_t *call(const char *method, const char *path, int code);

/* Starts `wf web` on port `p` with an optional token and --base-path; waits until it listens. */
pid_t start_web_at(int p, const char *token, const char *base);
pid_t start_web(int p, const char *token);

/* POST /api/runs/ID/ACTION that must answer `code`; act_state: 200 and the run now `state`. */
json_t *act(const char *id, const char *action, int code);
void act_state(const char *id, const char *action, const char *state);

/* The run's attempt as the API shows it. */
long long run_attempt(const char *id);

/* The integer member `key` of o. */
long long ifield(json_t *o, const char *key);

/* Member `key` of `workflow`'s entry in GET /api/workflows (a new reference; fails the test
 * when the workflow or the member is missing). */
json_t *workflow_member(const char *workflow, const char *key);

void web_setup(void);
void web_teardown(void);

#endif
