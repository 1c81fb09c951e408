/* worker_env.h - what the worker suites (test_worker_*.c) share on top of pool_env.h: their
 * Criterion suite's set-up, starting wf-worker on the test workflows (tests/workflows) and
 * waiting for its registration, starting runs, and reading the exec log and the worker's log.
 * Lives in worker_env.c. */
#ifndef WF_TEST_WORKER_ENV_H
#define WF_TEST_WORKER_ENV_H

#include "pool_env.h"

/* The suites' .init and .fini. */
void worker_setup(void);
void worker_teardown(void);

/* Starts wf-worker with the test workflows plus `extra` flags (NULL-terminated); waits until it
 * registered them. */
pid_t start_worker(const char *const *extra);

/* Starts a run of `workflow` with a msgpack payload; fails the test when it cannot. */
wf_run *start_run(const char *workflow, const void *payload, size_t len);

/* Packs v as msgpack into buf (room for 9 bytes); returns the length. */
size_t pack_int(char *buf, long long v);

/* start_run with the integer `v` (packed by pack_int) as the payload. */
wf_run *start_run_int(const char *workflow, long long v);

/* Starts a run of `slow` that holds its slot for `ms` and waits until it is running. */
wf_run *start_slow_running(long long ms);

/* How many lines of the exec log name `id`. */
int exec_count(const char *id);

/* Waits up to timeout_ms for the worker's log to contain `text`; fails the test, printing the
 * log, when it does not. */
void wait_log(const char *text, int timeout_ms);

/* Pid of the worker process holding a running run (from the consumer name HOST:PID:HEX). */
pid_t holder_pid(wf_run *run);

/* Runs the built `wf --redis URL ARGS...` (NULL-terminated, at most 8 args) to completion; *out
 * gets its output (caller frees). Returns its exit status. */
int wf_cli(char **out, const char *const *args);

#endif
