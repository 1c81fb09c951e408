/* cluster_fixture.c - wf-test-cluster: starts and stops the one 3-master, 3-replica cluster that
 * a ctest run shares between its NAME_cluster suites (tests/CMakeLists.txt: a ctest fixture).
 *   wf-test-cluster up FILE     start it (cluster_harness.c), write FILE, exit; the nodes live on
 *   wf-test-cluster down FILE   stop the nodes FILE names, remove their dirs and FILE
 * FILE holds "url redis+cluster://..." and one "node PID DIR" line per redis-server; the harness
 * reads the url line in cluster mode (harness.h). Starting once per run, not once per test, keeps
 * the cluster suites within seconds of the single-server ones. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster_harness.h"

static int up(const char *file)
{
    wf_test_cluster c;
    if (wf_test_cluster_start(&c) != 0) return 1;
    FILE *f = fopen(file, "w");
    if (!f) {
        perror(file);
        wf_test_cluster_stop(&c);
        return 1;
    }
    fprintf(f, "url %s\n", c.url);
    for (int i = 0; i < c.n; i++) fprintf(f, "node %d %s\n", (int)c.node[i].pid, c.node[i].dir);
    if (fclose(f) != 0) {
        perror(file);
        wf_test_cluster_stop(&c);
        return 1;
    }
    printf("cluster up: %s (state in %s)\n", c.url, file);
    return 0; /* the nodes are in process groups of their own and outlive this process */
}

/* Gone, or a zombie waiting for whoever adopted it. */
static int gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
    char path[64], state = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    int n = fscanf(f, "%*d (%*[^)]) %c", &state);
    fclose(f);
    return n == 1 && state == 'Z';
}

static void stop_node(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 500 && !gone(pid); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!gone(pid)) kill(pid, SIGKILL);
}

static int down(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "wf-test-cluster down: %s: %s (was the cluster started?)\n", file,
                strerror(errno));
        return 1;
    }
    char line[512], dir[300];
    int pid;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "node %d %299s", &pid, dir) == 2 && pid > 0) {
            stop_node(pid);
            if (!getenv("WF_TEST_KEEP") && !strncmp(dir, "/tmp/", 5)) {
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
                if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
            }
        }
    fclose(f);
    unlink(file);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "up")) return up(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "down")) return down(argv[2]);
    fprintf(stderr, "usage: wf-test-cluster up|down FILE\n");
    return 2;
}
