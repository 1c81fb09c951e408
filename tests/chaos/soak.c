/* soak.c - wf-soak: bounded memory, shown by hand (it takes minutes; not part of CI).
 *
 *   wf-soak [RUNS]     (default 1000000)
 *
 * Against a private redis-server (no persistence) and a wf-worker pool running the test `echo`
 * workflow:
 *   1. per queued run: 100,000 runs enqueued with no worker running; used_memory grows by X.
 *   2. per retained finished run: a pool with a 1 h retention finishes those runs; the growth
 *      over the empty baseline, per run, is what a finished run costs until it expires.
 *   3. the soak: a pool with retention_ms=2000 runs RUNS short runs, the producer keeping at most
 *      20,000 queued. Every 5 s a line: runs done, backlog, used_memory, keys, stream entries
 *      and radix nodes, completed index size, worker RSS. Finished runs expire, their index is
 *      pruned, stream entries are deleted at claim: the memory line must stay flat.
 * Prints the figures docs/reliability.md quotes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"

#define BATCH   1000
#define BACKLOG 20000
#define PHASE1  100000

static wf_test_redis srv;
static redisContext *rc;
static pid_t sup;
static char logpath[300];

static long long info_num(const char *section, const char *field)
{
    char *info = wf_test_cmd_str(rc, "INFO %s", section);
    long long v = -1;
    char *p = info ? strstr(info, field) : NULL;
    if (p) v = atoll(p + strlen(field) + 1);
    free(info);
    return v;
}

static long long used_memory(void)
{
    /* Let the allocator settle a little, then read. */
    chaos_nap(200);
    return info_num("memory", "used_memory");
}

static int registered(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "HEXISTS wf:workflows echo") == 1;
}

static void workers_start(long long retention_ms)
{
    char url[200];
    snprintf(url, sizeof url, "%s?retention_ms=%lld", srv.url, retention_ms);
    char *bin = wf_test_path("wf-worker");
    char *wfdir = wf_test_path("tests/workflows");
    const char *argv[] = {bin, "--redis",       url,  "--workflows", wfdir,  "--processes",
                          "2", "--concurrency", "16", "--log-level", "warn", NULL};
    sup = wf_test_spawn(argv, NULL, logpath);
    free(bin);
    free(wfdir);
    if (!wf_test_wait(registered, NULL, 10000)) {
        fprintf(stderr, "wf-soak: worker did not start (%s)\n", logpath);
        exit(1);
    }
}

static void workers_stop(void)
{
    int st = wf_test_kill(sup, SIGTERM, 60000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) fprintf(stderr, "wf-soak: drain status %x\n", st);
    sup = 0;
}

static long long workers_rss_kb(void)
{
    chaos_env e = {0};
    e.sup = sup;
    pid_t kids[8];
    int n = chaos_children(&e, kids, 8);
    long long total = 0;
    for (int i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/statm", (int)kids[i]);
        FILE *f = fopen(path, "r");
        long long size, res;
        if (f && fscanf(f, "%lld %lld", &size, &res) == 2)
            total += res * (sysconf(_SC_PAGESIZE) / 1024);
        if (f) fclose(f);
    }
    return total;
}

static long long completed(void)
{
    return wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:completed");
}

static int enqueue(wf_client *cl, int n)
{
    static const char payload[] = "\x81\xa1n\x01";
    const void *p[BATCH];
    size_t l[BATCH];
    for (int i = 0; i < n; i++) {
        p[i] = payload;
        l[i] = sizeof payload - 1;
    }
    wf_error err = {0};
    wf_run_options o = {.allow_unregistered = 1};
    if (wf_run_workflow_batch(cl, "echo", (size_t)n, p, l, &o, NULL, &err) != WF_OK) {
        fprintf(stderr, "wf-soak: enqueue failed: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int all_done(void *arg)
{
    return completed() >= *(long long *)arg && wf_test_cmd_int(rc, "XLEN wf:{echo}:queue") == 0;
}

static int idle(void *arg)
{
    (void)arg;
    return wf_test_cmd_int(rc, "XLEN wf:{echo}:queue") == 0 &&
           wf_test_cmd_int(rc, "ZCARD wf:{echo}:leases") == 0;
}

static void sample(long long done, time_t t0)
{
    redisReply *x = wf_test_command(rc, "XINFO STREAM wf:{echo}:queue");
    long long len = -1, nodes = -1;
    for (size_t i = 0; x && x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements; i += 2) {
        if (!strcmp(x->element[i]->str, "length")) len = x->element[i + 1]->integer;
        if (!strcmp(x->element[i]->str, "radix-tree-nodes")) nodes = x->element[i + 1]->integer;
    }
    if (x) freeReplyObject(x);
    printf("%6lds %9lld done %7lld queued %6lld stream-nodes %9.1f MiB used_memory %8lld keys "
           "%7lld completed-index %6.1f MiB workers-RSS\n",
           (long)(time(NULL) - t0), done, len, nodes, info_num("memory", "used_memory") / 1048576.0,
           wf_test_cmd_int(rc, "DBSIZE"), completed(), workers_rss_kb() / 1024.0);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long long runs = argc > 1 ? atoll(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (wf_test_redis_start(&srv, NULL) != 0) return 1;
    rc = wf_test_redis_connect(&srv);
    snprintf(logpath, sizeof logpath, "%s/worker.log", srv.dir);
    wf_error err = {0};
    wf_client *cl = wf_client_connect(srv.url, &err);
    if (!cl) return 1;

    /* 1 + 2: what a queued and a retained finished run cost. */
    workers_start(3600000); /* registers echo and creates the group, then goes away */
    workers_stop();
    long long base = used_memory();
    for (int i = 0; i < PHASE1 / BATCH; i++)
        if (enqueue(cl, BATCH) != 0) return 1;
    long long queued = used_memory();
    printf("per queued run:          %.0f bytes (%d runs: %.1f MiB over %.1f MiB)\n",
           (double)(queued - base) / PHASE1, PHASE1, (queued - base) / 1048576.0, base / 1048576.0);
    workers_start(3600000);
    long long want = PHASE1;
    wf_test_wait(all_done, &want, 600000);
    workers_stop();
    long long retained = used_memory();
    printf("per retained finished run: %.0f bytes (%lld runs kept for their retention time)\n",
           (double)(retained - base) / PHASE1, completed());
    redisReply *r = wf_test_command(rc, "FLUSHALL");
    if (r) freeReplyObject(r);
    r = wf_test_command(rc, "MEMORY PURGE");
    if (r) freeReplyObject(r);

    /* 3: the soak. */
    workers_start(2000);
    printf("soak: %lld runs, retention_ms=2000, at most %d queued\n", runs, BACKLOG);
    time_t t0 = time(NULL), last = 0;
    long long sent = 0;
    while (sent < runs) {
        long long backlog = wf_test_cmd_int(rc, "XLEN wf:{echo}:queue");
        if (backlog < BACKLOG) {
            int n = runs - sent < BATCH ? (int)(runs - sent) : BATCH;
            if (enqueue(cl, n) != 0) break;
            sent += n;
        } else {
            chaos_nap(20);
        }
        if (time(NULL) - last >= 5) {
            last = time(NULL);
            sample(sent - wf_test_cmd_int(rc, "XLEN wf:{echo}:queue"), t0);
        }
    }
    wf_test_wait(idle, NULL, 600000);
    chaos_nap(3000); /* let the last finished runs expire */
    sample(sent, t0);
    printf("soak done: %lld runs in %lds; dead letters %lld; failed %lld\n", sent,
           (long)(time(NULL) - t0), wf_test_cmd_int(rc, "LLEN wf:{echo}:dead"),
           wf_test_cmd_int(rc, "ZCARD wf:{echo}:state:failed"));
    workers_stop();
    wf_client_free(cl);
    redisFree(rc);
    wf_test_redis_stop(&srv);
    return 0;
}
