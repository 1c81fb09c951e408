/* main.c - the wf-bench program: parses options, runs one repetition of one scenario, prints its
 * figures as key=value lines. bench/run drives it; bench/README.md explains every figure.
 *
 *   wf-bench drain --redis redis://127.0.0.1:PORT --worker build/wf-worker \
 *                  --workflows build/bench/workflows --n 100000 --processes 1 --concurrency 32
 *
 * Exit status: 0 when the scenario ran (whatever its figures), 1 when something broke, 2 for a
 * usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wf_bench.h"

static const char usage[] =
    "usage: wf-bench SCENARIO --redis URL [options]\n"
    "\n"
    "Scenarios (one repetition each; figures as key=value lines):\n"
    "  enqueue    one client starts --n runs, one call at a time\n"
    "  batch      one client starts --n runs with wf_run_workflow_batch\n"
    "  threads    --threads clients, one per thread, start --n runs together\n"
    "  drain      --n runs queued, then wf-worker drains them (--processes, --concurrency)\n"
    "  latency    --rate runs/s for --seconds into idle workers: enqueue-to-start/completed\n"
    "  idle       worker RSS and Redis CPU while a worker waits for work (--seconds)\n"
    "  scale      --n queued: memory per run, enqueue rate on top (--extra), drain (--drain 1)\n"
    "  many       --n runs spread over --count workflows, drained by one worker\n"
    "  free-port  prints a free loopback TCP port\n"
    "\n"
    "Options:\n"
    "  --redis URL        the Redis to use (it is FLUSHALLed: never point this at real data)\n"
    "  --worker PATH      wf-worker program (default build/wf-worker)\n"
    "  --workflows DIR    folder of workflow modules for wf-worker (default "
    "build/bench/workflows)\n"
    "  --workflow NAME    workflow the runs start (default noop)\n"
    "  --n N  --threads T  --processes P  --concurrency C  --rate R  --seconds S\n"
    "  --count K  --extra E  --drain 0|1\n";

/* ---- Output, time ---------------------------------------------------------------------------- */

void bench_out(const char *key, double value)
{
    printf("%s=%.6g\n", key, value);
    fflush(stdout);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wf-bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    bench_worker_stop_all();
    exit(1);
}

/* The bench times calls in microseconds, finer than the core's ms clocks (wf__mono_ms). */
static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t bench_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

int64_t bench_real_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

void bench_sleep_us(int64_t us)
{
    if (us <= 0) return;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

double bench_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_pct(double *v, size_t n, double p)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int rc = 1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        printf("%d\n", ntohs(a.sin_port));
        rc = 0;
    }
    close(fd);
    return rc;
}

/* ---- Options ------------------------------------------------------------------------------------
 */

static long num(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "wf-bench: %s wants a whole number from %ld to %ld, not '%s'\n", opt, lo,
                hi, s);
        exit(2);
    }
    return v;
}

/* Every option takes a value: a string kept as is, or a whole number in [lo, hi] stored as the
 * field's type. One row each; getopt's table is made from these rows. */
typedef enum { OPT_STR, OPT_INT, OPT_LONG, OPT_DOUBLE } opt_kind;
typedef struct opt_spec {
    const char *name;
    opt_kind kind;
    size_t off; /* of the field in bench_opts */
    long lo, hi;
} opt_spec;

#define OPT(name, kind, field, lo, hi)                                                             \
    {                                                                                              \
        name, kind, offsetof(bench_opts, field), lo, hi                                            \
    }
static const opt_spec specs[] = {
    OPT("redis", OPT_STR, redis_url, 0, 0),      OPT("worker", OPT_STR, worker, 0, 0),
    OPT("workflows", OPT_STR, workflows, 0, 0),  OPT("workflow", OPT_STR, workflow, 0, 0),
    OPT("n", OPT_LONG, n, 1, 100000000),         OPT("threads", OPT_INT, threads, 1, 64),
    OPT("processes", OPT_INT, processes, 1, 64), OPT("concurrency", OPT_INT, concurrency, 1, 4096),
    OPT("rate", OPT_INT, rate, 1, 1000000),      OPT("seconds", OPT_DOUBLE, seconds, 1, 3600),
    OPT("count", OPT_INT, count, 1, 1000),       OPT("extra", OPT_LONG, extra, 0, 10000000),
    OPT("drain", OPT_INT, drain, 0, 1),
};
#define NSPECS (sizeof specs / sizeof specs[0])

/* Parses the options after the scenario into *o. Returns 0, or -1 for an unknown option or a
 * missing value (a bad number exits 2 in num()). */
static int parse_options(int argc, char **argv, bench_opts *o)
{
    struct option longopts[NSPECS + 1];
    for (size_t i = 0; i < NSPECS; i++)
        longopts[i] = (struct option){specs[i].name, required_argument, NULL, (int)i + 1};
    longopts[NSPECS] = (struct option){NULL, 0, NULL, 0};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c < 1 || c > (int)NSPECS) return -1;
        const opt_spec *sp = &specs[c - 1];
        char *field = (char *)o + sp->off, flag[32];
        snprintf(flag, sizeof flag, "--%s", sp->name);
        long v = sp->kind == OPT_STR ? 0 : num(flag, optarg, sp->lo, sp->hi);
        if (sp->kind == OPT_STR)
            *(const char **)field = optarg;
        else if (sp->kind == OPT_INT)
            *(int *)field = (int)v;
        else if (sp->kind == OPT_LONG)
            *(long *)field = v;
        else
            *(double *)field = (double)v;
    }
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    bench_worker_stop_all();
    _exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "free-port") == 0) return free_port();
    bench_opts o = {.scenario = argv[1],
                    .worker = "build/wf-worker",
                    .workflows = "build/bench/workflows",
                    .workflow = "noop",
                    .threads = 4,
                    .processes = 1,
                    .concurrency = 32,
                    .rate = 500,
                    .seconds = 5,
                    .count = 1,
                    .extra = 2000,
                    .drain = 1};
    optind = 2;
    if (parse_options(argc, argv, &o) != 0 || optind < argc || !o.redis_url) {
        fputs(usage, stderr);
        return 2;
    }
    if (strncmp(o.redis_url, "redis://127.0.0.1:", 18) != 0) {
        fprintf(stderr, "wf-bench: --redis must be redis://127.0.0.1:PORT (it gets FLUSHALLed)\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(bench_worker_stop_all);

    static const struct {
        const char *name;
        int (*fn)(const bench_opts *);
    } table[] = {{"enqueue", bench_enqueue}, {"batch", bench_batch},    {"threads", bench_threads},
                 {"drain", bench_drain},     {"idle", bench_idle},      {"scale", bench_scale},
                 {"many", bench_many},       {"latency", bench_latency}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, o.scenario) == 0) return table[i].fn(&o);
    fprintf(stderr, "wf-bench: unknown scenario '%s'\n", o.scenario);
    fputs(usage, stderr);
    return 2;
}
