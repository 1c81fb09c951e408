/* wf_ops.h - operating a worker: what it tells the outside about itself. Included at the end of
 * wf_worker_internal.h; shared by the files below and the hooks the loop calls.
 *
 *   presence.c  the worker's entry in the hash P:workers (`wf workers` reads it)
 *   metrics.c   the metrics table: counters and histograms per workflow, gauges per process,
 *               shared by the processes of a supervisor (metrics_table.h has its layout)
 *   metrics_render.c  the table as Prometheus text
 *   http.c      /healthz, /readyz, /metrics with evhttp, for a lone worker or the supervisor
 *   webhook.c   run notifications from the durable outbox P:{W}:outbox, POSTed and signed
 *   curl_ev.c   libcurl's multi interface driven by the worker's libevent loop (no threads)
 *   ops.c       options, start and stop, the hooks, the gauges refreshed on the tick
 *
 * Design
 * ------
 * Everything here runs on the loop thread and talks to Redis on the cmd connection, except
 * wf__metrics_*(), which executor threads call too (step durations) and which only touch atomics
 * in a table that lives as long as the process, or as the supervisor when it shares the table
 * between its processes. Counters are the table's (an embedding program with two workers sees
 * the sum in both); each process writes its gauges (runs in flight, readiness, Redis round trip,
 * and the queue gauges of the workflows whose gauge lease it holds: ops.c) to its own section.
 *
 * Hooks into the loop: wf_worker_new -> wf__ops_new; wf_worker_run -> wf__ops_start before the
 * loop and wf__ops_stop after it; the cmd connection ready -> wf__ops_on_ready; the 100 ms tick
 * -> wf__ops_tick; an end operation answered -> wf__ops_on_end; wf_worker_free -> wf__ops_free
 * (after the connections, whose pending callbacks may still reach ops, before the event base).
 *
 * The end of a run is recorded in the outbox by the script that ends it (complete.lua, fail.lua,
 * stop.lua with the trailing "notify" argument, see lua/lib_finish.lua outbox_add), so a worker
 * that dies right after loses no notification: another one finds the entry in the stream or, once
 * it was read, in the consumer group's pending list (XAUTOCLAIM after the visibility timeout).
 * Delivery is at least once; receivers deduplicate on X-WF-Event (the outbox entry id) or on
 * runId + state.
 */
#ifndef WF_OPS_H
#define WF_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

/* ---- Metrics (metrics.c) ------------------------------------------------------------------- */

typedef enum wf__counter {
    WF__C_STARTED = 0,    /* attempts claimed and handed to an executor */
    WF__C_COMPLETED,      /* complete.lua answered OK */
    WF__C_FAILED,         /* fail.lua ended the run failed */
    WF__C_RETRIED,        /* fail.lua scheduled a retry */
    WF__C_CANCELLED,      /* results dropped: the run was stopped, timed out or taken over */
    WF__C_TERMINATED,     /* fail.lua ended the run terminated (timeout) */
    WF__C_RECLAIMED,      /* expired leases reclaim.lua re-queued or failed */
    WF__C_HOOK_DELIVERED, /* webhook notifications answered 2xx */
    WF__C_HOOK_RETRIED,   /* webhook attempts that failed and will be tried again */
    WF__C_HOOK_DEAD,      /* webhook notifications given up (P:{W}:outbox:dead) */
    WF__C_ORPHANED,       /* queue entries naming a run whose hash no longer exists */
    WF__C_COUNT
} wf__counter;

/* How an attempt ended, the `outcome` label of wf_attempt_duration_seconds; names in metrics.c. */
typedef enum wf__outcome {
    WF__O_COMPLETED = 0, /* complete.lua answered OK */
    WF__O_FAILED,        /* fail.lua ended the run failed */
    WF__O_RETRIED,       /* fail.lua scheduled a retry */
    WF__O_TERMINATED,    /* fail.lua ended the run terminated (timeout) */
    WF__O_SUSPENDED,     /* a step suspended the run (waiting for a timer, an event, a child) */
    WF__O_CANCELLED,     /* the result was dropped: stopped, timed out or taken over meanwhile */
    WF__O_RELEASED,      /* handed back to the queue (the worker was stopping or stalled) */
    WF__O_COUNT
} wf__outcome;

/* Adds `n` to counter `c` of `workflow`. Any thread; lock-free once the workflow has a slot. */
void wf__metrics_inc(const char *workflow, wf__counter c, long long n);
/* Observes one attempt's duration (claim to confirmed end) / one step body's duration, in ms. */
void wf__metrics_run_ms(const char *workflow, int64_t ms);
void wf__metrics_step_ms(const char *workflow, int64_t ms);
/* Observes the end of `job`'s attempt (claim to now) with `outcome`, once per attempt: later
 * calls for the same job are ignored. Loop thread. */
void wf__metrics_attempt_end(wf__job *job, wf__outcome outcome);
/* The supervisor, before it forks: maps a table shared by `nprocs` worker processes (metrics.c's
 * design comment). WF_OK or WF_ERR_SYSTEM. */
int wf__metrics_share(int nprocs, wf_error *err);
/* How many registered workflows the supervisor gives a slot before it forks. */
#define WF__METRICS_PRECLAIM 512
/* Gives `workflow` its slot now, so that its series show (as zeros) before anything happens. */
void wf__metrics_slot_claim(const char *workflow);
/* In worker process `index` (0..nprocs-1), right after the fork: the gauge section it writes. */
void wf__metrics_set_process(int index);
/* The supervisor, once process `index` exited: its gauges are no longer live. */
void wf__metrics_clear_proc(int index);
/* Loop thread, from the tick and before a scrape: this process's gauges into its section. */
void wf__metrics_publish(struct wf_worker *w);
/* The exposition of the table (metrics_render.c) appended to `out`; `supervisor` adds the
 * per-process figures of the host. */
void wf__metrics_render(struct evbuffer *out, int supervisor);
/* 0 when every live worker process of the table is ready, else 1 with why in `why`. */
int wf__metrics_not_ready(char *why, size_t len);

/* ---- The ops state of one worker (ops.c) ------------------------------------------------- */

typedef struct wf__hooks wf__hooks; /* webhook.c */

/* Gauges of one workflow, refreshed about every second on the tick. */
typedef struct wf__gauges {
    long long depth; /* XLEN of the queue, every priority lane added up: ready runs not
                        yet claimed; -1 unknown */
    long long lane_depth[WF__NLANES]; /* XLEN of each lane (wf__lane); -1 unknown */
    int64_t lane_first[WF__NLANES];   /* ms of each lane's first entry, 0 none (this refresh) */
    double oldest_age_s;  /* Redis time minus the oldest queued run's entry time; 0 if none */
    int64_t redis_now_ms; /* Redis TIME of the refresh, for the age */
    char *lease_key;      /* P:{W}:gauges, the gauge lease (ops.c); owned */
    int leader;           /* this process holds it: it reads and exports the queue gauges */
    int lease_busy;       /* a SET ... NX GET is in flight */
} wf__gauges;

typedef struct wf__ops {
    struct wf_worker *w;

    /* -- configuration (copied at wf_worker_new) -- */
    char *http_host;   /* NULL: no HTTP server */
    int http_port;     /* first port to try */
    char *http_token;  /* NULL: none (loopback only) */
    char *webhook_url; /* NULL: no webhooks */
    char *webhook_secret;
    size_t webhook_secret_len;
    int webhook_max_attempts;
    int64_t webhook_timeout_ms, webhook_visibility_ms;

    /* -- presence (presence.c) -- */
    char host[256];        /* gethostname() */
    int64_t started_at;    /* Redis ms of the first registration; 0 before */
    int64_t next_presence; /* mono ms: next HSET P:workers */
    int64_t next_prune;    /* mono ms: next removal of long-dead entries */
    int presence_busy;     /* an HSET is in flight */
    int presence_written;  /* at least one HSET answered: remove the entry at exit */

    /* -- health (ops.c) -- */
    int scripts_ok;      /* a script answered since the cmd connection (re)connected */
    int probe_busy;      /* a probe script is in flight */
    int64_t next_probe;  /* mono ms */
    int64_t next_gauges; /* mono ms */
    int gauges_inflight; /* replies of the last refresh still outstanding */
    int64_t rtt_sent_us; /* when the refresh's TIME was sent (monotonic us) */
    double rtt_s;        /* last measured Redis round trip; -1 none yet */
    wf__gauges *gauges;  /* one per w->defs entry */
    int64_t next_lease;  /* mono ms: the next round of gauge lease renewals (ops.c) */

    /* -- HTTP (http.c) -- */
    struct wf__http *http; /* NULL: no server of its own */
    char http_addr[300];   /* "http://HOST:PORT/" serving this process (its own, or its
                              supervisor's); "": none */

    /* -- webhooks (webhook.c); NULL when off -- */
    wf__hooks *hooks;

    /* -- systemd notify (sd.c); all 0 unless wf__sd_enable() was called -- */
    int sd_on;                /* wf-worker asked for it and $NOTIFY_SOCKET is set */
    int sd_ready_sent;        /* READY=1 sent (once per process) */
    int sd_barrier;           /* a barrier before READY=1 is in flight on cmd */
    int64_t sd_watchdog_ms;   /* WATCHDOG=1 interval: half of $WATCHDOG_USEC; 0: no watchdog */
    int64_t sd_next_watchdog; /* mono ms */
} wf__ops;

/* Creates the ops state from the options (checks the HTTP address and token rule, the webhook
 * secret). Returns NULL with `err` filled. Called by wf_worker_new once the base exists. */
wf__ops *wf__ops_new(struct wf_worker *w, const wf_worker_options *o, wf_error *err);
/* Frees it (HTTP server, webhook transfers, gauges). NULL is a no-op. */
void wf__ops_free(wf__ops *ops);
/* wf_worker_run, before the loop: binds the HTTP server (WF_ERR_SYSTEM if it cannot listen). */
int wf__ops_start(struct wf_worker *w, wf_error *err);
/* wf_worker_run, after the loop: removes the worker's P:workers entry (own short connection). */
void wf__ops_stop(struct wf_worker *w);
/* The cmd connection became ready: register presence, probe the scripts, outbox groups. */
void wf__ops_on_ready(struct wf_worker *w);
/* From the 100 ms tick. */
void wf__ops_tick(struct wf_worker *w, int64_t now);
/* An end operation of `job` was answered with `r` (NULL: connection lost): counts the outcome
 * and observes the attempt's duration. */
void wf__ops_on_end(struct wf_worker *w, wf__job *job, const redisReply *r);
/* The "notify" argument for complete/fail: "1" with webhooks configured, else "auto" (record
 * only where another worker's webhooks created the outbox). */
const char *wf__ops_notify_mode(const struct wf_worker *w);
/* wf-worker --processes N: the supervisor serves HTTP at `addr` (NULL: nobody), so this
 * process serves none of its own and names that address in P:workers. */
void wf__ops_set_served_by(struct wf_worker *w, const char *addr);
/* Checks "HOST:PORT" and the token rule; fills host (caller frees) and port. WF_OK or
 * WF_ERR_INVALID with what to do. */
int wf__ops_parse_listen(const char *listen, const char *token, char **host, int *port,
                         wf_error *err);
/* Reads a secret from `path` (at most 4 KiB; surrounding whitespace trimmed). Returns a string
 * the caller frees, or NULL with `err` filled (unreadable, empty, too long). */
char *wf__ops_read_secret(const char *path, wf_error *err);
/* NULL when ready (both connections up, a script answered, not draining), else why not. */
const char *wf__ops_not_ready(const struct wf_worker *w);

/* ---- Parts --------------------------------------------------------------------------------- */

/* sd.c: systemd's notify protocol for wf-worker (wf-worker@.service, Type=notify). Enable turns it
 * on for this worker when $NOTIFY_SOCKET is set (a program embedding the pool never calls it);
 * the tick sends READY=1 once the worker is ready and registered, WATCHDOG=1 every half of
 * $WATCHDOG_USEC; on_ready forgets a barrier a lost connection dropped. No-ops without
 * libsystemd (WF_SYSTEMD); wf__sd_available() says whether it was compiled in. */
void wf__sd_enable(struct wf_worker *w);
void wf__sd_tick(struct wf_worker *w, int64_t now);
void wf__sd_on_ready(struct wf_worker *w);
int wf__sd_available(void);

/* presence.c: HSET the entry when due (about every 5 s); HDEL it at exit (sync connection). */
void wf__presence_tick(struct wf_worker *w, int64_t now);
void wf__presence_remove(struct wf_worker *w);

/* http.c: a health and metrics server on `base`. It knows its owner only by these functions. */
typedef struct wf__http wf__http;
typedef struct wf__http_fns {
    /* 0 when ready, else 1 with the reason written to why (len bytes) */
    int (*not_ready)(void *arg, char *why, size_t len);
    void (*metrics)(void *arg, struct evbuffer *out); /* the exposition, appended */
} wf__http_fns;
/* Listens on host:port; writes "http://HOST:PORT/" to addr. NULL with `err` filled. */
wf__http *wf__http_new(struct event_base *base, const char *host, int port, const char *token,
                       const wf__http_fns *fns, void *arg, char *addr, size_t addrlen,
                       wf_error *err);
/* The listening socket (closed by the supervisor's children), or -1. */
int wf__http_fd(const wf__http *h);
void wf__http_free(wf__http *h);

/* webhook.c: create (curl multi on the base), on cmd ready (consumer groups), tick (read, take
 * over, retry, refresh), free (transfers aborted; unacknowledged entries stay pending). */
wf__hooks *wf__hooks_new(wf__ops *ops, wf_error *err);
void wf__hooks_on_ready(wf__hooks *h);
void wf__hooks_tick(wf__hooks *h, int64_t now);
void wf__hooks_free(wf__hooks *h);
/* This worker just ended a run (its end may be in an outbox): read the outboxes at once. NULL
 * is a no-op. */
void wf__hooks_nudge(wf__hooks *h);

/* ---- HTTP client on the loop (curl_ev.c) ------------------------------------------------- */

typedef struct wf__curl wf__curl;

/* A transfer ended: `code` is the CURLcode (0 = a response came, `status` its HTTP status),
 * `error` a readable message when code != 0 (borrowed for the call). Fires exactly once, on the
 * loop thread, also when the transfer is aborted by wf__curl_free (CURLE_ABORTED_BY_CALLBACK). */
typedef void (*wf__curl_done_fn)(void *arg, int code, long status, const char *error);

/* A curl multi handle driven by `base` (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION on libevent
 * events). NULL with `err` filled on failure. Free with wf__curl_free(). */
wf__curl *wf__curl_new(struct event_base *base, wf_error *err);
/* Starts a POST of `body` (copied) to `url` with `nheaders` "Name: value" headers (copied), within
 * `timeout_ms`. Returns WF_OK (then `fn` fires later) or an error (then it never fires). */
int wf__curl_post(wf__curl *c, const char *url, const char *const *headers, int nheaders,
                  const char *body, size_t len, int64_t timeout_ms, wf__curl_done_fn fn, void *arg);
/* Aborts every transfer (their callbacks fire) and frees. NULL is a no-op. */
void wf__curl_free(wf__curl *c);

#endif
