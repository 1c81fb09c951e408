/* chaos.h - the chaos suite (wf-chaos): one environment per scenario (a private redis-server, a
 * wf-worker supervisor with the test and chaos workflows, a producer), faults injected while
 * runs flow, and the accounting that proves no accepted run was lost, none completed twice and
 * no recorded step ran again.
 *
 * Files: chaos_env.c (Redis, workers, producing runs), chaos_report.c (settling and counting),
 * chaos_scenarios.c (the faults), chaos_main.c (the command line and the summary).
 */
#ifndef WF_CHAOS_H
#define WF_CHAOS_H

#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "harness.h"
#include "wf/wf.h"

/* What a run executes, and so what it must end as. */
typedef enum chaos_kind {
    K_STEPPER = 0, /* tests/workflows/stepper.c, 3 steps: completed {"sum":30,"event":null} */
    K_SLOW,        /* tests/workflows/slow.c, 1500 ms: completed "slept" */
    K_HANG,        /* chaos/workflows/hang.c: ignores cancellation: terminated by its timeout */
    K_CRASH,       /* chaos/workflows/crash.c: SIGSEGV: failed after max_reclaims */
    K_LEAK,        /* chaos/workflows/leak.c: leaks 4 MiB: completed "leaked" */
    K__COUNT
} chaos_kind;

typedef struct chaos_run {
    char id[96];
    chaos_kind kind;
    int accepted;        /* wf_run_workflow_ex returned the run */
    int64_t accepted_ms; /* wall clock when it did */
} chaos_run;

/* Worker pool and Redis settings of a scenario. Zero fields take the defaults noted. */
typedef struct chaos_opts {
    int processes;          /* default 2 */
    int concurrency;        /* default 4 */
    int lease_ms;           /* default 1000 */
    int drain_ms;           /* default 5000 */
    int stuck_grace_ms;     /* default 1500 */
    int max_rss_mb;         /* default 0: none */
    const char *redis_conf; /* extra redis.conf lines, or NULL */
} chaos_opts;

typedef struct chaos_env {
    const char *name;
    int seconds; /* length of the fault phase */
    chaos_opts o;
    wf_test_redis redis;
    char dir[256], worker_log[300], exec_log[300];
    pid_t sup;          /* the wf-worker supervisor, 0 when not running */
    int sup_status_bad; /* a supervisor did not exit 0 after SIGTERM */
    wf_client *cl;
    redisContext *rc;
    chaos_run *runs;
    int nruns, cap, seq;
    int64_t crash_ms[512]; /* wall clock of each kill -9 of Redis (everysec loss windows) */
    int ncrash;
    int64_t loss_window_ms; /* a run accepted this close before a crash may be lost (0: none) */
    int no_reclaims;        /* no worker dies in this scenario: any reclaimed lease is a fault */
    char notes[512];        /* scenario figures for the report */
    char problems[1024];    /* why the scenario failed, beyond the counts */
} chaos_env;

/* ---- chaos_env.c ---------------------------------------------------------------------------- */

int chaos_begin(chaos_env *e, const char *name, int seconds, const chaos_opts *o);
void chaos_end(chaos_env *e, int passed);
int chaos_workers_start(chaos_env *e);
/* SIGTERM to the supervisor, wait for its drain; returns its wait status (-1: not running). */
int chaos_workers_stop(chaos_env *e);
/* Worker processes (children of the supervisor), up to max. */
int chaos_children(chaos_env *e, pid_t *out, int max);
/* Starts `n` runs of `kind`; runs whose enqueue failed (Redis down) are retried by chaos_pump. */
void chaos_submit(chaos_env *e, chaos_kind kind, int n);
void chaos_pump(chaos_env *e);
/* The driver's own connection, reconnected when needed (NULL while Redis is down). */
redisContext *chaos_redis(chaos_env *e);
/* Redis faults: kill -9 / SHUTDOWN NOSAVE, and start again on the same port, dir and AOF. */
void chaos_redis_kill9(chaos_env *e);
void chaos_redis_shutdown(chaos_env *e);
int chaos_redis_restart(chaos_env *e);
void chaos_note(chaos_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void chaos_problem(chaos_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t chaos_now_ms(void);
void chaos_nap(int ms);

/* ---- chaos_report.c ------------------------------------------------------------------------- */

/* Waits (at most timeout_ms) until every accepted run is in a final state. */
void chaos_settle(chaos_env *e, int timeout_ms);

typedef struct chaos_counts {
    int started, completed, failed, duplicated, lost, lost_in_window, rerun, wrong;
    int step_execs;
    int expected_failures; /* crash/hang runs that ended as they must */
} chaos_counts;

/* Counts everything, prints the scenario's block, returns 1 when it passed. */
int chaos_report(chaos_env *e, chaos_counts *c);

#endif
