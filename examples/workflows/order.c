/* order.c - the workflow `order`: every durable primitive in one realistic flow.
 *
 *   reserve stock  -> a step: runs once, its result is recorded
 *   charge card    -> a step with its own retry policy (the payment service is flaky)
 *   wait "shipped" -> an event wait keyed on the order id, with a timeout: on timeout the order is
 *                     refunded instead of notified
 *   sleep          -> a durable sleep (the run holds no worker slot meanwhile)
 *   notify         -> a step
 *
 * Input: {"order": "A-1001", "amount": 4200, "ship_timeout_ms": 60000, "settle_ms": 2000}
 * Try it: wf run order '{"order":"A-1001","amount":4200}' ; wf send-event shipped --key A-1001
 * Output: {"order": ..., "reservation": ..., "charge": ..., "shipped": true|false, "tracking": ...}
 *
 * Replay rules this file follows: everything outside a step is deterministic (it only reads the
 * input and earlier step results), and every step name is fixed.
 */
#include <stdio.h>
#include <string.h>

#include <wf/wf.h>

typedef struct order {
    char id[64];
    int64_t amount;
    int64_t ship_timeout_ms;
    int64_t settle_ms;
} order;

static int key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static int read_order(wf_ctx *ctx, const msgpack_object *in, order *o)
{
    memset(o, 0, sizeof *o);
    o->ship_timeout_ms = 60000;
    o->settle_ms = 2000;
    if (in->type != MSGPACK_OBJECT_MAP)
        return wf_ctx_fail(ctx, WF_ERR_FATAL, "input must be an object with an \"order\" id");
    for (uint32_t i = 0; i < in->via.map.size; i++) {
        const msgpack_object *k = &in->via.map.ptr[i].key, *v = &in->via.map.ptr[i].val;
        if (key_is(k, "order") && v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0 &&
            v->via.str.size < sizeof o->id)
            memcpy(o->id, v->via.str.ptr, v->via.str.size);
        else if (key_is(k, "amount") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            o->amount = (int64_t)v->via.u64;
        else if (key_is(k, "ship_timeout_ms") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            o->ship_timeout_ms = (int64_t)v->via.u64;
        else if (key_is(k, "settle_ms") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            o->settle_ms = (int64_t)v->via.u64;
    }
    if (!o->id[0]) return wf_ctx_fail(ctx, WF_ERR_FATAL, "input needs an \"order\" id string");
    return WF_OK;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* The side effects. In a real service these call other systems; here they build their answers. */
static int reserve(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    const order *o = arg;
    char r[96];
    snprintf(r, sizeof r, "rsv-%s", o->id);
    pack_str(out, r);
    return WF_OK;
}

static int charge(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    const order *o = arg;
    /* The payment provider refuses the first attempt for odd amounts: the step's retry policy
     * handles it durably (the run waits, then tries again). */
    if (wf_step_attempt(ctx) == 1 && o->amount % 2 == 1) {
        wf_ctx_retry_after(ctx, 200);
        return wf_ctx_fail(ctx, WF_ERR_HANDLER, "payment provider busy");
    }
    char c[96];
    snprintf(c, sizeof c, "ch-%s-%lld", o->id, (long long)o->amount);
    pack_str(out, c);
    return WF_OK;
}

static int notify(wf_ctx *ctx, void *arg, msgpack_packer *out)
{
    const char *what = arg;
    pack_str(out, what);
    return WF_OK;
}

static int order_flow(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *out)
{
    order o;
    int rc = read_order(ctx, input, &o);
    if (rc) return rc;

    const msgpack_object *reservation, *charged, *shipment, *note;
    if ((rc = wf_step_run(ctx, "reserve", reserve, &o, &reservation))) return rc;
    wf_step_options pay = {.max_attempts = 5, .base_delay_ms = 200, .max_delay_ms = 5000};
    if ((rc = wf_step_run_ex(ctx, "charge", charge, &o, &pay, &charged))) return rc;

    rc = wf_step_wait_for_event(ctx, "shipped", "shipped", o.id, o.ship_timeout_ms, &shipment);
    int shipped = rc == WF_OK;
    if (rc && rc != WF_ERR_TIMEOUT) return rc;

    if ((rc = wf_step_sleep(ctx, "settle", o.settle_ms))) return rc;
    if ((rc = wf_step_run(ctx, "notify", notify, shipped ? "shipped" : "refunded", &note)))
        return rc;

    msgpack_pack_map(out, 5);
    pack_str(out, "order");
    pack_str(out, o.id);
    pack_str(out, "reservation");
    msgpack_pack_object(out, *reservation);
    pack_str(out, "charge");
    msgpack_pack_object(out, *charged);
    pack_str(out, "shipped");
    if (shipped)
        msgpack_pack_true(out);
    else
        msgpack_pack_false(out);
    pack_str(out, "tracking");
    msgpack_pack_object(out, shipped ? *shipment : *note);
    return WF_OK;
}

WF_WORKFLOW(order_flow, .timeout_ms = 60000, .max_attempts = 3);
