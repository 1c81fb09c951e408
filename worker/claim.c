/* claim.c - taking runs from the queues: the blocking XREADGROUP on the block connection, the
 * periodic XAUTOCLAIM that recovers entries a dead consumer read but never claimed, and
 * claim.lua, which turns stream entries into running runs with leases.
 *
 * Slots: a read asks for at most as many entries as there are free executor slots (and at most
 * `batch`); entries that decode are "reserved" slots until claim.lua answers, then become jobs.
 * XREADGROUP's COUNT applies per stream, so with several workflows a read can return more than
 * was asked; those runs are claimed anyway and wait in the executor queue under heartbeats.
 * Entries that do not decode go to claim.lua as (entry, reason) pairs: it moves them to the
 * workflow's dead-letter list, so bad data never blocks a queue.
 *
 * Priorities: each workflow's queue is three streams, its lanes (core/priority.c). While slots
 * are free, a round of reads takes the high lanes of every workflow, then the normal ones, each
 * read without BLOCK and with COUNT = the free slots; a lane is read again while its read came
 * back full (it may hold more) and left once it came back short. The last read of a round, low,
 * BLOCKs over every lane, high first, so a new run of any priority wakes it. A round starts again
 * from high whenever slots ran out or the blocking read answered. So a worker never takes a
 * normal run while it saw high ones ready, nor a low one while it saw high or normal ones: strict
 * priority per worker read, not a global order (a run queued just after a lane's read waits for
 * the next round), and under constant high load low runs wait. In a cluster each workflow runs
 * its own round on its own connection (arm_lanes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wf_worker_internal.h"

#define AUTOCLAIM_MAX 100

/* One claim.lua call in flight. */
typedef struct claim_batch {
    wf_worker *w;
    wf__wdef *def;
    int ngood;  /* slots reserved */
    char **ids; /* the ngood run ids, for wf__claim_recover should the reply be lost */
    /* wf__mono_ms() when claim.lua was sent: the leases it grants start no earlier, so they
     * surely last until this + lease_ms. Not the reply's arrival: a process frozen (SIGSTOP, a
     * long stall) with the reply unread would start step bodies after its lease had expired and
     * another worker had run and recorded those steps (the chaos suite's `pause` found it). */
    int64_t sent_mono;
} claim_batch;

static void batch_free(claim_batch *b)
{
    for (int i = 0; b->ids && i < b->ngood; i++) free(b->ids[i]);
    free(b->ids);
    free(b);
}

/* The definition whose lane stream is named `name`; sets *lane. NULL when none is. */
static wf__wdef *def_by_queue(wf_worker *w, const char *name, size_t len, wf__lane *lane)
{
    for (int i = 0; i < w->ndefs; i++)
        for (int l = 0; l < WF__NLANES; l++) {
            const char *q = w->defs[i]->keys.k[wf__lane_key((wf__lane)l)];
            if (strlen(q) == len && memcmp(q, name, len) == 0) {
                *lane = (wf__lane)l;
                return w->defs[i];
            }
        }
    return NULL;
}

static wf__job *job_from_claim(wf_worker *w, wf__wdef *def, const redisReply *item,
                               int64_t sent_mono)
{
    const redisReply *id = item->element[0], *tok = item->element[1], *att = item->element[2],
                     *in = item->element[3];
    if (id->type != REDIS_REPLY_STRING || id->len >= WF__ID_MAX ||
        tok->type != REDIS_REPLY_STRING || tok->len >= sizeof(((wf__job *)0)->token) ||
        att->type != REDIS_REPLY_INTEGER || in->type != REDIS_REPLY_STRING)
        return NULL;
    wf__job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    memcpy(job->id, id->str, id->len);
    memcpy(job->token, tok->str, tok->len);
    snprintf(job->workflow, sizeof job->workflow, "%s", def->name);
    job->attempt = (int)att->integer;
    /* Redis time at the claim anchors the step engine's clock (sleeps compare with Redis time). */
    job->claimed_mono = wf__mono_ms();
    job->lease_ms = w->opt.lease_ms;
    atomic_store(&job->lease_until_mono, sent_mono + w->opt.lease_ms);
    job->claimed_redis_ms = item->elements > 4 && item->element[4]->type == REDIS_REPLY_INTEGER
                                ? item->element[4]->integer
                                : wf__now_ms();
    if (in->len > 0) {
        job->input = malloc(in->len);
        if (!job->input) {
            free(job);
            return NULL;
        }
        memcpy(job->input, in->str, in->len);
        job->input_len = in->len;
    }
    job->prefix = strdup(w->url.prefix);
    if (!job->prefix) {
        free(job->input);
        free(job);
        return NULL;
    }
    job->handler = def->handler;
    job->opt = def->opt;
    job->max_payload = w->url.max_payload;
    job->retention_ms = w->url.retention_ms;
    job->ctx.job = job;
    job->ctx.pool = w->pool;
    job->retry_after = -1;
    msgpack_sbuffer_init(&job->out);
    job->def = def;
    return job;
}

/* One item of claim.lua's answer (see its header): a run made ours becomes a job, the others are
 * logged. Returns 1 when the item says the workflow is paused, else 0. */
static int claim_item(claim_batch *b, const redisReply *item)
{
    wf_worker *w = b->w;
    if (item->type != REDIS_REPLY_ARRAY || item->elements == 0) return 0;
    if (item->elements == 2 && item->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(item->element[1]->str, "PAUSED") == 0)
        return 1;
    if (item->elements == 3 && item->element[1]->type == REDIS_REPLY_STRING &&
        item->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(item->element[1]->str, "HELD") == 0) {
        wf__log_run(WF__LOG_DEBUG, item->element[0]->str, b->def->name, 0, "held back: %s",
                    item->element[2]->str);
        return 0;
    }
    if (item->elements == 3 && item->element[0]->type == REDIS_REPLY_STRING &&
        item->element[2]->type == REDIS_REPLY_STRING) {
        wf__log(WF__LOG_WARN, "run %s: moved its queue entry to %s: %s", item->element[0]->str,
                b->def->keys.k[WF__K_DEAD], item->element[2]->str);
        return 0;
    }
    if (item->elements == 2 && item->element[0]->type == REDIS_REPLY_STRING) {
        /* The entry outlived its run (its hash expired or was deleted by hand): nothing
         * to run, but an operator should hear of it. */
        wf__log_run(WF__LOG_WARN, item->element[0]->str, b->def->name, 0,
                    "queue entry dropped: the run's hash does not exist any more "
                    "(expired or deleted by hand); counted in "
                    "wf_queue_entries_orphaned_total");
        wf__metrics_inc(b->def->name, WF__C_ORPHANED, 1);
        return 0;
    }
    if (item->elements < 5) {
        if (item->element[0]->type == REDIS_REPLY_STRING)
            wf__log(WF__LOG_DEBUG,
                    "skipping stale queue entry of run %s (stopped, paused "
                    "or re-queued since)",
                    item->element[0]->str);
        return 0;
    }
    wf__job *job = job_from_claim(w, b->def, item, b->sent_mono);
    if (!job) {
        wf__log(WF__LOG_ERROR,
                "unusable claim reply item for workflow %s (or out of "
                "memory); its lease will expire and it will be re-run",
                b->def->name);
        return 0;
    }
    wf__log_run(WF__LOG_DEBUG, job->id, job->workflow, job->attempt, "run claimed");
    wf__job_hold(w, job);
    return 0;
}

static void claim_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    claim_batch *b = privdata;
    wf_worker *w = b->w;
    redisReply *r = reply;
    w->claim.reserved -= b->ngood;
    w->claim.inflight--;
#ifdef WF_FAULT_INJECTION /* -DWF_FAULT_INJECTION=ON only (CMakeLists.txt), never installed */
    /* As if the connection dropped after claim.lua ran: the reply is lost, cmd reconnects. */
    static int lose_once = 1;
    const char *lose = getenv("WF_TEST_LOSE_CLAIM_REPLY");
    if (r && lose && *lose == '1' && lose_once && r->type == REDIS_REPLY_ARRAY) {
        lose_once = 0;
        r = NULL;
        wf__conn_drop(&w->cmd, ac, "test: claim reply lost");
    }
#endif
#ifdef WF_FAULT_INJECTION
    /* As if the process froze with the reply unread: a stall of WF_TEST_STALL_CLAIM_MS (3000)
     * before the first claim (token 1) of run $WF_TEST_STALL_CLAIM_RUN is read. */
    const char *stall = getenv("WF_TEST_STALL_CLAIM_RUN");
    for (size_t i = 0; stall && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *it = r->element[i];
        if (it->type == REDIS_REPLY_ARRAY && it->elements >= 5 &&
            it->element[0]->type == REDIS_REPLY_STRING && !strcmp(it->element[0]->str, stall) &&
            it->element[1]->type == REDIS_REPLY_STRING && !strcmp(it->element[1]->str, "1")) {
            const char *ms = getenv("WF_TEST_STALL_CLAIM_MS");
            long stall_ms = ms ? atol(ms) : 3000;
            struct timespec ts = {stall_ms / 1000, (stall_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
    }
#endif
    if (!r) {
        if (!w->stop.closing) {
            wf__log(WF__LOG_WARN,
                    "connection lost while claiming %d run%s of %s; those it made ours are "
                    "handed back once Redis answers, unclaimed entries are recovered by "
                    "XAUTOCLAIM after the lease time",
                    b->ngood, b->ngood == 1 ? "" : "s", b->def->name);
            for (int i = 0; b->ids && i < b->ngood; i++) wf__claim_lost_add(w, b->def, b->ids[i]);
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        wf_error e = {0};
        wf__script_error(r->str, r->len, &e);
        wf__log(WF__LOG_ERROR, "claim.lua failed for workflow %s: %s", b->def->name, e.message);
    } else if (r->type == REDIS_REPLY_ARRAY) {
        int paused = 0;
        for (size_t i = 0; i < r->elements; i++) paused |= claim_item(b, r->element[i]);
        if (paused && !b->def->paused) {
            /* No more reads of its lanes: flow.c polls for the resume (claim.lua says why the
             * entries stay pending). */
            b->def->paused = 1;
            b->def->next_pause_check = 0;
            wf__log(WF__LOG_INFO, "workflow %s is paused: not claiming its runs until resumed",
                    b->def->name);
        }
    }
    batch_free(b);
    wf__claim_arm(w);
    wf__worker_check_drain(w);
}

/* Sends claim.lua for the entries collected in `cc`. */
static void claim_send(wf_worker *w, wf__wdef *def, wf__lane lane, wf__claim_call *cc,
                       const char **args, size_t *arglen)
{
    int ngood = cc->ngood;
    /* Flow control (lua/lib_flow.lua): claim.lua holds back runs over the workflow's limits. */
    for (int i = 0; i < 4; i++) cc->keys[WF__NFIXED + ngood + i] = def->aux[WF__AUX_LIMITS + i];
    char lease[24], count[24];
    snprintf(lease, sizeof lease, "%lld", (long long)w->opt.lease_ms);
    snprintf(count, sizeof count, "%d", ngood);
    cc->kinds[ngood] = '\0';
    int na = 0;
    args[na++] = w->consumer;
    args[na++] = lease;
    args[na++] = count;
    args[na++] = wf__lane_arg(lane);
    args[na++] = cc->kinds;
    for (int i = 0; i < na; i++) arglen[i] = strlen(args[i]);
    for (int i = 0; i < 3 * ngood; i++, na++) {
        args[na] = cc->good[i];
        arglen[na] = cc->good_len[i];
    }
    for (int i = 0; i < 2 * cc->nbad; i++, na++) {
        args[na] = cc->bad[i];
        arglen[na] = strlen(args[na]);
    }
    claim_batch *b = calloc(1, sizeof *b);
    if (!b) return;
    b->w = w;
    b->def = def;
    b->ngood = ngood;
    b->sent_mono = wf__mono_ms();
    b->ids = calloc((size_t)ngood + 1, sizeof *b->ids);
    for (int i = 0; b->ids && i < ngood; i++) b->ids[i] = strdup(cc->good[3 * i + 1]);
    if (!wf__conn_usable(&w->cmd) ||
        wf__conn_script(&w->cmd, claim_reply, b, WF__SCRIPT_CLAIM, WF__NFIXED + ngood + 4, cc->keys,
                        na, args, arglen) != WF_OK) {
        wf__log(WF__LOG_WARN,
                "cannot send claim.lua for workflow %s now; the entries are "
                "recovered by XAUTOCLAIM after the lease time",
                def->name);
        batch_free(b);
        return;
    }
    w->claim.reserved += ngood;
    w->claim.inflight++;
}

/* Runs claim.lua over the entries of one lane of `def` (an array of [entry id, [field, value,
 * ...]]): claim.lua acknowledges them on that lane. */
static void claim_entries(wf_worker *w, wf__wdef *def, wf__lane lane, const redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) return;
    size_t n = entries->elements;
    /* Worst case: every entry good (3 args + 1 key) or bad (2 args). */
    wf__claim_call cc = {0};
    cc.keys = calloc(WF__NFIXED + n + 4, sizeof *cc.keys); /* + flow control's 4 */
    cc.good = calloc(3 * n, sizeof *cc.good);
    cc.good_len = calloc(3 * n, sizeof *cc.good_len);
    cc.bad = calloc(2 * n, sizeof *cc.bad);
    cc.kinds = calloc(n + 1, 1);
    cc.owned = calloc(3 * n, sizeof *cc.owned);
    const char **args = calloc(5 + 5 * n, sizeof *args);
    size_t *arglen = calloc(5 + 5 * n, sizeof *arglen);
    if (cc.keys && cc.good && cc.good_len && cc.bad && cc.kinds && cc.owned && args && arglen) {
        for (int i = 0; i < WF__NFIXED; i++) cc.keys[i] = def->keys.k[i];
        for (size_t i = 0; i < n; i++) wf__claim_add(w, def, &cc, entries->element[i]);
        if (cc.ngood + cc.nbad > 0) claim_send(w, def, lane, &cc, args, arglen);
    }
    if (cc.owned)
        for (int i = 0; i < cc.nowned; i++) free(cc.owned[i]);
    free(cc.owned);
    free(cc.keys);
    free(cc.good);
    free(cc.good_len);
    free(cc.bad);
    free(cc.kinds);
    free(args);
    free(arglen);
}

/* ---- XREADGROUP on the block connection ------------------------------------------------------ */

/* Entries read from one or more queues: claims them. Returns 1 when a stream gave as many
 * entries as the read asked for (more may be waiting on that lane). */
static int read_streams(wf_worker *w, const redisReply *r, int count)
{
    int full = 0;
    if (r->type != REDIS_REPLY_ARRAY) return 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
            s->element[0]->type != REDIS_REPLY_STRING)
            continue;
        wf__lane l;
        wf__wdef *def = def_by_queue(w, s->element[0]->str, s->element[0]->len, &l);
        if (s->element[1]->type == REDIS_REPLY_ARRAY && s->element[1]->elements >= (size_t)count)
            full = 1;
        if (def) claim_entries(w, def, l, s->element[1]);
    }
    return full;
}

static int next_lane(int lane, int full);

static void read_failed(wf_worker *w, const redisReply *r)
{
    /* A cluster moving a workflow's slot: the read is re-sent where the new map says. */
    int moving = strncmp(r->str, "MOVED ", 6) == 0 || strncmp(r->str, "ASK ", 4) == 0 ||
                 strncmp(r->str, "UNBLOCKED", 9) == 0;
    wf__log(moving ? WF__LOG_INFO : WF__LOG_ERROR, "XREADGROUP failed: %s; retrying shortly",
            r->str);
    if (strncmp(r->str, "NOGROUP", 7) == 0) wf__setup_groups_async(w);
    w->claim.read_retry_at = wf__mono_ms() + 500;
}

static void read_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    wf_worker *w = privdata;
    redisReply *r = reply;
    int lane = w->claim.read_lane;
    w->claim.read_inflight = 0;
    w->claim.read_lane = WF__LANE_HIGH; /* unless the lane read below came back full or short */
    if (!r) return;                     /* connection gone: conn.c reconnects, on_ready re-arms */
    if (r->type == REDIS_REPLY_ERROR) {
        read_failed(w, r);
        return;
    }
    w->claim.read_lane = next_lane(lane, read_streams(w, r, w->claim.read_count));
    wf__claim_arm(w);
}

/* The XREADGROUP of lane `lane` over the workflows defs[from..to) that are not paused: without
 * BLOCK over that lane, or for the last lane (low), BLOCK block_ms over every lane, high first.
 * Fills argv (room for 9 + 2 * WF__NLANES * (to - from)); returns argc, 0 when every one of them
 * is paused (nothing to read). */
static int read_command(wf_worker *w, int from, int to, int lane, const char *count,
                        const char *block_ms, const char **argv)
{
    int a = 0, last = lane == WF__LANE_LOW;
    argv[a++] = "XREADGROUP";
    argv[a++] = "GROUP";
    argv[a++] = WF__GROUP;
    argv[a++] = w->consumer;
    argv[a++] = "COUNT";
    argv[a++] = count;
    if (last) {
        argv[a++] = "BLOCK";
        argv[a++] = block_ms;
    }
    argv[a++] = "STREAMS";
    int nstreams = 0;
    for (int l = last ? WF__LANE_HIGH : lane; l <= lane; l++)
        for (int i = from; i < to; i++)
            if (!w->defs[i]->paused) {
                argv[a++] = w->defs[i]->keys.k[wf__lane_key((wf__lane)l)];
                nstreams++;
            }
    if (nstreams == 0) return 0;
    for (int i = 0; i < nstreams; i++) argv[a++] = ">";
    return a;
}

/* The lane after a read of `lane` came back: a non-blocking read that came back full may have
 * left runs on that lane, so it is read again; one that came back short leaves it for the next
 * lane. The blocking read ends the round. */
static int next_lane(int lane, int full)
{
    if (lane < WF__LANE_HIGH || lane >= WF__LANE_LOW) return WF__LANE_HIGH;
    return full ? lane : lane + 1;
}

/* Cluster: the answer to one workflow's read on its own lane. */
static void lane_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    wf__wdef *def = privdata;
    wf_worker *w = ((wf__conn *)ac->data)->w;
    redisReply *r = reply;
    int lane = def->read_lane;
    def->read_busy = 0;
    def->read_lane = WF__LANE_HIGH;
    w->claim.read_inflight--;
    w->claim.read_reserved -= def->read_count;
    if (!r) return;
    if (r->type == REDIS_REPLY_ERROR) {
        read_failed(w, r);
        return;
    }
    def->read_lane = next_lane(lane, read_streams(w, r, def->read_count));
    wf__claim_arm(w);
}

/* In a cluster one XREADGROUP cannot span the workflows' slots, and a blocking read holds its
 * connection: each workflow reads on a connection lane of its own and runs the round of the
 * one-server read (high, normal, then a blocking read over its three lanes) by itself. Strict
 * priority then holds within each workflow, not across workflows (docs/scaling.md).
 *
 * The reads in flight share the free slots: each idle workflow's read asks for its share of the
 * slots not already asked for (at least 1), so what the reads can return together stays near
 * the free slots, not free slots times workflows. A read armed while slots were free may still
 * return runs after other workflows filled them; those wait in this worker under heartbeats, as
 * runs beyond COUNT do in the one-server read. Every workflow always has its read: a blocking
 * read on an empty queue never holds back another workflow's runs (an earlier try that let the
 * reads hold the slots exclusively cut test_scale's one-host rate from 40 to 8 runs/s). */
static void arm_lanes(wf_worker *w, int free_slots)
{
    const char *argv[9 + 2 * WF__NLANES];
    int budget = free_slots - w->claim.read_reserved, idle = 0;
    for (int i = 0; i < w->ndefs; i++) idle += !w->defs[i]->read_busy && !w->defs[i]->paused;
    for (int k = 0; k < w->ndefs && idle > 0; k++) {
        int i = (w->claim.arm_next + k) % w->ndefs;
        wf__wdef *def = w->defs[i];
        if (def->read_busy || def->paused) continue;
        int count = budget > 0 ? budget / idle : 1;
        if (count < 1) count = 1;
        if (count > w->opt.batch) count = w->opt.batch;
        idle--;
        char cnt[16];
        snprintf(cnt, sizeof cnt, "%d", count);
        if (def->read_lane < WF__LANE_HIGH || def->read_lane > WF__LANE_LOW)
            def->read_lane = WF__LANE_HIGH;
        int argc = read_command(w, i, i + 1, def->read_lane, cnt, "1000", argv);
        if (wf__conn_lane_argv(&w->block, i, lane_reply, def, argc, argv, NULL) != REDIS_OK)
            continue;
        def->read_busy = 1;
        def->read_count = count;
        w->claim.read_reserved += count;
        budget -= count;
        w->claim.read_inflight++;
        w->claim.read_retry_at = 0;
        w->claim.arm_next = (i + 1) % w->ndefs;
    }
}

void wf__claim_arm(wf_worker *w)
{
    if (w->stop.closing || w->stop.draining || w->ndefs == 0) return;
    if (w->claim.read_inflight && !w->block.cluster) return;
    if (!wf__conn_usable(&w->block) || !wf__conn_usable(&w->cmd)) return;
    if (w->claim.read_retry_at && wf__mono_ms() < w->claim.read_retry_at) return;
    int free_slots = wf__worker_free_slots(w);
    if (free_slots <= 0) {
        /* The next round starts from the top. */
        w->claim.read_lane = WF__LANE_HIGH;
        for (int i = 0; i < w->ndefs; i++)
            if (!w->defs[i]->read_busy) w->defs[i]->read_lane = WF__LANE_HIGH;
        return;
    }
    if (w->block.cluster) {
        arm_lanes(w, free_slots);
        return;
    }
    int count = free_slots < w->opt.batch ? free_slots : w->opt.batch;
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%d", count);
    const char **argv = calloc(9 + 2 * WF__NLANES * (size_t)w->ndefs, sizeof *argv);
    if (!argv) return;
    if (w->claim.read_lane < WF__LANE_HIGH || w->claim.read_lane > WF__LANE_LOW)
        w->claim.read_lane = WF__LANE_HIGH;
    int argc = read_command(w, 0, w->ndefs, w->claim.read_lane, cnt, "1000", argv);
    if (argc > 0 && wf__conn_lane_argv(&w->block, 0, read_reply, w, argc, argv, NULL) == REDIS_OK) {
        w->claim.read_inflight = 1;
        w->claim.read_count = count;
        w->claim.read_retry_at = 0;
    }
    free(argv);
}

/* ---- XAUTOCLAIM on the cmd connection ------------------------------------------------------- */

typedef struct autoclaim_ctx {
    wf_worker *w;
    wf__wdef *def;
    wf__lane lane;
} autoclaim_ctx;

static void autoclaim_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    autoclaim_ctx *c = privdata;
    wf_worker *w = c->w;
    wf__wdef *def = c->def;
    wf__lane lane = c->lane;
    free(c);
    def->autoclaim_busy--;
    redisReply *r = reply;
    if (!r || w->stop.closing) return;
    const char *queue = def->keys.k[wf__lane_key(lane)];
    if (r->type == REDIS_REPLY_ERROR) {
        wf__log(WF__LOG_ERROR, "XAUTOCLAIM on %s failed: %s", queue, r->str);
        if (strncmp(r->str, "NOGROUP", 7) == 0) wf__setup_groups_async(w);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) return;
    const redisReply *entries = r->element[1];
    if (entries->type == REDIS_REPLY_ARRAY && entries->elements > 0) {
        wf__log(WF__LOG_INFO,
                "recovering %zu queue entr%s of %s read by a consumer that never claimed them",
                entries->elements, entries->elements == 1 ? "y" : "ies", queue);
        if (!w->stop.draining) claim_entries(w, def, lane, entries);
    }
}

/* Takes over the entries of every lane of `def` idle for `min_idle_ms`, high lane first (the
 * claims are sent in the order of the answers, on one connection). Taking over an entry another
 * worker is claiming at that moment is harmless: claim.lua makes a run running once. */
void wf__claim_autoclaim(wf_worker *w, wf__wdef *def, int64_t min_idle_ms)
{
    if (w->stop.closing || w->stop.draining || def->paused || def->autoclaim_busy ||
        !wf__conn_usable(&w->cmd))
        return;
    int free_slots = wf__worker_free_slots(w);
    if (free_slots <= 0) return;
    if (free_slots > AUTOCLAIM_MAX) free_slots = AUTOCLAIM_MAX;
    for (int l = WF__LANE_HIGH; l < WF__NLANES; l++) {
        autoclaim_ctx *c = malloc(sizeof *c);
        if (!c) return;
        c->w = w;
        c->def = def;
        c->lane = (wf__lane)l;
        if (wf__conn_command(&w->cmd, autoclaim_reply, c, "XAUTOCLAIM %s %s %s %lld 0-0 COUNT %d",
                             def->keys.k[wf__lane_key((wf__lane)l)], WF__GROUP, w->consumer,
                             (long long)min_idle_ms, free_slots) != REDIS_OK) {
            free(c);
            return;
        }
        def->autoclaim_busy++;
    }
}
