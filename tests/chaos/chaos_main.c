/* chaos_main.c - wf-chaos: runs the chaos scenarios and prints, for each, the runs started,
 * completed, failed (with reasons), duplicated, lost and recorded steps re-run, then a summary
 * table (markdown, as docs/reliability.md shows it) and the line "N passed, N failed".
 *
 *   wf-chaos [--long] [--seconds S] [SCENARIO...]
 *
 * The short form runs each fault phase for a few seconds (about 2 minutes in all on 2 cores);
 * --long runs each for 3 minutes (or S seconds). Exit status 0 when every scenario passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"

int chaos_worker_sigkill(int seconds);
int chaos_redis_aof(int seconds, int always);
int chaos_redis_slow_load(int seconds);
int chaos_client_kill(int seconds);
int chaos_pause(int seconds);
int chaos_hang(int seconds);
int chaos_crash(int seconds);
int chaos_leak(int seconds);
int chaos_sigterm(int seconds);

static int always(int s)
{
    return chaos_redis_aof(s, 1);
}

static int everysec(int s)
{
    return chaos_redis_aof(s, 0);
}

static const struct {
    const char *name;
    int (*fn)(int seconds);
    int short_seconds;
} scenarios[] = {
    {"worker-sigkill", chaos_worker_sigkill, 8},
    {"redis-restart-always", always, 8},
    {"redis-restart-everysec", everysec, 8},
    {"redis-restart-slow-load", chaos_redis_slow_load, 9},
    {"client-kill", chaos_client_kill, 5},
    {"pause", chaos_pause, 9},
    {"hang", chaos_hang, 5},
    {"crash", chaos_crash, 5},
    {"leak", chaos_leak, 5},
    {"sigterm", chaos_sigterm, 7},
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

int main(int argc, char **argv)
{
    int long_mode = 0, seconds = 0;
    int want[NSCEN] = {0}, any = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--long")) {
            long_mode = 1;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: wf-chaos [--long] [--seconds S] [SCENARIO...]\nscenarios:");
            for (size_t s = 0; s < NSCEN; s++) printf(" %s", scenarios[s].name);
            printf("\n");
            return 0;
        } else {
            size_t s = 0;
            while (s < NSCEN && strcmp(scenarios[s].name, argv[i])) s++;
            if (s == NSCEN) {
                fprintf(stderr, "wf-chaos: unknown scenario '%s' (--help lists them)\n", argv[i]);
                return 2;
            }
            want[s] = any = 1;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int passed = 0, failed = 0;
    int result[NSCEN];
    time_t t0 = time(NULL);
    for (size_t s = 0; s < NSCEN; s++) {
        result[s] = -1;
        if (any && !want[s]) continue;
        int secs = seconds ? seconds : long_mode ? 180 : scenarios[s].short_seconds;
        time_t st = time(NULL);
        result[s] = scenarios[s].fn(secs);
        printf("   (%s took %lds)\n", scenarios[s].name, (long)(time(NULL) - st));
        if (result[s])
            passed++;
        else
            failed++;
    }
    printf("\nchaos suite: %lds\n", (long)(time(NULL) - t0));
    for (size_t s = 0; s < NSCEN; s++)
        if (result[s] >= 0) printf("  %-24s %s\n", scenarios[s].name, result[s] ? "PASS" : "FAIL");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
