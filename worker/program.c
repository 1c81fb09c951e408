/* program.c - the `wf-worker` program, as wf_worker_main() (include/wf/worker.h): loads workflow
 * modules and runs workers. It lives in libwf-worker so that the program needs no internal
 * symbol from the library (only wf_ names are exported) and so that a service can build its own
 * worker binary around it; worker/main.c is just `return wf_worker_main(argc, argv);`.
 *
 *   wf-worker --redis redis://host:6379 --workflows build/workflows --processes 4
 *
 * The modules are loaded once, in the supervisor, before it forks the worker processes (each
 * inherits them). With --processes 0 the worker runs in this process, without a supervisor.
 * Exit status: 0 after a clean drain, 1 on a runtime failure, 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

static const char usage[] =
    "usage: wf-worker [options]\n"
    "\n"
    "Runs the workflows built by wf_add_workflows() (NAME.so modules) against Redis.\n"
    "\n"
    "  --redis URL          Redis URL (default: $WF_REDIS_URL, else redis://127.0.0.1:6379);\n"
    "                       redis://[user[:password]@]host[:port][/db][?prefix=P&...] or\n"
    "                       unix:///path/redis.sock[?db=N&...]\n"
    "  --workflows DIR      load every *.so in DIR (repeatable; at least one)\n"
    "  --processes N        worker processes under a supervisor (default 1; 0: run in this\n"
    "                       process without a supervisor)\n"
    "  --concurrency M      runs in flight per process (default 8)\n"
    "  --batch B            runs claimed per Redis round trip (default: concurrency)\n"
    "  --lease-ms L         lease of a claimed run, renewed every L/3 ms (default 15000)\n"
    "  --drain-ms D         on SIGTERM/SIGINT, how long running runs may finish before they\n"
    "                       are handed back to the queue (default 30000)\n"
    "  --stuck-grace-ms G   replace a worker process whose handler is still running G ms\n"
    "                       after it was cancelled (timeout, stop): its thread cannot be\n"
    "                       taken back (default 10000; 0: never; needs --processes >= 1)\n"
    "  --max-rss-mb M       replace a worker process whose resident memory exceeds M MiB\n"
    "                       (default 0: no limit; needs --processes >= 1)\n"
    "  --log-level LEVEL    error, warn, info (default) or debug\n"
    "  --log-format FMT     logfmt (default) or json (one object per line)\n"
    "  --http HOST:PORT     serve /healthz, /readyz and /metrics (Prometheus) there; with\n"
    "                       --processes N the supervisor serves the whole host there\n"
    "  --http-token TOKEN   require \"Authorization: Bearer TOKEN\" (default $WF_HTTP_TOKEN);\n"
    "                       mandatory, 16+ characters, when HOST is not a loopback address\n"
    "  --webhook URL        POST a signed notification for every run that ends (completed,\n"
    "                       failed, cancelled, terminated), from the durable outbox\n"
    "  --webhook-secret-file FILE  the HMAC-SHA256 key of X-WF-Signature (required with\n"
    "                       --webhook; surrounding whitespace is ignored)\n"
    "  --webhook-max-attempts N    attempts before P:{W}:outbox:dead (default 10)\n"
    "  --webhook-timeout-ms T      one attempt's timeout (default 10000)\n"
    "  --webhook-visibility-ms V   a dead worker's unacknowledged notifications are taken\n"
    "                       over after V ms (default 60000; at least twice the timeout)\n"
    "  -h, --help           this help\n"
    "  -V, --version        print the version (and whether systemd notify is built in)\n"
    "\n"
    "SIGTERM or SIGINT drains every worker process and exits 0. Under systemd (Type=notify,\n"
    "NotifyAccess=all) each worker process sends READY=1 once it is registered and WATCHDOG=1\n"
    "from its loop when WatchdogSec= is set.\n";

static wf_worker *volatile g_worker;
static volatile sig_atomic_t g_stop;
/* Recycling (recycle.c), only under the supervisor, which replaces a process that exits with
 * WF__EXIT_RECYCLE. */
static long long g_stuck_grace_ms = 10000, g_max_rss_mb;
static int g_supervised;
static long long g_processes = 1; /* --processes */
static char *g_webhook_secret;    /* read from --webhook-secret-file */
static wf__sup_http g_http;       /* --http under the supervisor, which serves the host */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    wf_worker *w = g_worker;
    if (w) wf_worker_stop(w);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    fprintf(stderr, "wf-worker: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'wf-worker --help' for usage.\n");
    return 2;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* One worker process: create, run until stopped, free. */
static int run_worker(void *arg)
{
    const wf_worker_options *opt = arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    wf_error err = {0};
    wf_worker *w = wf_worker_new(opt, &err);
    if (!w) {
        wf__log(WF__LOG_ERROR, "cannot start worker: %s", err.message);
        return 1;
    }
    g_worker = w;
    if (g_supervised) wf__worker_set_recycle(w, g_stuck_grace_ms, g_max_rss_mb);
    if (g_supervised) wf__ops_set_served_by(w, g_http.host ? g_http.addr : NULL);
    wf__sd_enable(w); /* READY=1 and WATCHDOG=1 when run by systemd ($NOTIFY_SOCKET) */
    if (g_stop) wf_worker_stop(w);
    int rc = wf_worker_run(w, &err);
    if (rc != WF_OK) wf__log(WF__LOG_ERROR, "worker failed: %s", err.message);
    g_worker = NULL;
    int recycled = rc == WF_OK && !g_stop && wf__worker_recycled(w) != WF__RECYCLE_NONE;
    wf_worker_free(w);
    if (recycled) return WF__EXIT_RECYCLE;
    return rc == WF_OK ? 0 : 1;
}

/* --processes N: the metrics table shared by the processes (every registered workflow given its
 * slot before the fork), then the supervisor, which serves --http for the host. */
static int supervise(wf_worker_options *opt, char *http_host)
{
    wf_error err = {0};
    if (wf__metrics_share((int)g_processes, &err) != WF_OK) {
        fprintf(stderr, "wf-worker: %s\n", err.message);
        return 1;
    }
    const wf_workflow_def *defs[WF__METRICS_PRECLAIM];
    int n = wf__registry_find_module(NULL, NULL, defs, WF__METRICS_PRECLAIM);
    for (int i = 0; i < n && i < WF__METRICS_PRECLAIM; i++) wf__metrics_slot_claim(defs[i]->name);
    g_http.host = http_host;
    g_http.token = opt->http_token;
    signal(SIGPIPE, SIG_IGN);
    g_supervised = 1;
    return wf__supervise((int)g_processes, run_worker, opt, &g_http);
}

int wf_worker_main(int argc, char **argv)
{
    enum {
        O_REDIS = 1,
        O_WORKFLOWS,
        O_PROCESSES,
        O_CONCURRENCY,
        O_BATCH,
        O_LEASE,
        O_DRAIN,
        O_LOG,
        O_STUCK,
        O_RSS,
        O_LOGFMT,
        O_HTTP,
        O_HTTP_TOKEN,
        O_HOOK,
        O_HOOK_SECRET,
        O_HOOK_ATTEMPTS,
        O_HOOK_TIMEOUT,
        O_HOOK_VIS,
    };
    static const struct option longopts[] = {
        {"redis", required_argument, NULL, O_REDIS},
        {"workflows", required_argument, NULL, O_WORKFLOWS},
        {"processes", required_argument, NULL, O_PROCESSES},
        {"concurrency", required_argument, NULL, O_CONCURRENCY},
        {"batch", required_argument, NULL, O_BATCH},
        {"lease-ms", required_argument, NULL, O_LEASE},
        {"drain-ms", required_argument, NULL, O_DRAIN},
        {"log-level", required_argument, NULL, O_LOG},
        {"stuck-grace-ms", required_argument, NULL, O_STUCK},
        {"max-rss-mb", required_argument, NULL, O_RSS},
        {"log-format", required_argument, NULL, O_LOGFMT},
        {"http", required_argument, NULL, O_HTTP},
        {"http-token", required_argument, NULL, O_HTTP_TOKEN},
        {"webhook", required_argument, NULL, O_HOOK},
        {"webhook-secret-file", required_argument, NULL, O_HOOK_SECRET},
        {"webhook-max-attempts", required_argument, NULL, O_HOOK_ATTEMPTS},
        {"webhook-timeout-ms", required_argument, NULL, O_HOOK_TIMEOUT},
        {"webhook-visibility-ms", required_argument, NULL, O_HOOK_VIS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    wf_worker_options opt = {0};
    const char *url = NULL;
    const char *dirs[64];
    int ndirs = 0;
    long long v;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case O_REDIS:
            url = a;
            break;
        case O_WORKFLOWS:
            if (ndirs == (int)(sizeof dirs / sizeof dirs[0]))
                return usage_error("too many --workflows folders (the limit is 64; at '%s')", a);
            dirs[ndirs++] = a;
            break;
        case O_PROCESSES:
            if (parse_int(a, 0, 1024, &g_processes) != 0)
                return usage_error("--processes wants a whole number from 0 to 1024, not '%s'", a);
            break;
        case O_CONCURRENCY:
            if (parse_int(a, 1, 4096, &v) != 0)
                return usage_error("--concurrency wants a whole number from 1 to 4096, not '%s'",
                                   a);
            opt.concurrency = (int)v;
            break;
        case O_BATCH:
            if (parse_int(a, 1, 4096, &v) != 0)
                return usage_error("--batch wants a whole number from 1 to 4096, not '%s'", a);
            opt.batch = (int)v;
            break;
        case O_LEASE:
            if (parse_int(a, 300, 86400000, &v) != 0)
                return usage_error("--lease-ms wants milliseconds from 300 to 86400000, not '%s'",
                                   a);
            opt.lease_ms = v;
            break;
        case O_DRAIN:
            if (parse_int(a, 1, 86400000, &v) != 0)
                return usage_error("--drain-ms wants milliseconds from 1 to 86400000, not '%s'", a);
            opt.drain_ms = v;
            break;
        case O_STUCK:
            if (parse_int(a, 0, 86400000, &g_stuck_grace_ms) != 0)
                return usage_error(
                    "--stuck-grace-ms wants milliseconds from 0 to 86400000, not '%s'", a);
            break;
        case O_RSS:
            if (parse_int(a, 0, 1024 * 1024, &g_max_rss_mb) != 0)
                return usage_error("--max-rss-mb wants MiB from 0 to 1048576, not '%s'", a);
            break;
        case O_LOG: {
            int l = wf__log_parse_level(a);
            if (l < 0)
                return usage_error("--log-level wants error, warn, info or debug, not '%s'", a);
            wf__log_set_level((wf__log_level)l);
            break;
        }
        case O_LOGFMT: {
            int f = wf__log_parse_format(a);
            if (f < 0) return usage_error("--log-format wants logfmt or json, not '%s'", a);
            wf__log_set_format((wf__log_format)f);
            break;
        }
        case O_HTTP:
            opt.http_listen = a;
            break;
        case O_HTTP_TOKEN:
            opt.http_token = a;
            break;
        case O_HOOK:
            opt.webhook_url = a;
            break;
        case O_HOOK_SECRET: {
            wf_error e = {0};
            free(g_webhook_secret);
            g_webhook_secret = wf__ops_read_secret(a, &e);
            if (!g_webhook_secret) return usage_error("--webhook-secret-file: %s", e.message);
            opt.webhook_secret = g_webhook_secret;
            break;
        }
        case O_HOOK_ATTEMPTS:
            if (parse_int(a, 1, 1000, &v) != 0)
                return usage_error("--webhook-max-attempts wants 1 to 1000, not '%s'", a);
            opt.webhook_max_attempts = (int)v;
            break;
        case O_HOOK_TIMEOUT:
        case O_HOOK_VIS:
            if (parse_int(a, 100, 86400000, &v) != 0)
                return usage_error("%s wants milliseconds from 100 to 86400000, not '%s'",
                                   argv[optind - 1], a);
            if (c == O_HOOK_TIMEOUT)
                opt.webhook_timeout_ms = v;
            else
                opt.webhook_visibility_ms = v;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("wf-worker %s (systemd notify: %s)\n", WF_VERSION,
                   wf__sd_available() ? "yes" : "no");
            return 0;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (ndirs == 0) return usage_error("%s", "no --workflows DIR given: nothing to run");
    if (!opt.http_token) opt.http_token = getenv("WF_HTTP_TOKEN");
    char *http_host = NULL;
    if (opt.http_listen) {
        wf_error e = {0};
        if (wf__ops_parse_listen(opt.http_listen, opt.http_token, &http_host, &g_http.port, &e) !=
            WF_OK)
            return usage_error("--http: %s", e.message);
    }
    if (opt.webhook_url && !opt.webhook_secret)
        return usage_error("%s", "--webhook needs --webhook-secret-file FILE (the signing key)");
    if (!opt.webhook_url && opt.webhook_secret)
        return usage_error("%s", "--webhook-secret-file without --webhook");

    if (!url) url = getenv("WF_REDIS_URL");
    wf__url parsed;
    wf_error err = {0};
    if (wf__url_parse(url, &parsed, &err) != WF_OK) {
        fprintf(stderr, "wf-worker: bad Redis URL: %s\n", err.message);
        return 2;
    }
    wf__url_free(&parsed);
    opt.redis_url = url;

    int total = 0;
    for (int i = 0; i < ndirs; i++) {
        const wf_workflow_def **defs = NULL;
        int n = 0;
        int rc = wf__load_dir(dirs[i], &defs, &n, &err);
        free(defs);
        if (rc < 0) {
            fprintf(stderr, "wf-worker: %s\n", err.message);
            return 2;
        }
        total += rc;
    }
    if (total == 0 || wf_workflow_count() == 0) {
        fprintf(stderr,
                "wf-worker: no workflows found in the --workflows folder%s (expected "
                "NAME.so modules built by wf_add_workflows)\n",
                ndirs == 1 ? "" : "s");
        return 2;
    }
    if (g_processes == 0) {
        free(http_host);
        return run_worker(&opt);
    }
    int rc = supervise(&opt, http_host);
    free(http_host);
    return rc;
}
