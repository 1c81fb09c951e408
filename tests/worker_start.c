/* worker_start.c - starting a real wf-worker for a test and waiting, with a deadline, until it
 * has registered its workflows in wf:workflows (harness.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "harness.h"

#define ARGS_MAX 48

int wf_test_registered_in(redisContext *c, const char *prefix, const char *const *workflows)
{
    for (; workflows && *workflows; workflows++)
        if (wf_test_cmd_int(c, "HEXISTS %s:workflows %s", prefix, *workflows) != 1) return 0;
    return 1;
}

int wf_test_registered(redisContext *c, const char *const *workflows)
{
    return wf_test_registered_in(c, "wf", workflows);
}

static int all_registered(void *arg)
{
    const wf_test_worker *w = arg;
    return wf_test_registered_in(w->rc, w->prefix ? w->prefix : "wf", w->workflows);
}

pid_t wf_test_worker_start(const wf_test_worker *w)
{
    char *bin = wf_test_path("wf-worker");
    char *wfdir = w->workflows_dir ? NULL : wf_test_path("tests/workflows");
    const char *argv[ARGS_MAX] = {bin, "--redis", w->redis_url, "--workflows",
                                  w->workflows_dir ? w->workflows_dir : wfdir};
    int n = 5;
    for (const char *const *e = w->extra; e && *e; e++) {
        cr_assert_lt(n, ARGS_MAX - 1, "wf_test_worker_start: more than %d arguments", ARGS_MAX);
        argv[n++] = *e;
    }
    argv[n] = NULL;
    pid_t pid = wf_test_spawn(argv, w->env, w->log_path);
    free(bin);
    free(wfdir);
    cr_assert_gt(pid, 0, "cannot spawn wf-worker");
    if (!w->workflows) return pid;
    if (!wf_test_wait(all_registered, (void *)w, w->timeout_ms > 0 ? w->timeout_ms : 10000)) {
        const char *missing = w->workflows[0];
        for (const char *const *p = w->workflows; *p; p++) {
            const char *one[] = {*p, NULL};
            if (!wf_test_registered_in(w->rc, w->prefix ? w->prefix : "wf", one)) {
                missing = *p;
                break;
            }
        }
        int status = wf_test_kill(pid, SIGKILL, 5000);
        char *log = w->log_path ? wf_test_slurp(w->log_path) : NULL;
        if (w->before_failing) w->before_failing(w->before_failing_arg);
        cr_assert_fail("wf-worker (pid %d, wait status 0x%x) never registered its workflows "
                       "(%s is missing); its log:\n%s",
                       (int)pid, status, missing, log ? log : "(not captured)");
    }
    return pid;
}

int wf_test_run_worker(const char *const *args, char **out)
{
    char *bin = wf_test_path("wf-worker");
    /* wf_test_run captures stdout only: usage errors go to stderr, so run through sh. */
    char line[1024];
    size_t off = (size_t)snprintf(line, sizeof line, "'%s' ", bin);
    for (; args && *args && off < sizeof line; args++)
        off += (size_t)snprintf(line + off, sizeof line - off, "'%s' ", *args);
    cr_assert_lt(off + 5, sizeof line, "wf_test_run_worker: command line too long");
    snprintf(line + off, sizeof line - off, "2>&1");
    const char *sh[] = {"/bin/sh", "-c", line, NULL};
    char *text = NULL;
    int code = wf_test_run(sh, NULL, NULL, &text, 10000);
    free(bin);
    if (out)
        *out = text;
    else
        free(text);
    return code;
}
