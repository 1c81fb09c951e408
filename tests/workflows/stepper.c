/* stepper.c - test workflow for durable steps, driven by its input map:
 *   n        number of plain steps "s#0".."s#n-1" (default 3); step i returns i * 10
 *   work_ms  time each plain step spends (default 0)
 *   sleep_ms a durable sleep "nap" after the first step (default 0: none)
 *   event    wait for this event (step "ev") after the plain steps; key: its key filter;
 *            event_timeout_ms: the wait's timeout (default 0: none)
 *   flaky    a step "flaky" that fails until its own attempt reaches this number;
 *            flaky_max: that step's max attempts (default flaky + 1)
 *   hold_ms  a step "hold" that spins until cancelled or this long has passed
 * Output: {"sum": sum of plain step results, "event": payload | "timeout" | nil}
 *
 * Every step body appends "STEP RUNID NAME" to $WF_TEST_EXEC_LOG, and, when $WF_TEST_REDIS_PORT is
 * set, first checks in Redis whether that step already has a finished record. If it does and the
 * record was finished (its t1) before this body was entered, the step ran again after its result
 * was recorded: "VIOLATION RUNID NAME". If the body was entered first (a worker process frozen
 * inside the body while another worker ran and recorded the step: the at-least-once side effect
 * that docs/durable-execution.md states), it appends "OVERLAP RUNID NAME" instead.
 */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wf/wf.h>

#include "exec_log.h"

typedef struct params {
    int n, work_ms, flaky, flaky_max;
    int64_t sleep_ms, event_timeout_ms, hold_ms;
    char event[64], key[64];
} params;

static int key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static void read_params(const msgpack_object *in, params *p)
{
    memset(p, 0, sizeof *p);
    p->n = 3;
    if (in->type != MSGPACK_OBJECT_MAP) return;
    for (uint32_t i = 0; i < in->via.map.size; i++) {
        const msgpack_object *k = &in->via.map.ptr[i].key, *v = &in->via.map.ptr[i].val;
        int64_t num = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : 0;
        if (key_is(k, "n")) p->n = (int)num;
        if (key_is(k, "work_ms")) p->work_ms = (int)num;
        if (key_is(k, "flaky")) p->flaky = (int)num;
        if (key_is(k, "flaky_max")) p->flaky_max = (int)num;
        if (key_is(k, "sleep_ms")) p->sleep_ms = num;
        if (key_is(k, "event_timeout_ms")) p->event_timeout_ms = num;
        if (key_is(k, "hold_ms")) p->hold_ms = num;
        if (v->type == MSGPACK_OBJECT_STR && v->via.str.size < 64) {
            if (key_is(k, "event")) memcpy(p->event, v->via.str.ptr, v->via.str.size);
            if (key_is(k, "key")) memcpy(p->key, v->via.str.ptr, v->via.str.size);
        }
    }
}

static void append(const char *what, const wf_ctx *ctx, const char *step)
{
    const char *path = getenv("WF_TEST_EXEC_LOG");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[400];
    int n = snprintf(line, sizeof line, "%s %s %s\n", what, wf_ctx_event_id(ctx), step);
    if (n > 0 && write(fd, line, (size_t)n) != n) perror("exec log");
    close(fd);
}

/* The step record's "t1" (when the step finished, Redis time in ms), or -1. */
static int64_t record_t1(const char *rec, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int64_t t1 = -1;
    if (msgpack_unpack_next(&u, rec, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            const msgpack_object *k = &u.data.via.map.ptr[i].key, *v = &u.data.via.map.ptr[i].val;
            if (key_is(k, "t1") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                t1 = (int64_t)v->via.u64;
        }
    msgpack_unpacked_destroy(&u);
    return t1;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libwf-worker's internal: when the step engine let this body past its lease fence. */
int64_t wf__ctx_step_admitted_ms(const wf_ctx *ctx);

/* The honest check: did this step already finish, by Redis's own record, before this body was
 * let in? (Redis runs on this host: its TIME and CLOCK_REALTIME are the same clock.) The engine's
 * admission time, not this line's: a process frozen between the fence and here is the same
 * at-least-once window as one frozen inside the body. */
static void check_not_recorded(const wf_ctx *ctx, const char *step)
{
    int64_t entered = wf__ctx_step_admitted_ms(ctx);
    if (entered <= 0) entered = wall_ms();
    const char *port = getenv("WF_TEST_REDIS_PORT");
    if (!port) return;
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", atoi(port), tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return;
    }
    redisReply *r =
        redisCommand(c, "HGET wf:{stepper}:run:%s:steps %s", wf_ctx_event_id(ctx), step);
    /* On a cluster (the NAME_cluster suites) the key lives on one master: follow MOVED once. */
    const char *colon = r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "MOVED ", 6)
                            ? strrchr(r->str, ':')
                            : NULL;
    if (colon) {
        int moved_to = atoi(colon + 1);
        freeReplyObject(r);
        redisFree(c);
        c = redisConnectWithTimeout("127.0.0.1", moved_to, tv);
        r = c && !c->err
                ? redisCommand(c, "HGET wf:{stepper}:run:%s:steps %s", wf_ctx_event_id(ctx), step)
                : NULL;
        if (!c) return;
    }
    /* A finished record has status "done": msgpack fixstr "s" then fixstr "done". */
    if (r && r->type == REDIS_REPLY_STRING &&
        memmem(r->str, r->len,
               "\xa1s\xa4"
               "done",
               6))
        append(record_t1(r->str, r->len) < entered ? "VIOLATION" : "OVERLAP", ctx, step);
    if (r) freeReplyObject(r);
    redisFree(c);
}

typedef struct step_arg {
    const params *p;
    int i;
    const char *name;
} step_arg;

static int plain(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    const step_arg *a = arg;
    check_not_recorded(ctx, a->name);
    append("STEP", ctx, a->name);
    if (a->p->work_ms) wf_test_nap_ms(a->p->work_ms);
    msgpack_pack_int(out, a->i * 10);
    return WF_OK;
}

static int flaky(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    const params *p = arg;
    append("STEP", ctx, "flaky");
    if (wf_step_attempt(ctx) < p->flaky) {
        wf_ctx_retry_after(ctx, 50);
        return wf_ctx_fail(ctx, WF_ERR_HANDLER, "flaky attempt %d", wf_step_attempt(ctx));
    }
    msgpack_pack_int(out, wf_step_attempt(ctx));
    return WF_OK;
}

static int hold(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    const params *p = arg;
    append("STEP", ctx, "hold");
    char what[32]; /* "HOLD<n>": wf_step_attempt() as the body saw it */
    snprintf(what, sizeof what, "HOLD%d", wf_step_attempt(ctx));
    append(what, ctx, "hold");
    for (int64_t t = 0; t < p->hold_ms && !wf_ctx_cancelled(ctx); t += 5) wf_test_nap_ms(5);
    msgpack_pack_true(out);
    return WF_OK;
}

static int stepper(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    params p;
    read_params(input, &p);
    int rc;
    int64_t sum = 0;
    for (int i = 0; i < p.n; i++) {
        const char *name = wf_step_name(ctx, "s", i);
        step_arg a = {&p, i, name};
        const msgpack_object *r;
        if ((rc = wf_step_run(ctx, name, plain, &a, &r))) return rc;
        if (r->type == MSGPACK_OBJECT_POSITIVE_INTEGER) sum += (int64_t)r->via.u64;
        if (i == 0 && p.sleep_ms && (rc = wf_step_sleep(ctx, "nap", p.sleep_ms))) return rc;
    }
    if (p.flaky) {
        wf_step_options o = {.max_attempts = p.flaky_max ? p.flaky_max : p.flaky + 1,
                             .base_delay_ms = 20};
        if ((rc = wf_step_run_ex(ctx, "flaky", flaky, &p, &o, NULL))) return rc;
    }
    if (p.hold_ms) {
        if ((rc = wf_step_run(ctx, "hold", hold, &p, NULL))) return rc;
        if (wf_ctx_cancelled(ctx)) return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "cancelled");
    }
    const msgpack_object *ev = NULL;
    int timed_out = 0;
    if (p.event[0]) {
        rc = wf_step_wait_for_event(ctx, "ev", p.event, p.key[0] ? p.key : NULL, p.event_timeout_ms,
                                    &ev);
        if (rc == WF_ERR_TIMEOUT)
            timed_out = 1;
        else if (rc)
            return rc;
    }
    msgpack_pack_map(out, 2);
    msgpack_pack_str_with_body(out, "sum", 3);
    msgpack_pack_int64(out, sum);
    msgpack_pack_str_with_body(out, "event", 5);
    if (timed_out)
        msgpack_pack_str_with_body(out, "timeout", 7);
    else if (ev)
        msgpack_pack_object(out, *ev);
    else
        msgpack_pack_nil(out);
    return WF_OK;
}

WF_WORKFLOW(stepper, .max_attempts = 3, .backoff_ms = 50);
