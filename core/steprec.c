/* steprec.c - the msgpack record kept per step in a run's steps hash.
 *
 * Written by the worker's step engine (step.lua, suspend.lua) and by event delivery
 * (deliver.lua, from wf_send_event), read back on replay and by `wf status`. Lua only ever looks
 * at the status field `s`, so the rest can grow without touching the scripts.
 */
#include <stdint.h>
#include <string.h>

#include "wf_core.h"

int wf__step_name_valid(const char *name)
{
    if (!name || !*name) return 0;
    size_t i = 0;
    for (; name[i]; i++)
        if (i >= 128 || (unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f) return 0;
    return 1;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int wf__steprec_encode(const wf__steprec *rec, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int n = 5 + (rec->result ? 1 : 0) + (rec->error && *rec->error ? 1 : 0) + (rec->until ? 1 : 0) +
            (rec->event[0] ? 1 : 0) + (rec->key[0] ? 1 : 0) + (rec->since[0] ? 1 : 0) +
            (rec->child[0] ? 1 : 0) + (rec->cstate[0] ? 1 : 0) + (rec->keep ? 1 : 0);
    msgpack_pack_map(&pk, (size_t)n);
    pack_str(&pk, "k");
    pack_str(&pk, rec->kind);
    pack_str(&pk, "s");
    pack_str(&pk, rec->status);
    pack_str(&pk, "n");
    msgpack_pack_int(&pk, rec->attempts);
    pack_str(&pk, "t0");
    msgpack_pack_int64(&pk, rec->t0);
    pack_str(&pk, "t1");
    msgpack_pack_int64(&pk, rec->t1);
    if (rec->result) {
        pack_str(&pk, "r");
        msgpack_pack_bin(&pk, rec->result_len);
        msgpack_pack_bin_body(&pk, rec->result, rec->result_len);
    }
    if (rec->error && *rec->error) {
        pack_str(&pk, "e");
        pack_str(&pk, rec->error);
    }
    if (rec->until) {
        pack_str(&pk, "u");
        msgpack_pack_int64(&pk, rec->until);
    }
    if (rec->event[0]) {
        pack_str(&pk, "ev");
        pack_str(&pk, rec->event);
    }
    if (rec->key[0]) {
        pack_str(&pk, "key");
        pack_str(&pk, rec->key);
    }
    if (rec->since[0]) {
        pack_str(&pk, "since");
        pack_str(&pk, rec->since);
    }
    if (rec->child[0]) {
        pack_str(&pk, "c");
        pack_str(&pk, rec->child);
    }
    if (rec->cstate[0]) {
        pack_str(&pk, "cs");
        pack_str(&pk, rec->cstate);
    }
    if (rec->keep) {
        pack_str(&pk, "keep");
        msgpack_pack_true(&pk);
    }
    return WF_OK;
}

static int is_key(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

static void copy_str(char *dst, size_t cap, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_STR) return;
    size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
    memcpy(dst, v->via.str.ptr, n);
    dst[n] = '\0';
}

static int64_t as_i64(const msgpack_object *v)
{
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (int64_t)v->via.u64;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return v->via.i64;
    return 0;
}

int wf__steprec_decode(const void *data, size_t len, wf__steprec *rec, wf_error *err)
{
    memset(rec, 0, sizeof *rec);
    /* Records come back from Redis, where anything may have written them: walk the bytes first
     * so msgpack-c never allocates for counts the input cannot hold. */
    wf_payload_limits limits = {SIZE_MAX, 0};
    wf_error check = {0};
    if (wf_msgpack_check(data, len, &limits, &check) != WF_OK)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "step record is not one msgpack value: %s",
                            check.message);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 512);
    msgpack_object o;
    size_t off = 0;
    int rc = WF_OK;
    if (msgpack_unpack(data, len, &off, &zone, &o) != MSGPACK_UNPACK_SUCCESS ||
        o.type != MSGPACK_OBJECT_MAP) {
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "step record is not a msgpack map");
        goto out;
    }
    for (uint32_t i = 0; i < o.via.map.size; i++) {
        const msgpack_object *k = &o.via.map.ptr[i].key, *v = &o.via.map.ptr[i].val;
        if (is_key(k, "k"))
            copy_str(rec->kind, sizeof rec->kind, v);
        else if (is_key(k, "s"))
            copy_str(rec->status, sizeof rec->status, v);
        else if (is_key(k, "n"))
            rec->attempts = (int)as_i64(v);
        else if (is_key(k, "t0"))
            rec->t0 = as_i64(v);
        else if (is_key(k, "t1"))
            rec->t1 = as_i64(v);
        else if (is_key(k, "u"))
            rec->until = as_i64(v);
        else if (is_key(k, "e")) {
            copy_str(rec->err_buf, sizeof rec->err_buf, v);
            rec->error = rec->err_buf;
        } else if (is_key(k, "ev"))
            copy_str(rec->event, sizeof rec->event, v);
        else if (is_key(k, "key"))
            copy_str(rec->key, sizeof rec->key, v);
        else if (is_key(k, "since"))
            copy_str(rec->since, sizeof rec->since, v);
        else if (is_key(k, "c"))
            copy_str(rec->child, sizeof rec->child, v);
        else if (is_key(k, "cs"))
            copy_str(rec->cstate, sizeof rec->cstate, v);
        else if (is_key(k, "keep"))
            rec->keep = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
        else if (is_key(k, "r") && (v->type == MSGPACK_OBJECT_BIN)) {
            /* The zone-decoded bin points into `data` (msgpack-c references the input for
             * bin/str when unpacking without copying), so it stays valid with `data`. */
            const char *p = v->via.bin.ptr;
            if (p >= (const char *)data && p + v->via.bin.size <= (const char *)data + len) {
                rec->result = p;
                rec->result_len = v->via.bin.size;
            }
        }
    }
    if (!rec->kind[0] || !rec->status[0])
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "step record lacks kind or status");
out:
    msgpack_zone_destroy(&zone);
    return rc;
}
