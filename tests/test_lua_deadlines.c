/* test_lua_deadlines.c - deadlines decided by Redis time inside the scripts, at their boundary:
 * event_wait.lua (which logged events count, when the wait has timed out), event_send.lua (no
 * late event handed to a wait), deliver.lua (a late event or child end refused), suspend.lua (a
 * deadline that already came answers DUE). Each drives the scripts on their own against a real
 * redis-server; "after the deadline" is a deadline at or before Redis TIME, or TIME polled until
 * it passes. Shared set-up and helpers: lua_env.h. */
#include <stdio.h>

#include "lua_env.h"

#define EVENT "ev1"

/* eval_argv, asserting the script did not fail. */
static redisReply *eval_raw(wf__script script, int fixed, int nkeys, const char *const *keys,
                            int nargs, const char *const *args, const size_t *lens)
{
    redisReply *r = eval_argv(script, fixed, nkeys, keys, nargs, args, lens);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "script error: %s", r->str);
    return r;
}

static const char *ev_key(const char *what)
{
    return keep(wf__key_event(PREFIX, EVENT, what));
}

/* event_wait.lua in mode "wait" for `member` (any key, look-back from 0) with `deadline`. */
static redisReply *ev_wait(const char *member, long long deadline)
{
    const char *keys[3] = {ev_key("log"), ev_key("waiters"), ev_key("deadlines")};
    char dl[24];
    snprintf(dl, sizeof dl, "%lld", deadline);
    const char *args[5] = {member, "", "0", "wait", dl};
    return eval_raw(WF__SCRIPT_EVENT_WAIT, 0, 3, keys, 5, args, NULL);
}

/* event_send.lua with payload `p`; returns the reply (entry id, then waiters). */
static redisReply *ev_send(const char *p)
{
    const char *keys[3] = {ev_key("log"), ev_key("waiters"), ev_key("deadlines")};
    const char *args[3] = {"", p, "10000"};
    return eval_raw(WF__SCRIPT_EVENT_SEND, 0, 3, keys, 3, args, NULL);
}

static long long entry_ms(const char *entry)
{
    return atoll(entry);
}

typedef struct after_arg {
    long long t;
} after_arg;

static int redis_time_reached(void *arg)
{
    return rnow() >= ((after_arg *)arg)->t;
}

/* Polls Redis TIME until it is at least `t`. */
static void wait_redis_time(long long t)
{
    after_arg a = {t};
    cr_assert(wf_test_wait(redis_time_reached, &a, 5000), "Redis time never reached %lld", t);
}

static int is_timeout(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
           r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "TIMEOUT") == 0;
}

/* ---- event_wait.lua ------------------------------------------------------------------------- */

Test(lua, event_wait_takes_only_events_logged_before_the_deadline)
{
    redisReply *s = ev_send("\x01");
    long long t = entry_ms(s->element[0]->str);
    freeReplyObject(s);
    wait_redis_time(t + 1);
    /* Logged at the deadline's millisecond: late. */
    redisReply *r = ev_wait("lt:a w", t);
    cr_assert(is_timeout(r), "an event logged at the deadline satisfied the wait (%zu elements)",
              r->elements);
    freeReplyObject(r);
    /* Logged the millisecond before: in time, even though Redis time is past the deadline now. */
    r = ev_wait("lt:b w", t + 1);
    cr_assert_eq(r->elements, 2, "the event before the deadline was not found");
    cr_assert_str_eq(r->element[1]->str, "\x01");
    freeReplyObject(r);
}

Test(lua, event_wait_times_out_when_redis_time_reaches_the_deadline)
{
    long long d = rnow() + 40;
    redisReply *r = ev_wait("lt:c w", d);
    cr_assert_eq(r->elements, 0, "waits before the deadline");
    freeReplyObject(r);
    cr_assert_eq(wf_test_cmd_int(c, "HEXISTS %s %s", ev_key("waiters"), "lt:c w"), 1);
    cr_assert_eq(wf_test_cmd_int(c, "HEXISTS %s %s", ev_key("deadlines"), "lt:c w"), 1);
    wait_redis_time(d);
    r = ev_wait("lt:c w", d);
    cr_assert(is_timeout(r), "no timeout once Redis time reached the deadline");
    freeReplyObject(r);
    cr_assert_eq(wf_test_cmd_int(c, "HEXISTS %s %s", ev_key("waiters"), "lt:c w"), 0);
    cr_assert_eq(wf_test_cmd_int(c, "HEXISTS %s %s", ev_key("deadlines"), "lt:c w"), 0);
}

/* ---- event_send.lua ------------------------------------------------------------------------- */

Test(lua, event_send_hands_no_late_event_to_a_wait_whose_deadline_passed)
{
    long long d = rnow() + 30;
    freeReplyObject(ev_wait("lt:late w", d));
    freeReplyObject(ev_wait("lt:open w", 0)); /* no deadline */
    freeReplyObject(ev_wait("lt:later w", d + 60000));
    wait_redis_time(d);
    redisReply *r = ev_send("\x02");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    int late = 0, open = 0, later = 0;
    for (size_t i = 1; i < r->elements; i++) {
        late += strcmp(r->element[i]->str, "lt:late w") == 0;
        open += strcmp(r->element[i]->str, "lt:open w") == 0;
        later += strcmp(r->element[i]->str, "lt:later w") == 0;
    }
    freeReplyObject(r);
    cr_assert_eq(late, 0, "the event after the deadline was handed to the timed-out wait");
    cr_assert_eq(open, 1);
    cr_assert_eq(later, 1);
}

/* ---- deliver.lua ---------------------------------------------------------------------------- */

/* A run that waits (suspend.lua) on step "w" with deadline `until`; returns the token it had. */
static void waiting_run(const char *id, long long until)
{
    const char *token = enqueue_and_claim(id, "30000");
    wf__steprec w = {0};
    snprintf(w.kind, sizeof w.kind, "event");
    snprintf(w.status, sizeof w.status, "waiting");
    snprintf(w.event, sizeof w.event, EVENT);
    w.t0 = rnow();
    w.until = until;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf__steprec_encode(&w, &sb);
    char wake[24];
    snprintf(wake, sizeof wake, "%lld", until);
    const char *keys[2] = {run_key(id), steps_key(id)};
    const char *args[6] = {id, token, "w", sb.data, wake, "event " EVENT};
    size_t lens[6] = {strlen(id), strlen(token), 1, sb.size, strlen(wake), strlen(args[5])};
    redisReply *r = eval_raw(WF__SCRIPT_SUSPEND, 1, 2, keys, 6, args, lens);
    cr_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
    msgpack_sbuffer_destroy(&sb);
    assert_state(id, "waiting");
}

/* deliver.lua of a `done` record to step "w" of `id`, the event at `at` ("": not given). */
static long long deliver(const char *id, const char *at)
{
    wf__steprec d = {0};
    snprintf(d.kind, sizeof d.kind, "event");
    snprintf(d.status, sizeof d.status, "done");
    d.result = "\x07";
    d.result_len = 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf__steprec_encode(&d, &sb);
    const char *keys[2] = {run_key(id), steps_key(id)};
    const char *args[4] = {id, "w", sb.data, at};
    size_t lens[4] = {strlen(id), 1, sb.size, strlen(at)};
    redisReply *r = eval_raw(WF__SCRIPT_DELIVER, 1, 2, keys, *at ? 4 : 3, args, lens);
    msgpack_sbuffer_destroy(&sb);
    return expect_int(r);
}

static const char *step_status_of(const char *id)
{
    redisReply *r = wf_test_command(c, "HGET %s w", steps_key(id));
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    wf__steprec rec;
    cr_assert_eq(wf__steprec_decode(r->str, r->len, &rec, NULL), WF_OK);
    freeReplyObject(r);
    return keep(strdup(rec.status));
}

Test(lua, deliver_refuses_an_event_at_or_after_the_deadline)
{
    const char *id = run_id("dl");
    long long until = rnow() + 600000;
    waiting_run(id, until);
    char at[24];
    snprintf(at, sizeof at, "%lld", until);
    cr_assert_eq(deliver(id, at), 0, "an event at the deadline was delivered");
    cr_assert_str_eq(step_status_of(id), "waiting");
    assert_state(id, "waiting");
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], id), until, "the timer that times it out stays");
    /* The millisecond before is in time. */
    snprintf(at, sizeof at, "%lld", until - 1);
    cr_assert_eq(deliver(id, at), 1);
    cr_assert_str_eq(step_status_of(id), "done");
    assert_state(id, "queued");
}

Test(lua, deliver_without_an_event_time_goes_by_redis_time)
{
    const char *id = run_id("dn");
    long long until = rnow() + 30;
    waiting_run(id, until);
    wait_redis_time(until);
    cr_assert_eq(deliver(id, ""), 0, "delivered after Redis time passed the deadline");
    cr_assert_str_eq(step_status_of(id), "waiting");
    assert_state(id, "waiting");
}

/* ---- suspend.lua ---------------------------------------------------------------------------- */

static redisReply *suspend_due(const char *id, const char *token, long long wake, int with_done)
{
    wf__steprec w = {0}, d;
    snprintf(w.kind, sizeof w.kind, "sleep");
    snprintf(w.status, sizeof w.status, "waiting");
    w.until = wake;
    d = w;
    snprintf(d.status, sizeof d.status, "done");
    msgpack_sbuffer sw, sd;
    msgpack_sbuffer_init(&sw);
    msgpack_sbuffer_init(&sd);
    wf__steprec_encode(&w, &sw);
    wf__steprec_encode(&d, &sd);
    char ws[24];
    snprintf(ws, sizeof ws, "%lld", wake);
    const char *keys[2] = {run_key(id), steps_key(id)};
    const char *args[8] = {id, token, "w", sw.data, ws, "sleep", "1", sd.data};
    size_t lens[8] = {strlen(id), strlen(token), 1, sw.size, strlen(ws), 5, 1, sd.size};
    redisReply *r = eval_raw(WF__SCRIPT_SUSPEND, 1, 2, keys, with_done ? 8 : 7, args, lens);
    msgpack_sbuffer_destroy(&sw);
    msgpack_sbuffer_destroy(&sd);
    return r;
}

Test(lua, suspend_answers_due_when_redis_time_reached_the_deadline)
{
    const char *id = run_id("sd");
    const char *token = enqueue_and_claim(id, "30000");
    long long now = rnow();
    /* Due by Redis time (the caller's estimate is not asked): the run does not wait. */
    redisReply *r = suspend_due(id, token, now, 1);
    cr_assert_str_eq(r->str, "DUE");
    freeReplyObject(r);
    assert_state(id, "running");
    cr_assert_eq(zscore(wk.k[WF__K_DELAYED], id), -1);
    cr_assert_geq(zscore(wk.k[WF__K_LEASES], id), 0, "the lease is kept");
    cr_assert_str_eq(step_status_of(id), "done", "the record to store when due was stored");
    cr_assert_str_eq(hget(id, "step"), "w");
    /* Not due yet: it waits, as without the flag. */
    const char *id2 = run_id("sd2");
    const char *token2 = enqueue_and_claim(id2, "30000");
    r = suspend_due(id2, token2, rnow() + 60000, 1);
    cr_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
    assert_state(id2, "waiting");
}
