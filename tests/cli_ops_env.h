/* cli_ops_env.h - what the suites of the `wf` command's operator verbs (test_cli_ops_*.c) share
 * on top of ops_env.h: their Criterion suite's set-up, a run that stays queued, step records
 * written as the worker would, and `wf` run through a shell. Lives in cli_ops_env.c. */
#ifndef WF_TEST_CLI_OPS_ENV_H
#define WF_TEST_CLI_OPS_ENV_H

#include <jansson.h>

#include "ops_env.h"

/* The suites' .init and .fini: ops_env_start() and ops_env_stop(). */
void cli_ops_setup(void);
void cli_ops_teardown(void);

/* A workflow that is registered but has no worker: its runs stay queued. Returns the run's id
 * (caller frees). */
char *queued_run(void);

/* Writes a step record into run `id`'s steps hash, as the worker's step engine would. */
void put_step(const char *id, const char *name, const char *kind, const char *status, long long t0,
              long long t1, const char *error, const char *result_json);

/* 1 when run `id`'s key made by `key_of` (wf__key_run, wf__key_steps, ...) exists, else 0. */
long long run_key_exists(char *(*key_of)(const char *, const char *, const char *), const char *id);

/* 1 when run `id` has a steps hash, else 0. */
long long steps_exist(const char *id);

/* Runs `/bin/sh -c CMD` where CMD is `fmt` formatted; "$WF" in it is the built wf with --redis.
 * Returns the exit code, *out the shell's stdout (caller frees). */
int sh(char **out, const char *fmt, ...);

/* The integer member `key` of o (0 when there is none). */
json_int_t ifield(json_t *o, const char *key);

#endif
