/* harness.h - test support: a real redis-server per test on a free loopback port, child
 * processes, and waiting for conditions with a deadline (never a bare sleep). */
#ifndef WF_TEST_HARNESS_H
#define WF_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "wf/wf.h"

typedef struct wf_test_redis {
    pid_t pid;
    int port;
    char dir[256]; /* temp dir holding its config, log, data */
    char url[128]; /* redis://127.0.0.1:PORT, or the shared cluster's redis+cluster:// URL */
    int cluster;   /* 1: cluster mode's stand-in (below): pid 0, port is one master's */
} wf_test_redis;

/* Starts redis-server (no persistence unless `extra_conf` says otherwise; extra_conf lines are
 * appended to its config file, may be NULL) on a free port and waits until it answers PING.
 * In cluster mode (below) and with extra_conf NULL it starts nothing: it empties the shared
 * cluster (FLUSHALL on every master) and fills *r with the cluster's URL, a temp dir of its own
 * and one master's port. Returns 0 or -1 (message on stderr). */
int wf_test_redis_start(wf_test_redis *r, const char *extra_conf);

/* Restarts a server wf_test_redis_start started (not the shared cluster): SHUTDOWN NOSAVE (its
 * AOF, if configured, is kept), then redis-server on the same config, dir and port, with
 * `extra_args` (e.g. {"--key-load-delay", "700", NULL}; may be NULL). Returns 0 once the port
 * accepts connections, which may be before the server is done loading its data set (it answers
 * LOADING until then), or -1. */
int wf_test_redis_restart(wf_test_redis *r, const char *const *extra_args);

/* The live (not zombie) child processes of `parent`, from /proc, sorted by pid; at most `max`
 * are written to out. Returns how many. */
int wf_test_children(pid_t parent, pid_t *out, int max);

/* SIGTERM, then SIGKILL after 5 s; removes its dir. Safe on a zeroed struct. */
void wf_test_redis_stop(wf_test_redis *r);

/* A fresh synchronous connection to it (caller frees with redisFree()), or NULL. */
redisContext *wf_test_redis_connect(const wf_test_redis *r);

/* Path of a built program or file under the build dir, e.g. wf_test_path("wf-worker"). Static
 * buffer per call site is not used: returns a malloc'd string the caller frees. */
char *wf_test_path(const char *rel);

/* Forks and execs argv (argv[0] a path) with `env` ("K=V" strings, NULL-terminated, added to the
 * environment; may be NULL). stdout+stderr go to `log_path` (NULL: inherit). Returns the pid. */
pid_t wf_test_spawn(const char *const *argv, const char *const *env, const char *log_path);

/* Runs argv to completion (with env as above, stdin from `input` if not NULL), capturing stdout
 * into *out (malloc'd, NUL-terminated; caller frees). Returns the exit status (0-255), or -1 when
 * it could not run or was killed by a signal, or -2 when it ran past timeout_ms (then killed). */
int wf_test_run(const char *const *argv, const char *const *env, const char *input, char **out,
                int timeout_ms);

/* Polls cond(arg) every few ms until it returns non-zero or timeout_ms passes.
 * Returns 1 when the condition held, 0 on timeout. */
int wf_test_wait(int (*cond)(void *arg), void *arg, int timeout_ms);

/* 1 when child *pid has exited (then it is reaped and *pid set to 0), 0 while it runs: for a wait
 * condition "ready, or gone" while a server starts. */
int wf_test_exited(pid_t *pid);

/* Sends `sig` to pid and reaps it (waits at most timeout_ms, then SIGKILL). Returns the wait
 * status, or -1. */
int wf_test_kill(pid_t pid, int sig, int timeout_ms);

/* The whole file at `path` as a malloc'd NUL-terminated string ("" when it cannot be read).
 * Caller frees. */
char *wf_test_slurp(const char *path);

/* rm -rf `dir`, saying so on stderr when it fails; nothing when dir is "" or $WF_TEST_KEEP is
 * set (to look at a failed test's files). */
void wf_test_remove_tree(const char *dir);

/* A blocking TCP connection to 127.0.0.1:port whose reads time out after 10 s, or -1. */
int wf_test_tcp_connect(int port);

/* Reads an HTTP/1.x answer on `fd` to its end (the request said "Connection: close") and closes
 * fd. Returns the status code and sets *body (and *head, the status line and headers, when head
 * is not NULL) to malloc'd strings the caller frees; returns -1, setting nothing, when the
 * answer could not be read or parsed. */
int wf_test_http_read(int fd, char **head, char **body);

/* A free TCP port on 127.0.0.1, picked at random below the kernel's ephemeral range (so no
 * outgoing connection takes it before the server the test starts binds it); bind-checked. */
int wf_test_free_port(void);

/* 1 when 127.0.0.1:port can be bound now (nothing holds it). */
int wf_test_port_free(int port);

/* 1 when something accepts TCP connections on 127.0.0.1:port, else 0 (connects and closes). */
int wf_test_port_open(int port);

/* The full path of `prog` found in $PATH, for wf_test_spawn (which wants a path), or NULL when it
 * is not installed. Caller frees. */
char *wf_test_which(const char *prog);

/* Take a reply (NULL allowed) and free it: its integer, or -1 when it is not one; a malloc'd copy
 * of its string or status, or NULL. */
long long wf_test_reply_int(redisReply *r);
char *wf_test_reply_str(redisReply *r);
/* Runs a command on a connection and returns the integer / string reply (helpers for asserts);
 * wf_test_cmd_str returns a malloc'd copy or NULL. Macros so that the one varargs sender,
 * wf_test_command (below, cluster-aware), serves them both. */
#define wf_test_cmd_int(c, ...) wf_test_reply_int(wf_test_command((c), __VA_ARGS__))
#define wf_test_cmd_str(c, ...) wf_test_reply_str(wf_test_command((c), __VA_ARGS__))

/* ---- wf-worker processes (worker_start.c) ---------------------------------------------------- */

/* 1 when every name of `workflows` (NULL-terminated) is registered (HEXISTS wf:workflows NAME),
 * else 0. */
int wf_test_registered(redisContext *c, const char *const *workflows);
/* The same under key prefix `prefix` (HEXISTS PREFIX:workflows NAME). */
int wf_test_registered_in(redisContext *c, const char *prefix, const char *const *workflows);

/* How wf_test_worker_start starts a wf-worker. Zero what you don't need. */
typedef struct wf_test_worker {
    const char *redis_url;        /* --redis URL */
    const char *workflows_dir;    /* --workflows DIR; NULL: the build's tests/workflows */
    const char *const *extra;     /* more arguments, NULL-terminated; may be NULL */
    const char *const *env;       /* "K=V" added to its environment; may be NULL */
    const char *log_path;         /* its stdout+stderr; NULL: inherited */
    redisContext *rc;             /* where to look for its registration */
    const char *const *workflows; /* names it must register (NULL-terminated); NULL: no wait */
    int timeout_ms;               /* how long registering may take; 0: 10000 */
    const char *prefix;           /* its key prefix (the URL's ?prefix=); NULL: "wf" */
    /* Called with before_failing_arg before failing the test (after the worker is killed), e.g.
     * a .init's clean-up: Criterion runs no .fini after a failed .init. May be NULL. */
    void (*before_failing)(void *arg);
    void *before_failing_arg;
} wf_test_worker;

/* Spawns `wf-worker --redis URL --workflows DIR EXTRA...` and waits until all of w->workflows are
 * registered. Returns its pid. Fails the Criterion test, with the worker's log, when it cannot be
 * spawned or does not register in time (then it is killed first, so nothing is left behind). */
pid_t wf_test_worker_start(const wf_test_worker *w);

/* ---- runs, temp dirs and worker logs (harness_wf.c) -------------------------------------------
 */

/* Redis TIME on `c` in ms: the scripts' clock, which deadlines and schedules follow. */
long long wf_test_redis_ms(redisContext *c);
/* 1 once the server's clock on `c` reaches `at_ms` (polled with wf_test_wait), 0 after
 * timeout_ms. */
int wf_test_wait_redis_ms(redisContext *c, long long at_ms, int timeout_ms);

/* Makes the suite's temp dir /tmp/wf-test-TAG-XXXXXX in `dir` (failing the test when it cannot);
 * remove it with wf_test_remove_tree(). */
void wf_test_temp_dir(char *dir, size_t size, const char *tag);

/* A client on `url`, failing the test when it cannot connect. Caller frees with wf_client_free().
 */
wf_client *wf_test_client(const char *url);

/* Initialises `sb` with the msgpack of the JSON text `json`, failing the test when it is not
 * JSON. Caller destroys sb. */
void wf_test_msgpack(const char *json, msgpack_sbuffer *sb);
/* An empty buffer and a packer writing into it, to build a payload value by value (free the
 * buffer with msgpack_sbuffer_destroy). */
void wf_test_packer(msgpack_sbuffer *sb, msgpack_packer *pk);

/* Starts `workflow` with `json` (NULL: no input) converted to msgpack, with `opt` (may be NULL).
 * Fails the test when the JSON or the start is refused. Caller frees with wf_run_free(). */
wf_run *wf_test_start_json(wf_client *cl, const char *workflow, const char *json,
                           const wf_run_options *opt);

/* Waits up to `ms` for `run` to be in `state`, then fills `st` (caller clears); fails the test,
 * with the worker's log at `log_path` (may be NULL), when it is not. */
void wf_test_wait_state(wf_run *run, wf_state state, int ms, wf_status *st, const char *log_path);

/* Reads the status of run `id` into *st (caller clears with wf_status_clear()), failing the test
 * when the run or its status cannot be read. */
void wf_test_status_of(wf_client *cl, const char *id, wf_status *st);

/* The raw hash field `name` of a status (e.g. "reclaims") as a number; 0 when absent. */
long long wf_test_raw_field(const wf_status *st, const char *name);

/* How many runs of `workflow` stand in a state index other than completed (wf:{W}:state:*). */
long long wf_test_not_completed(redisContext *c, const char *workflow);

/* 1 when `st` is completed with an output that reads as exactly the JSON text `expect`. */
int wf_test_completed_with(const wf_status *st, const char *expect);

/* Asserts that the msgpack `data` reads back as exactly the JSON text `expect`. */
void wf_test_assert_json_is(const void *data, size_t len, const char *expect);

/* How many times `what` occurs in `text` (NULL: none), e.g. a message in a worker's log. */
int wf_test_count(const char *text, const char *what);

/* Waits up to timeout_ms until the file at `path` (a worker's log) says `text` at least `times`
 * times; fails the test with the file when it does not. */
void wf_test_wait_log(const char *path, const char *text, int times, int timeout_ms);

/* How many lines of the test workflows' exec log at `path` begin with "ID " (one per execution
 * of a step or handler of run `id`; see tests/workflows). */
int wf_test_exec_lines(const char *path, const char *id);

/* Reads a worker's log at `path`: 1 when no sanitizer spoke in it ("Sanitizer", "runtime
 * error"), else 0. Prints it to stderr when a sanitizer spoke, when `show` is set (e.g. the worker
 * did not drain) or when $WF_TEST_SHOW_LOG is set. */
int wf_test_log_quiet(const char *path, int show);

/* Runs `wf-worker ARGS...` (NULL-terminated) to completion, at most 10 s, its stdout and stderr
 * into *out (malloc'd; `out` NULL: dropped). Returns its exit status as wf_test_run does. */
int wf_test_run_worker(const char *const *args, char **out);

/* Stops `worker` (0: none ran) with SIGTERM: it must drain and exit 0 within 30 s, and no
 * sanitizer may speak in its log at log_path (printed when something is wrong). Returns what was
 * wrong, or NULL; a teardown frees the rest, then asserts `cr_assert_null(why, "%s", why)`. */
const char *wf_test_worker_stop(pid_t worker, const char *log_path);

/* Cluster mode. When $WF_TEST_CLUSTER_FILE names the file that tests/cluster_fixture.c wrote
 * ("url redis+cluster://..." first), every suite's "Redis" is that shared 3-master, 3-replica
 * cluster: ctest registers each suite a second time as NAME_cluster (tests/CMakeLists.txt).
 * A test's own connections work in both modes when it sends with wf_test_command and
 * wf_test_command_argv (not hiredis's redisCommand): they follow MOVED and ASK, and commands over
 * the whole data set (DBSIZE, KEYS, FLUSHALL, FLUSHDB, SCRIPT FLUSH, CONFIG SET, MEMORY PURGE,
 * CLIENT KILL, INFO clients) go to every master, integer replies added up and arrays concatenated.
 * Outside cluster mode they are hiredis's own. */
int wf_test_cluster_mode(void);
/* The shared cluster's URL, or NULL outside cluster mode. */
const char *wf_test_cluster_url(void);
redisReply *wf_test_command(redisContext *c, const char *fmt, ...);
redisReply *wf_test_vcommand(redisContext *c, const char *fmt, va_list ap);
redisReply *wf_test_command_argv(redisContext *c, int argc, const char **argv, const size_t *lens);

/* Skips the current Criterion test in cluster mode, saying why: for tests about one server's own
 * life (stopping it, pausing it, its replica), which the cluster suites cover their own way. */
#define WF_TEST_SINGLE_SERVER_ONLY(why)                                                            \
    do {                                                                                           \
        if (wf_test_cluster_mode()) cr_skip_test("single server only: %s", why);                   \
    } while (0)

#endif
