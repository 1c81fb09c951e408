/* harness.c - see harness.h. A real redis-server per test, started the way beanstalkd's testserv
 * forks a real server: temp dir, free port, wait for PING with a deadline. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Binds a TCP socket to 127.0.0.1:port (0: any) and closes it: the port it got, or -1. */
static int bind_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    socklen_t len = sizeof a;
    int got = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        got = ntohs(a.sin_port);
    close(fd);
    return got;
}

int wf_test_port_free(int port)
{
    return port > 0 && port < 65536 && bind_port(port) == port;
}

/* The lowest port the kernel hands out for outgoing connections. */
static int ephemeral_low(void)
{
    int lo = 0, hi = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) lo = 0;
        fclose(f);
    }
    return lo > 0 ? lo : 32768;
}

/* Picks below the ephemeral range: a port asked of bind(0) is one the kernel may also give any
 * process's next outgoing connection (a worker on a cluster opens dozens), so a port picked
 * there and bound a moment later by a server could be taken in between. */
int wf_test_free_port(void)
{
    static unsigned long long x;
    int lo = 10000, hi = ephemeral_low() - 1;
    if (hi - lo < 1000) return bind_port(0);
    for (int tries = 0; tries < 200; tries++) {
        /* xorshift, stirred with the pid: Criterion's forked tests must not share a sequence. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x ^= (unsigned long long)getpid() * 0x9E3779B97F4A7C15ULL ^ (unsigned long long)ts.tv_nsec;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int port = lo + (int)(x % (unsigned long long)(hi - lo));
        if (wf_test_port_free(port)) return port;
    }
    return bind_port(0);
}

int wf_test_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

char *wf_test_which(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char *full = malloc(n + strlen(prog) + 2);
        if (!full) return NULL;
        snprintf(full, n + strlen(prog) + 2, "%.*s/%s", (int)n, path, prog);
        if (n > 0 && access(full, X_OK) == 0) return full;
        free(full);
        path += n;
        if (*path == ':') path++;
    }
    return NULL;
}

int wf_test_wait(int (*cond)(void *arg), void *arg, int timeout_ms)
{
    long long end = mono_ms() + timeout_ms;
    for (;;) {
        if (cond(arg)) return 1;
        if (mono_ms() >= end) return 0;
        nap_ms(5);
    }
}

static int redis_answers(void *arg)
{
    wf_test_redis *r = arg;
    redisContext *c = wf_test_redis_connect(r);
    if (!c) return 0;
    redisReply *rep = redisCommand(c, "PING");
    int ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* cluster_mode.c */
int wf__test_cluster_attach(wf_test_redis *r);
void wf__test_cluster_detach(wf_test_redis *r);

void wf_test_remove_tree(const char *dir)
{
    if (!dir[0] || getenv("WF_TEST_KEEP")) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Forks and execs argv (searched in PATH) with stdout and stderr on /dev/null. */
static pid_t spawn_quiet(const char *const *argv)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 1);
        dup2(devnull, 2);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

int wf_test_children(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        char *close = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (close && sscanf(close + 2, "%c %d", &state, &ppid) == 2 && ppid == parent &&
            state != 'Z')
            out[n++] = pid;
    }
    if (d) closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            pid_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

int wf_test_redis_start(wf_test_redis *r, const char *extra_conf)
{
    memset(r, 0, sizeof *r);
    if (!extra_conf && wf_test_cluster_mode()) return wf__test_cluster_attach(r);
    for (int tries = 0; tries < 5; tries++) {
        snprintf(r->dir, sizeof r->dir, "/tmp/wf-test-redis-XXXXXX");
        if (!mkdtemp(r->dir)) {
            perror("mkdtemp");
            return -1;
        }
        r->port = wf_test_free_port();
        char conf[512];
        snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
        FILE *f = fopen(conf, "w");
        if (!f) return -1;
        fprintf(f,
                "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n"
                "logfile %s/redis.log\nprotected-mode yes\n",
                r->port, r->dir, r->dir);
        if (extra_conf) fprintf(f, "%s\n", extra_conf);
        fclose(f);
        const char *argv[] = {"redis-server", conf, NULL};
        r->pid = spawn_quiet(argv);
        if (r->pid < 0) return -1;
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
        if (wf_test_wait(redis_answers, r, 10000)) return 0;
        /* Port taken between our probe and its bind, or it failed: try another. */
        wf_test_kill(r->pid, SIGKILL, 2000);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", r->dir);
    }
    fprintf(stderr, "harness: redis-server did not start (is it installed?)\n");
    memset(r, 0, sizeof *r);
    return -1;
}

static int redis_accepts(void *arg)
{
    return wf_test_port_open(((wf_test_redis *)arg)->port);
}

int wf_test_redis_restart(wf_test_redis *r, const char *const *extra_args)
{
    if (r->cluster || r->pid <= 0) return -1;
    redisContext *c = wf_test_redis_connect(r);
    if (c) {
        redisReply *rep = redisCommand(c, "SHUTDOWN NOSAVE");
        if (rep) freeReplyObject(rep);
        redisFree(c);
    }
    wf_test_kill(r->pid, SIGKILL, 5000); /* reaps it; SIGKILL only if SHUTDOWN did not work */
    char conf[300];
    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    const char *argv[24] = {"redis-server", conf};
    int n = 2;
    for (int i = 0; extra_args && extra_args[i] && n < 23; i++) argv[n++] = extra_args[i];
    argv[n] = NULL;
    r->pid = spawn_quiet(argv);
    if (r->pid < 0) return -1;
    return wf_test_wait(redis_accepts, r, 10000) ? 0 : -1;
}

void wf_test_redis_stop(wf_test_redis *r)
{
    if (!r) return;
    if (r->cluster) {
        /* The shared cluster lives on (cluster_fixture.c stops it); only this test's dir goes. */
        wf__test_cluster_detach(r);
        wf_test_remove_tree(r->dir);
        memset(r, 0, sizeof *r);
        return;
    }
    if (r->pid <= 0) return;
    wf_test_kill(r->pid, SIGTERM, 5000);
    /* WF_TEST_KEEP=1 keeps the server's folder (worker logs) for a post-mortem. */
    wf_test_remove_tree(r->dir);
    memset(r, 0, sizeof *r);
}

redisContext *wf_test_redis_connect(const wf_test_redis *r)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c) return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

char *wf_test_path(const char *rel)
{
    size_t n = strlen(WF_BUILD_DIR) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", WF_BUILD_DIR, rel);
    return p;
}

static void child_env(const char *const *env)
{
    for (; env && *env; env++) putenv((char *)*env);
}

pid_t wf_test_spawn(const char *const *argv, const char *const *env, const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    setpgid(0, 0);
    child_env(env);
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int wf_test_exited(pid_t *pid)
{
    int status;
    if (*pid <= 0 || waitpid(*pid, &status, WNOHANG) != *pid) return 0;
    *pid = 0;
    return 1;
}

int wf_test_kill(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0) return -1;
    kill(pid, sig);
    long long end = mono_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) return status;
        if (w < 0) return -1;
        if (mono_ms() >= end) {
            kill(pid, SIGKILL);
            if (waitpid(pid, &status, 0) == pid) return status;
            return -1;
        }
        nap_ms(5);
    }
}

int wf_test_run(const char *const *argv, const char *const *env, const char *input, char **out,
                int timeout_ms)
{
    int outp[2], inp[2];
    if (out) *out = NULL;
    if (pipe(outp) != 0) return -1;
    if (pipe(inp) != 0) {
        close(outp[0]);
        close(outp[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        child_env(env);
        dup2(inp[0], 0);
        dup2(outp[1], 1);
        close(inp[1]);
        close(outp[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(inp[0]);
    close(outp[1]);
    if (input) {
        size_t n = strlen(input), off = 0;
        while (off < n) {
            ssize_t w = write(inp[1], input + off, n - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
    }
    close(inp[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    long long end = mono_ms() + timeout_ms;
    int timed_out = 0;
    for (;;) {
        long long left = end - mono_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {outp[0], POLLIN, 0};
        int pr = poll(&p, 1, (int)(left > 100 ? 100 : left));
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        if (len + 1024 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        ssize_t r = read(outp[0], buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(outp[0]);
    buf[len] = '\0';
    if (out)
        *out = buf;
    else
        free(buf);
    if (timed_out) {
        wf_test_kill(pid, SIGKILL, 1000);
        return -2;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return -1;
}

long long wf_test_reply_int(redisReply *r)
{
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
    if (r) freeReplyObject(r);
    return v;
}

char *wf_test_reply_str(redisReply *r)
{
    char *s = NULL;
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        s = strndup(r->str, r->len);
    if (r) freeReplyObject(r);
    return s;
}

char *wf_test_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n + 1 : 1);
    size_t got = buf && n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    if (buf) buf[got] = '\0';
    fclose(f);
    return buf;
}

int wf_test_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int wf_test_http_read(int fd, char **head, char **body)
{
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (ssize_t r = 1; buf && r > 0;) {
        if (len + 1 >= cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
        if (!buf) break;
        r = read(fd, buf + len, cap - len - 1);
        if (r > 0) len += (size_t)r;
    }
    close(fd);
    if (!buf) return -1;
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    int status = 0;
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        free(buf);
        return -1;
    }
    if (head) *head = strndup(buf, (size_t)(sep - buf));
    *body = strdup(sep + 4);
    free(buf);
    return status;
}
