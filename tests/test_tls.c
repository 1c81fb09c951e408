/* test_tls.c - TLS to Redis through a stunnel sidecar, set up exactly as docs/security.md tells
 * operators to. Debian 12's hiredis (0.14) has no TLS, so wf speaks plain text to a local stunnel
 * in client mode, which verifies Redis's certificate and carries the bytes inside TLS.
 *
 * Each test makes a throwaway CA and a server certificate (openssl), starts a redis-server with
 * only a TLS port (`port 0`: nothing answers in plain text), and a stunnel whose configuration is
 * the documented one (STUNNEL_CONF). Then: a wf-worker and a client, both through stunnel and as an
 * ACL user with a password, complete a run; a plain connection straight to the TLS port fails at
 * once with an error instead of hanging; and stunnel refuses a server whose certificate names
 * another host, which shows that the documented settings really verify. A last test keeps the
 * stunnel.conf in docs/security.md the same as the one run here.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "wf_internal.h"

#define PASSWORD "tls-Pw-4f9a2c"

/* The CA and the server certificate, in the current directory. Elliptic-curve keys: instant to
 * make, where RSA keys would cost each test a noticeable fraction of a second. The certificate
 * names the host stunnel checks (checkHost) in its subjectAltName. */
#define MAKE_CERTS                                                                                 \
    "set -e\n"                                                                                     \
    "exec 2>>openssl.log\n"                                                                        \
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\\n"               \
    "    -keyout ca.key -out ca.crt -days 1 -subj '/CN=wf test CA'\n"                              \
    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\\n"                     \
    "    -keyout redis.key -out redis.csr -subj '/CN=localhost'\n"                                 \
    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >redis.ext\n"                           \
    "openssl x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \\\n"        \
    "    -extfile redis.ext -out redis.crt\n"

/* docs/security.md shows this file, with its own addresses and paths, and the last test checks
 * that it still does. Arguments: listen port, Redis's TLS address (host:port), the CA file, the
 * host name the certificate must carry. */
#define STUNNEL_CONF                                                                               \
    "foreground = yes\n"                                                                           \
    "pid =\n"                                                                                      \
    "\n"                                                                                           \
    "[redis]\n"                                                                                    \
    "client = yes\n"                                                                               \
    "accept = 127.0.0.1:%d\n"                                                                      \
    "connect = %s\n"                                                                               \
    "verifyChain = yes\n"                                                                          \
    "CAfile = %s\n"                                                                                \
    "checkHost = %s\n"                                                                             \
    "sslVersionMin = TLSv1.2\n"

/* Every path is DIR/NAME with a short NAME. */
#define PATH_LEN (256 + 80)

static char dir[256];
static pid_t redis_pid, tunnel_pid, bad_tunnel_pid, worker;
static int tls_port, tunnel_port;
static redisContext *rc; /* the test's own view of Redis, as the default user, through stunnel */

/* ---- Processes ------------------------------------------------------------------------------ */

/* Stops everything this file started (the worker first: it drains through stunnel and Redis, so
 * both must still be there) and removes DIR. Safe to call twice. Returns the worker's wait status,
 * 0 when there was none. */
static int stop_all(void)
{
    int status = 0;
    if (worker > 0) status = wf_test_kill(worker, SIGTERM, 30000);
    if (rc) redisFree(rc);
    if (bad_tunnel_pid > 0) wf_test_kill(bad_tunnel_pid, SIGTERM, 5000);
    if (tunnel_pid > 0) wf_test_kill(tunnel_pid, SIGTERM, 5000);
    if (redis_pid > 0) wf_test_kill(redis_pid, SIGTERM, 5000);
    worker = bad_tunnel_pid = tunnel_pid = redis_pid = 0;
    rc = NULL;
    wf_test_remove_tree(dir);
    dir[0] = '\0';
    return status;
}

/* Criterion does not run .fini when .init fails an assertion, so the checks made while setting up
 * stop what was already started before failing: a failed setup leaves no server behind. Read any
 * file of DIR for the message before: this removes it. */
#define SETUP_ASSERT(cond, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            stop_all();                                                                            \
            cr_assert_fail(__VA_ARGS__);                                                           \
        }                                                                                          \
    } while (0)

typedef struct {
    pid_t pid;
    int port;
} listener;

/* Ready when the port accepts connections, or done waiting when the process has exited (a port
 * taken between wf_test_free_port and its bind, a bad configuration). */
static int listening_or_gone(void *arg)
{
    listener *l = arg;
    return wf_test_exited(&l->pid) || wf_test_port_open(l->port);
}

/* Writes `text` to DIR/name and puts that path into `path`. */
static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    SETUP_ASSERT(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* Starts `prog conf` with its output in DIR/log_name and waits until it listens on `port`.
 * Returns the pid, or 0 when it exited first. */
static pid_t start_listener(const char *prog, const char *conf, const char *log_name, int port)
{
    char *bin = wf_test_which(prog);
    SETUP_ASSERT(bin, "%s is not installed (scripts/deps installs it)", prog);
    char log[PATH_LEN];
    snprintf(log, sizeof log, "%s/%s", dir, log_name);
    const char *argv[] = {bin, conf, NULL};
    listener l = {wf_test_spawn(argv, NULL, log), port};
    free(bin);
    if (!wf_test_wait(listening_or_gone, &l, 10000)) {
        char *out = wf_test_slurp(log);
        wf_test_kill(l.pid, SIGKILL, 2000);
        SETUP_ASSERT(0, "%s never listened on %d:\n%s", prog, port, out);
    }
    return l.pid;
}

static void start_redis(void)
{
    for (int tries = 0; tries < 3 && redis_pid <= 0; tries++) {
        tls_port = wf_test_free_port();
        char conf[2048], path[PATH_LEN];
        snprintf(conf, sizeof conf,
                 "port 0\n"
                 "tls-port %d\n"
                 "bind 127.0.0.1\n"
                 "tls-cert-file %s/redis.crt\n"
                 "tls-key-file %s/redis.key\n"
                 "tls-ca-cert-file %s/ca.crt\n"
                 "tls-auth-clients no\n"
                 "dir %s\n"
                 "save \"\"\n"
                 "appendonly no\n"
                 "user tlsapp on >" PASSWORD " ~tlsapp:* resetchannels +@all\n",
                 tls_port, dir, dir, dir, dir);
        write_file("redis.conf", conf, path, sizeof path);
        redis_pid = start_listener("redis-server", path, "redis.log", tls_port);
    }
    char log[PATH_LEN];
    snprintf(log, sizeof log, "%s/redis.log", dir);
    char *out = redis_pid > 0 ? NULL : wf_test_slurp(log);
    SETUP_ASSERT(redis_pid > 0, "redis-server with TLS did not start:\n%s", out);
}

/* Starts a stunnel (config DIR/<name>.conf) in front of the TLS port that checks the certificate
 * names `check_host`; returns its pid and sets *port to where it listens. */
static pid_t start_tunnel(const char *name, const char *check_host, int *port)
{
    pid_t pid = 0;
    for (int tries = 0; tries < 3 && pid <= 0; tries++) {
        *port = wf_test_free_port();
        char conf[1024], ca[PATH_LEN], path[PATH_LEN], file[64], log[64];
        snprintf(ca, sizeof ca, "%s/ca.crt", dir);
        char redis_addr[64];
        snprintf(redis_addr, sizeof redis_addr, "127.0.0.1:%d", tls_port);
        snprintf(conf, sizeof conf, STUNNEL_CONF, *port, redis_addr, ca, check_host);
        snprintf(file, sizeof file, "%s.conf", name);
        snprintf(log, sizeof log, "%s.log", name);
        write_file(file, conf, path, sizeof path);
        pid = start_listener("stunnel", path, log, *port);
    }
    char log[PATH_LEN];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    char *out = pid > 0 ? NULL : wf_test_slurp(log);
    SETUP_ASSERT(pid > 0, "stunnel did not start:\n%s", out);
    return pid;
}

static int pong_through_tunnel(void *arg)
{
    (void)arg;
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", tunnel_port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        redisReply *r = wf_test_command(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
}

static void setup(void)
{
    redis_pid = tunnel_pid = bad_tunnel_pid = worker = 0;
    rc = NULL;
    wf_test_temp_dir(dir, sizeof dir, "tls");
    char script[2048];
    snprintf(script, sizeof script, "cd '%s'\n%s", dir, MAKE_CERTS);
    const char *sh[] = {"/bin/sh", "-c", script, NULL};
    char *out = NULL, log[PATH_LEN];
    int rc_certs = wf_test_run(sh, NULL, NULL, &out, 30000);
    free(out);
    snprintf(log, sizeof log, "%s/openssl.log", dir);
    char *why = rc_certs == 0 ? NULL : wf_test_slurp(log);
    SETUP_ASSERT(rc_certs == 0, "openssl could not make the certificates:\n%s", why);

    start_redis();
    tunnel_pid = start_tunnel("stunnel", "localhost", &tunnel_port);
    SETUP_ASSERT(wf_test_wait(pong_through_tunnel, NULL, 10000), "no PONG through stunnel");
    struct timeval tv = {2, 0};
    rc = redisConnectWithTimeout("127.0.0.1", tunnel_port, tv);
    SETUP_ASSERT(rc && !rc->err, "cannot connect through stunnel");
    redisSetTimeout(rc, tv);
}

static void teardown(void)
{
    int had_worker = worker > 0;
    int status = stop_all();
    cr_assert(!had_worker || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
              "worker did not drain and exit 0 (status 0x%x)", status);
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 60);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Tests ---------------------------------------------------------------------------------- */

static int completed(void *arg)
{
    char *st = wf_test_cmd_str(rc, "HGET tlsapp:{echo}:run:%s state", (const char *)arg);
    int ok = st && !strcmp(st, "completed");
    free(st);
    return ok;
}

/* Asserts that DIR/name (a tunnel's log) says `what`; fails with `why` and the log. */
static void assert_logged(const char *name, const char *what, const char *why)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *log = wf_test_slurp(path);
    cr_assert(strstr(log, what), "%s:\n%s", why, log);
    free(log);
}

Test(tls, a_worker_and_a_client_through_stunnel_complete_a_run)
{
    char pw_path[PATH_LEN], wurl[600], curl[200], log_path[PATH_LEN];
    write_file("tlsapp.pw", PASSWORD "\n", pw_path, sizeof pw_path);
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    snprintf(wurl, sizeof wurl, "redis://tlsapp@127.0.0.1:%d?prefix=tlsapp&password_file=%s",
             tunnel_port, pw_path);
    snprintf(curl, sizeof curl, "redis://tlsapp:%s@127.0.0.1:%d?prefix=tlsapp", PASSWORD,
             tunnel_port);

    worker = wf_test_worker_start(&(wf_test_worker){.redis_url = wurl,
                                                    .log_path = log_path,
                                                    .rc = rc,
                                                    .workflows = (const char *[]){"echo", NULL},
                                                    .prefix = "tlsapp"});

    wf_error err = {0};
    wf_client *cl = wf_test_client(curl);
    /* {"via": "tls"} */
    static const char payload[] = "\x81\xa3via\xa3tls";
    wf_run *run = wf_run_workflow(cl, "echo", payload, sizeof payload - 1, &err);
    cr_assert_not_null(run, "%s", err.message);
    char id[WF__ID_MAX];
    snprintf(id, sizeof id, "%s", wf_run_id(run));
    cr_assert(wf_test_wait(completed, id, 10000), "run %s did not complete:\n%s", id,
              wf_test_slurp(log_path));

    wf_status st;
    cr_assert_eq(wf_run_status(run, &st, &err), WF_OK, "%s", err.message);
    cr_assert_eq(st.state, WF_STATE_COMPLETED);
    cr_assert_eq(st.output_len, sizeof payload - 1, "echo returns its input");
    cr_assert_eq(memcmp(st.output, payload, st.output_len), 0, "echo returns its input");
    wf_status_clear(&st);
    wf_run_free(run);
    wf_client_free(cl);

    /* The bytes did travel inside TLS, verified: Redis has no plain port, and stunnel says so. */
    assert_logged("stunnel.log", "Certificate accepted", "stunnel did not verify");
    char *log = wf_test_slurp(log_path);
    cr_assert_null(strstr(log, PASSWORD), "the password appeared in the worker's log");
    free(log);
}

/* A plain client on `port` must be refused (`why` if it is not) with an I/O or connect error,
 * fast: the peer drops a connection whose handshake is wrong, and the client's 5 s read timeout
 * must never be what ends it. The error goes into *err. */
static void assert_refused_at_once(int port, const char *why, wf_error *err)
{
    char url[200];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?prefix=tlsapp", port);
    long long t0 = now_ms();
    wf_client *c = wf_client_connect(url, err);
    long long took = now_ms() - t0;
    cr_assert_null(c, "%s", why);
    cr_assert_lt(took, 3000, "took %lld ms: %s", took, err->message);
    cr_assert(err->code == WF_ERR_IO || err->code == WF_ERR_CONNECT, "%s: %s",
              wf_errname(err->code), err->message);
}

Test(tls, a_plain_connection_to_the_tls_port_fails_at_once_with_an_error)
{
    wf_error err = {0};
    assert_refused_at_once(tls_port, "plain text must not get through to a TLS port", &err);
    cr_assert(strstr(err.message, "Redis connection failed"), "%s", err.message);
}

Test(tls, stunnel_refuses_a_certificate_for_another_host)
{
    int port = 0;
    bad_tunnel_pid = start_tunnel("stunnel-wrong-host", "redis.example.org", &port);
    wf_error err = {0};
    assert_refused_at_once(
        port, "stunnel let through a server whose certificate names another host", &err);
    assert_logged("stunnel-wrong-host.log", "CERT: Subject checks failed",
                  "stunnel's log does not say why");
}

/* No processes: the documented stunnel.conf, with the doc's addresses, is the one tested above. */
TestSuite(tls_doc, .timeout = 10);

Test(tls_doc, security_md_shows_the_stunnel_conf_this_test_runs)
{
    char want[1024];
    snprintf(want, sizeof want, STUNNEL_CONF, 6380, "redis.example.internal:6379",
             "/etc/stunnel/wf-redis-ca.crt", "redis.example.internal");
    char *doc = wf_test_slurp(WF_SOURCE_DIR "/docs/security.md");
    cr_assert(strstr(doc, want), "docs/security.md no longer shows this stunnel.conf:\n%s", want);
    free(doc);
}
