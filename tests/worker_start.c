/* worker_start.c - starting a real wf-worker for a test and waiting, with a deadline, until it
 * has registered its workflows in wf:workflows (harness.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "harness.h"

#define ARGS_MAX 48

int wf_test_registered(redisContext *c, const char *const *workflows)
{
    for (; workflows && *workflows; workflows++)
        if (wf_test_cmd_int(c, "HEXISTS wf:workflows %s", *workflows) != 1) return 0;
    return 1;
}

typedef struct reg_wait {
    redisContext *c;
    const char *const *workflows;
} reg_wait;

static int all_registered(void *arg)
{
    reg_wait *w = arg;
    return wf_test_registered(w->c, w->workflows);
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
    reg_wait rw = {w->rc, w->workflows};
    if (!wf_test_wait(all_registered, &rw, w->timeout_ms > 0 ? w->timeout_ms : 10000)) {
        const char *missing = w->workflows[0];
        for (const char *const *p = w->workflows; *p; p++) {
            const char *one[] = {*p, NULL};
            if (!wf_test_registered(w->rc, one)) {
                missing = *p;
                break;
            }
        }
        int status = wf_test_kill(pid, SIGKILL, 5000);
        char *log = w->log_path ? wf_test_slurp(w->log_path) : NULL;
        cr_assert_fail("wf-worker (pid %d, wait status 0x%x) never registered its workflows "
                       "(%s is missing); its log:\n%s",
                       (int)pid, status, missing, log ? log : "(not captured)");
    }
    return pid;
}
