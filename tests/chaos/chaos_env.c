/* chaos_env.c - a scenario's world: its redis-server (which the faults kill and restart on the
 * same port, dir and AOF), the wf-worker supervisor with the test and chaos workflows, and the
 * producer that starts runs with caller-chosen ids, so an enqueue whose reply was lost is retried
 * under the same id and can never create a second run. */
#include "chaos.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

static const char *const kind_workflow[K__COUNT] = {"stepper", "slow", "hang", "crash", "leak"};

int64_t chaos_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void chaos_nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void append(char *buf, size_t cap, const char *fmt, va_list ap)
{
    size_t n = strlen(buf);
    if (n + 3 >= cap) return;
    if (n) {
        buf[n++] = ';';
        buf[n++] = ' ';
        buf[n] = '\0';
    }
    vsnprintf(buf + n, cap - n, fmt, ap);
}

void chaos_note(chaos_env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append(e->notes, sizeof e->notes, fmt, ap);
    va_end(ap);
}

void chaos_problem(chaos_env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append(e->problems, sizeof e->problems, fmt, ap);
    va_end(ap);
}

/* ---- Redis ----------------------------------------------------------------------------------- */

redisContext *chaos_redis(chaos_env *e)
{
    if (e->rc && !e->rc->err) return e->rc;
    if (e->rc) redisFree(e->rc);
    e->rc = wf_test_redis_connect(&e->redis);
    return e->rc;
}

static int answers(void *arg)
{
    chaos_env *e = arg;
    redisContext *c = chaos_redis(e);
    if (!c) return 0;
    redisReply *r = wf_test_command(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS; /* not LOADING */
    if (r) freeReplyObject(r);
    return ok;
}

static void reap_redis(chaos_env *e)
{
    int status;
    if (e->redis.pid > 0) waitpid(e->redis.pid, &status, 0);
    e->redis.pid = 0;
    if (e->rc) redisFree(e->rc);
    e->rc = NULL;
}

void chaos_redis_kill9(chaos_env *e)
{
    if (e->ncrash < (int)(sizeof e->crash_ms / sizeof e->crash_ms[0]))
        e->crash_ms[e->ncrash++] = chaos_now_ms();
    kill(e->redis.pid, SIGKILL);
    reap_redis(e);
}

void chaos_redis_shutdown(chaos_env *e)
{
    redisContext *c = chaos_redis(e);
    if (c) {
        redisReply *r = wf_test_command(c, "SHUTDOWN NOSAVE");
        if (r) freeReplyObject(r);
    }
    reap_redis(e);
}

int chaos_redis_restart(chaos_env *e)
{
    char conf[300];
    snprintf(conf, sizeof conf, "%s/redis.conf", e->redis.dir);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", conf, (char *)NULL);
        _exit(127);
    }
    e->redis.pid = pid;
    if (!wf_test_wait(answers, e, 20000)) {
        chaos_problem(e, "redis-server did not come back on port %d", e->redis.port);
        return -1;
    }
    return 0;
}

/* ---- Workers --------------------------------------------------------------------------------- */

static int registered(void *arg)
{
    chaos_env *e = arg;
    redisContext *c = chaos_redis(e);
    return c && wf_test_cmd_int(c, "HLEN wf:workflows") >= 8 &&
           wf_test_cmd_int(c, "HEXISTS wf:workflows leak") == 1;
}

int chaos_workers_start(chaos_env *e)
{
    char *bin = wf_test_path("wf-worker");
    char *tdir = wf_test_path("tests/workflows");
    char *cdir = wf_test_path("tests/chaos/workflows");
    char procs[16], conc[16], lease[16], drain[16], grace[16], rss[16];
    snprintf(procs, sizeof procs, "%d", e->o.processes);
    snprintf(conc, sizeof conc, "%d", e->o.concurrency);
    snprintf(lease, sizeof lease, "%d", e->o.lease_ms);
    snprintf(drain, sizeof drain, "%d", e->o.drain_ms);
    snprintf(grace, sizeof grace, "%d", e->o.stuck_grace_ms);
    snprintf(rss, sizeof rss, "%d", e->o.max_rss_mb);
    const char *argv[] = {bin,          "--redis",
                          e->redis.url, "--workflows",
                          tdir,         "--workflows",
                          cdir,         "--processes",
                          procs,        "--concurrency",
                          conc,         "--lease-ms",
                          lease,        "--drain-ms",
                          drain,        "--stuck-grace-ms",
                          grace,        "--max-rss-mb",
                          rss,          "--log-level",
                          "debug",      NULL};
    char exec_env[340], port_env[64];
    snprintf(exec_env, sizeof exec_env, "WF_TEST_EXEC_LOG=%s", e->exec_log);
    snprintf(port_env, sizeof port_env, "WF_TEST_REDIS_PORT=%d", e->redis.port);
    const char *env[] = {exec_env, port_env, NULL};
    e->sup = wf_test_spawn(argv, env, e->worker_log);
    free(bin);
    free(tdir);
    free(cdir);
    if (e->sup <= 0 || !wf_test_wait(registered, e, 15000)) {
        chaos_problem(e, "wf-worker did not start (log: %s)", e->worker_log);
        return -1;
    }
    return 0;
}

int chaos_workers_stop(chaos_env *e)
{
    if (e->sup <= 0) return -1;
    int status = wf_test_kill(e->sup, SIGTERM, 60000);
    e->sup = 0;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        e->sup_status_bad = 1;
        chaos_problem(e, "wf-worker did not drain and exit 0 on SIGTERM (status 0x%x)", status);
    }
    return status;
}

int chaos_children(chaos_env *e, pid_t *out, int max)
{
    return wf_test_children(e->sup, out, max);
}

/* ---- Runs ------------------------------------------------------------------------------------ */

static size_t input_of(chaos_kind k, char *buf, size_t cap)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (k == K_STEPPER) {
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "n", 1);
        msgpack_pack_int(&pk, 3);
        msgpack_pack_str_with_body(&pk, "work_ms", 7);
        msgpack_pack_int(&pk, 10);
    } else if (k == K_SLOW) {
        msgpack_pack_int(&pk, 1500);
    } else {
        msgpack_pack_nil(&pk);
    }
    size_t n = sb.size < cap ? sb.size : 0;
    memcpy(buf, sb.data, n);
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static int try_enqueue(chaos_env *e, chaos_run *r)
{
    wf_error err = {0};
    if (!e->cl) {
        e->cl = wf_client_connect(e->redis.url, &err);
        if (!e->cl) return -1;
    }
    char in[64];
    size_t n = input_of(r->kind, in, sizeof in);
    const char *suffix = strchr(r->id, ':') + 1;
    wf_run_options opt = {.id = suffix};
    wf_run *run = wf_run_workflow_ex(e->cl, kind_workflow[r->kind], in, n, &opt, &err);
    if (!run) {
        if (err.code != WF_ERR_IO && err.code != WF_ERR_CONNECT && err.code != WF_ERR_REDIS &&
            err.code != WF_ERR_TIMEOUT)
            chaos_problem(e, "enqueue of %s refused: %s", r->id, err.message);
        /* A client whose connection broke is reopened on the next try. */
        if (err.code == WF_ERR_CONNECT || err.code == WF_ERR_SCHEMA) {
            wf_client_free(e->cl);
            e->cl = NULL;
        }
        return -1;
    }
    wf_run_free(run);
    r->accepted = 1;
    r->accepted_ms = chaos_now_ms();
    return 0;
}

void chaos_submit(chaos_env *e, chaos_kind kind, int n)
{
    for (int i = 0; i < n; i++) {
        if (e->nruns == e->cap) {
            int cap = e->cap ? e->cap * 2 : 1024;
            chaos_run *grown = realloc(e->runs, sizeof *grown * (size_t)cap);
            if (!grown) return;
            e->runs = grown;
            e->cap = cap;
        }
        chaos_run *r = &e->runs[e->nruns++];
        memset(r, 0, sizeof *r);
        r->kind = kind;
        snprintf(r->id, sizeof r->id, "%s:c%06d", kind_workflow[kind], ++e->seq);
        try_enqueue(e, r);
    }
}

void chaos_pump(chaos_env *e)
{
    for (int i = 0; i < e->nruns; i++)
        if (!e->runs[i].accepted && try_enqueue(e, &e->runs[i]) != 0) return;
}

/* ---- A scenario's life ----------------------------------------------------------------------- */

int chaos_begin(chaos_env *e, const char *name, int seconds, const chaos_opts *o)
{
    memset(e, 0, sizeof *e);
    e->name = name;
    e->seconds = seconds;
    if (o) e->o = *o;
    if (!e->o.processes) e->o.processes = 2;
    if (!e->o.concurrency) e->o.concurrency = 4;
    if (!e->o.lease_ms) e->o.lease_ms = 1000;
    if (!e->o.drain_ms) e->o.drain_ms = 5000;
    if (!e->o.stuck_grace_ms) e->o.stuck_grace_ms = 1500;
    /* A crashing handler must not leave core files behind. */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    snprintf(e->dir, sizeof e->dir, "/tmp/wf-chaos-%s-XXXXXX", name);
    if (!mkdtemp(e->dir)) return -1;
    snprintf(e->worker_log, sizeof e->worker_log, "%s/worker.log", e->dir);
    snprintf(e->exec_log, sizeof e->exec_log, "%s/exec.log", e->dir);
    char conf[512];
    snprintf(conf, sizeof conf, "enable-debug-command local\n%s",
             e->o.redis_conf ? e->o.redis_conf : "");
    if (wf_test_redis_start(&e->redis, conf) != 0) {
        chaos_problem(e, "redis-server did not start");
        return -1;
    }
    return chaos_workers_start(e);
}

void chaos_end(chaos_env *e, int passed)
{
    if (e->sup > 0) chaos_workers_stop(e);
    wf_client_free(e->cl);
    if (e->rc) redisFree(e->rc);
    wf_test_redis_stop(&e->redis);
    if (passed) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", e->dir);
    } else {
        printf("   logs kept in %s\n", e->dir);
    }
    free(e->runs);
}
