/* worker_env.c - the shared set-up and helpers of the worker suites (worker_env.h). */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_env.h"

void worker_setup(void)
{
    pool_env_setup("worker");
}

void worker_teardown(void)
{
    pool_env_teardown();
}

/* What start_worker waits for. */
static const char *const registers[] = {"echo", "fatal",   "flaky", "sender",
                                        "slow", "timeout", NULL};

/* Starts wf-worker with the test workflows plus `extra` flags (NULL-terminated). */
pid_t start_worker(const char *const *extra)
{
    const char *args[32] = {"--log-level", "info"};
    int n = 2;
    for (; extra && *extra && n < 30; extra++) args[n++] = *extra;
    args[n] = NULL;
    return pool_env_worker(args, NULL, registers);
}

wf_run *start_run(const char *workflow, const void *payload, size_t len)
{
    wf_error err = {0};
    wf_run *run = wf_run_workflow(cl, workflow, payload, len, &err);
    cr_assert_not_null(run, "start %s: %s", workflow, err.message);
    return run;
}

size_t pack_int(char *buf, long long v)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    wf_test_packer(&sb, &pk);
    msgpack_pack_long_long(&pk, v);
    memcpy(buf, sb.data, sb.size);
    size_t n = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return n;
}

/* start_run with the integer `v` (packed by pack_int) as the payload. */
wf_run *start_run_int(const char *workflow, long long v)
{
    char p[16];
    size_t n = pack_int(p, v);
    return start_run(workflow, p, n);
}

/* Starts a run of `slow` that holds its slot for `ms` and waits until it is running. */
wf_run *start_slow_running(long long ms)
{
    wf_run *run = start_run_int("slow", ms);
    await_state(run, WF_STATE_RUNNING, 10000);
    return run;
}

/* How many lines of the exec log name `id`. */
int exec_count(const char *id)
{
    return wf_test_exec_lines(exec_path, id);
}

void wait_log(const char *text, int timeout_ms)
{
    wf_test_wait_log(log_path, text, 1, timeout_ms);
}

/* Pid of the worker process holding a running run (from the consumer name HOST:PID:HEX). */
pid_t holder_pid(wf_run *run)
{
    char *worker = wf_test_cmd_str(rc, "HGET %s worker", wf_run_native(run));
    cr_assert_not_null(worker);
    char *colon = strchr(worker, ':');
    cr_assert_not_null(colon);
    pid_t pid = (pid_t)strtol(colon + 1, NULL, 10);
    free(worker);
    return pid;
}

int wf_cli(char **out, const char *const *args)
{
    char *wf = wf_test_path("wf");
    const char *argv[12] = {wf, "--redis", srv.url};
    int n = 3;
    for (; *args && n < 11; args++) argv[n++] = *args;
    argv[n] = NULL;
    int st = wf_test_run(argv, NULL, NULL, out, 30000);
    free(wf);
    return st;
}
