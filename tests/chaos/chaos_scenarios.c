/* chaos_scenarios.c - the faults. Each scenario starts its own Redis and worker pool, produces
 * stepper runs (three recorded steps each) at a steady rate for the fault phase while injecting
 * its fault, lets everything settle, then counts (chaos_report.c). A scenario returns 1 when it
 * passed. */
#include "chaos.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TICK_MS     50
#define SETTLE_MS   90000
#define RUNS_A_TICK 2 /* 40 stepper runs a second */

typedef void (*fault_fn)(chaos_env *e, int64_t elapsed_ms, void *arg);

/* The fault phase: every tick, start RUNS_A_TICK stepper runs (retrying those Redis did not
 * take) and let the scenario act. */
static void load(chaos_env *e, fault_fn fault, void *arg)
{
    int64_t start = chaos_now_ms(), end = start + (int64_t)e->seconds * 1000;
    while (chaos_now_ms() < end) {
        chaos_pump(e);
        chaos_submit(e, K_STEPPER, RUNS_A_TICK);
        if (fault) fault(e, chaos_now_ms() - start, arg);
        chaos_nap(TICK_MS);
    }
}

static int finish(chaos_env *e)
{
    chaos_settle(e, SETTLE_MS);
    chaos_counts c;
    int passed = chaos_report(e, &c);
    chaos_end(e, passed);
    return passed;
}

static int count_in_log(chaos_env *e, const char *what)
{
    char *log = wf_test_slurp(e->worker_log);
    int n = 0;
    for (const char *p = log; log && (p = strstr(p, what)); p++) n++;
    free(log);
    return n;
}

/* ---- Worker processes SIGKILLed at random -----------------------------------------------------
 */

typedef struct every {
    int64_t period_ms, next;
    int count;
} every;

static int due(every *ev, int64_t elapsed)
{
    if (elapsed < ev->next) return 0;
    ev->next = elapsed + ev->period_ms;
    return 1;
}

static void kill_worker(chaos_env *e, int64_t elapsed, void *arg)
{
    every *ev = arg;
    if (!due(ev, elapsed)) return;
    pid_t kids[16];
    int n = chaos_children(e, kids, 16);
    if (n > 0 && kill(kids[rand() % n], SIGKILL) == 0) ev->count++;
}

int chaos_worker_sigkill(int seconds)
{
    chaos_env e;
    printf("\n== worker-sigkill: SIGKILL a random worker process every 300 ms (%d s)\n", seconds);
    chaos_opts o = {.processes = 3};
    if (chaos_begin(&e, "worker-sigkill", seconds, &o) != 0) return finish(&e);
    every ev = {300, 300, 0};
    load(&e, kill_worker, &ev);
    chaos_note(&e, "worker processes killed %d", ev.count);
    if (ev.count == 0) chaos_problem(&e, "no worker process was killed");
    return finish(&e);
}

/* ---- Redis killed and restarted with AOF ------------------------------------------------------
 */

static void restart_redis(chaos_env *e, int64_t elapsed, void *arg)
{
    every *ev = arg;
    if (!due(ev, elapsed)) return;
    /* Alternate a crash (kill -9) and a clean SHUTDOWN NOSAVE (which still flushes the AOF). */
    if (ev->count % 2 == 0)
        chaos_redis_kill9(e);
    else
        chaos_redis_shutdown(e);
    ev->count++;
    chaos_redis_restart(e);
}

int chaos_redis_aof(int seconds, int always)
{
    chaos_env e;
    const char *name = always ? "redis-restart-always" : "redis-restart-everysec";
    printf("\n== %s: kill -9 / SHUTDOWN NOSAVE of Redis every 2 s, restarted on the same port and "
           "AOF (appendfsync %s) (%d s)\n",
           name, always ? "always" : "everysec", seconds);
    chaos_opts o = {.redis_conf = always ? "appendonly yes\nappendfsync always\n"
                                         : "appendonly yes\nappendfsync everysec\n"};
    if (chaos_begin(&e, name, seconds, &o) != 0) return finish(&e);
    /* Redis's own contract: with everysec a crash may lose up to about a second of acknowledged
     * writes (two in the worst case); with always, nothing acknowledged. */
    e.loss_window_ms = always ? 0 : 2000;
    every ev = {2000, 2000, 0};
    load(&e, restart_redis, &ev);
    chaos_note(&e, "Redis restarts %d (%d kill -9)", ev.count, e.ncrash);
    if (ev.count == 0) chaos_problem(&e, "Redis was never restarted");
    return finish(&e);
}

/* ---- Redis restarted on a data set that takes seconds to load ----------------------------------
 */

static int aof_rewritten(void *arg)
{
    redisContext *c = chaos_redis(arg);
    char *info = c ? wf_test_cmd_str(c, "INFO persistence") : NULL;
    int done = info && strstr(info, "aof_rewrite_in_progress:0") &&
               strstr(info, "aof_rewrite_scheduled:0");
    free(info);
    return done;
}

int chaos_redis_slow_load(int seconds)
{
    chaos_env e;
    printf("\n== redis-restart-slow-load: Redis (AOF always) killed or shut down every 4 s and "
           "restarted on a data set that takes about 1.5 s to load (LOADING meanwhile) (%d s)\n",
           seconds);
    /* key-load-delay (µs per key) only slows loading: the first, empty start is quick. Small
     * event intervals make Redis answer LOADING while it loads, as it does with a big AOF. */
    chaos_opts o = {.lease_ms = 8000,
                    .redis_conf = "appendonly yes\nappendfsync always\nkey-load-delay 500\n"
                                  "loading-process-events-interval-bytes 1024\n"};
    if (chaos_begin(&e, "redis-restart-slow-load", seconds, &o) != 0) return finish(&e);
    /* 3,000 padding keys in the AOF's base, where the delay applies per key. */
    redisContext *c = chaos_redis(&e);
    char *pop = c ? wf_test_cmd_str(c, "DEBUG POPULATE 3000 pad 8") : NULL;
    char *rw = pop ? wf_test_cmd_str(c, "BGREWRITEAOF") : NULL;
    if (!rw || !wf_test_wait(aof_rewritten, &e, 20000)) chaos_problem(&e, "could not pad the AOF");
    free(pop);
    free(rw);
    /* The lease (8 s) outlives each outage: no worker dies, so no lease may be reclaimed. */
    e.no_reclaims = 1;
    every ev = {4000, 3000, 0};
    load(&e, restart_redis, &ev);
    chaos_note(&e, "Redis restarts %d (%d kill -9), each loading for about 1.5 s", ev.count,
               e.ncrash);
    if (ev.count == 0) chaos_problem(&e, "Redis was never restarted");
    return finish(&e);
}

/* ---- CLIENT KILL of every normal connection ---------------------------------------------------
 */

static void client_kill(chaos_env *e, int64_t elapsed, void *arg)
{
    every *ev = arg;
    if (!due(ev, elapsed)) return;
    redisContext *c = chaos_redis(e);
    if (!c) return;
    long long n = wf_test_cmd_int(c, "CLIENT KILL TYPE normal SKIPME yes");
    if (n > 0) ev->count += (int)n;
}

int chaos_client_kill(int seconds)
{
    chaos_env e;
    printf("\n== client-kill: CLIENT KILL TYPE normal (workers' and producer's connections) every "
           "500 ms (%d s)\n",
           seconds);
    if (chaos_begin(&e, "client-kill", seconds, NULL) != 0) return finish(&e);
    every ev = {500, 500, 0};
    load(&e, client_kill, &ev);
    chaos_note(&e, "connections killed %d", ev.count);
    if (ev.count == 0) chaos_problem(&e, "no connection was killed");
    return finish(&e);
}

/* ---- Redis paused, a worker frozen, past the lease --------------------------------------------
 */

typedef struct pause_state {
    every ev;
    int pauses, sleeps, freezes;
    pid_t frozen;
    int64_t thaw_at;
} pause_state;

static void pause_redis(chaos_env *e, int64_t elapsed, void *arg)
{
    pause_state *ps = arg;
    if (ps->frozen && elapsed >= ps->thaw_at) {
        kill(ps->frozen, SIGCONT);
        ps->frozen = 0;
    }
    if (!due(&ps->ev, elapsed)) return;
    int step = ps->pauses + ps->sleeps + ps->freezes;
    if (step % 3 == 0) { /* every client frozen out for 2.5 s, past the 1 s lease */
        redisContext *c = chaos_redis(e);
        char *ok = c ? wf_test_cmd_str(c, "CLIENT PAUSE 2500 ALL") : NULL;
        if (!ok) chaos_problem(e, "CLIENT PAUSE failed");
        free(ok);
        ps->pauses++;
    } else if (step % 3 == 1) { /* the server itself stops for 2.5 s */
        redisContext *c = wf_test_redis_connect(&e->redis);
        struct timeval tv = {10, 0};
        if (c) redisSetTimeout(c, tv);
        char *ok = c ? wf_test_cmd_str(c, "DEBUG SLEEP 2.5") : NULL;
        if (!ok) chaos_problem(e, "DEBUG SLEEP failed");
        free(ok);
        if (c) redisFree(c);
        ps->sleeps++;
    } else { /* one worker process frozen (a GC-like stall) while its leases expire */
        pid_t kids[16];
        int n = chaos_children(e, kids, 16);
        pid_t victim = n > 0 ? kids[rand() % n] : 0;
        if (victim > 0 && kill(victim, SIGSTOP) == 0) {
            ps->frozen = victim;
            ps->thaw_at = elapsed + 2500;
        }
        ps->freezes++;
    }
}

int chaos_pause(int seconds)
{
    chaos_env e;
    printf("\n== pause: CLIENT PAUSE 2500 ALL, DEBUG SLEEP 2.5, SIGSTOP of a worker process for "
           "2.5 s, in turn every 3 s, past the 1 s lease (%d s)\n",
           seconds);
    if (chaos_begin(&e, "pause", seconds, NULL) != 0) return finish(&e);
    pause_state ps = {{3000, 1000, 0}, 0, 0, 0, 0, 0};
    load(&e, pause_redis, &ps);
    if (ps.frozen) kill(ps.frozen, SIGCONT);
    chaos_settle(&e, SETTLE_MS);
    chaos_note(&e,
               "CLIENT PAUSE %d, DEBUG SLEEP %d, worker frozen %d; results dropped as no "
               "longer the worker's %d",
               ps.pauses, ps.sleeps, ps.freezes,
               count_in_log(&e, "taken over meanwhile") + count_in_log(&e, "result dropped"));
    if (ps.pauses + ps.sleeps + ps.freezes < 3 && e.seconds >= 9)
        chaos_problem(&e, "not every kind of pause happened");
    return finish(&e);
}

/* ---- Handlers that hang, crash, leak -----------------------------------------------------------
 */

/* Starts `left` runs of `kind`, one per period, during the fault phase. */
typedef struct special {
    every ev;
    chaos_kind kind;
    int left;
} special;

static void submit_special(chaos_env *e, int64_t elapsed, void *arg)
{
    special *sp = arg;
    if (sp->left > 0 && due(&sp->ev, elapsed)) {
        chaos_submit(e, sp->kind, 1);
        sp->left--;
    }
}

/* Runs scenario `name`: normal load with `count` runs of `kind` among it, one every 2 s, then
 * lets it settle. Returns -1 when the scenario could not begin. */
static int with_special_runs(chaos_env *e, const char *name, int seconds, chaos_kind kind,
                             int count)
{
    if (chaos_begin(e, name, seconds, NULL) != 0) return -1;
    special sp = {{2000, 0, 0}, kind, count};
    load(e, submit_special, &sp);
    chaos_settle(e, SETTLE_MS);
    return 0;
}

int chaos_hang(int seconds)
{
    chaos_env e;
    printf("\n== hang: handlers that ignore cancellation past their 500 ms timeout (stuck grace "
           "1500 ms) among normal runs (%d s)\n",
           seconds);
    if (with_special_runs(&e, "hang", seconds, K_HANG, 3) != 0) return finish(&e);
    int recycled = count_in_log(&e, "drained to be recycled");
    chaos_note(&e, "worker processes recycled %d", recycled);
    if (recycled == 0) chaos_problem(&e, "no worker process was recycled");
    return finish(&e);
}

int chaos_crash(int seconds)
{
    chaos_env e;
    printf("\n== crash: handlers that SIGSEGV their worker process (max_reclaims 5) among normal "
           "runs (%d s)\n",
           seconds);
    if (with_special_runs(&e, "crash", seconds, K_CRASH, 2) != 0) return finish(&e);
    chaos_note(&e, "worker processes crashed %d", count_in_log(&e, "killed by signal 11"));
    return finish(&e);
}

typedef struct leak_state {
    int64_t max_rss_kb;
} leak_state;

static void leak_some(chaos_env *e, int64_t elapsed, void *arg)
{
    (void)elapsed;
    leak_state *ls = arg;
    chaos_submit(e, K_LEAK, 1);
    pid_t kids[16];
    int n = chaos_children(e, kids, 16);
    for (int i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/statm", (int)kids[i]);
        FILE *f = fopen(path, "r");
        long long size, res;
        if (f && fscanf(f, "%lld %lld", &size, &res) == 2) {
            int64_t kb = res * (sysconf(_SC_PAGESIZE) / 1024);
            if (kb > ls->max_rss_kb) ls->max_rss_kb = kb;
        }
        if (f) fclose(f);
    }
}

int chaos_leak(int seconds)
{
    chaos_env e;
    printf("\n== leak: a handler leaking 4 MiB a run, 20 runs a second, workers limited to "
           "--max-rss-mb 128 (%d s)\n",
           seconds);
    chaos_opts o = {.max_rss_mb = 128};
    if (chaos_begin(&e, "leak", seconds, &o) != 0) return finish(&e);
    leak_state ls = {0};
    load(&e, leak_some, &ls);
    chaos_settle(&e, SETTLE_MS);
    int recycled = count_in_log(&e, "drained to be recycled");
    chaos_note(&e, "worker processes recycled %d; largest worker RSS seen %lld MiB", recycled,
               (long long)(ls.max_rss_kb / 1024));
    if (recycled == 0) chaos_problem(&e, "no worker process was recycled");
    return finish(&e);
}

/* ---- SIGTERM of the supervisor under load ---------------------------------------------------- */

static void term_workers(chaos_env *e, int64_t elapsed, void *arg)
{
    every *ev = arg;
    if (elapsed >= 1000 && elapsed % 1500 < TICK_MS) chaos_submit(e, K_SLOW, 2);
    if (!due(ev, elapsed)) return;
    chaos_workers_stop(e); /* checks the drain exits 0 */
    ev->count++;
    redisContext *c = chaos_redis(e);
    long long running = 0;
    if (c) {
        running = wf_test_cmd_int(c, "ZCARD wf:{stepper}:leases") +
                  wf_test_cmd_int(c, "ZCARD wf:{slow}:leases");
    }
    if (running != 0)
        chaos_problem(e, "%lld runs still `running` after the supervisor drained", running);
    chaos_workers_start(e);
}

int chaos_sigterm(int seconds)
{
    chaos_env e;
    printf("\n== sigterm: SIGTERM to the supervisor under load every 3 s (drain 1000 ms, runs of "
           "1.5 s in flight), then a new pool (%d s)\n",
           seconds);
    chaos_opts o = {.drain_ms = 1000};
    if (chaos_begin(&e, "sigterm", seconds, &o) != 0) return finish(&e);
    every ev = {3000, 2500, 0};
    load(&e, term_workers, &ev);
    chaos_note(&e, "drains %d (all exited 0: %s); runs handed back %d", ev.count,
               e.sup_status_bad ? "no" : "yes", count_in_log(&e, "run handed back to the queue"));
    if (ev.count == 0) chaos_problem(&e, "the supervisor was never stopped");
    return finish(&e);
}
