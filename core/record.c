/* record.c - the msgpack run record carried by a stream entry (field "r").
 *
 * {"v": 1, "id": "<run id>", "a": <attempt>}, packed by lua/lib_queue.lua's push_ready(). Workers
 * decode it before claiming; anything that does not decode is an entry someone wrote by hand or a
 * newer schema, and goes to the dead-letter list with the reason given here.
 */
#include <string.h>

#include <msgpack.h>

#include "wf_core.h"

static int key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

int wf__record_decode(const void *data, size_t len, char *id, int *attempt, wf_error *err)
{
    if (!data || len == 0) return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "empty run record");
    if (len > 1024) return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "run record over 1024 bytes");
    /* Anyone who can write to the stream can forge a record: walk it first, so a count the
     * bytes cannot hold (a 5-byte "array of 4 billion") never reaches msgpack-c's allocator. */
    wf_payload_limits limits = {1024, 4};
    wf_error check = {0};
    if (wf_msgpack_check(data, len, &limits, &check) != WF_OK)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "run record is not one msgpack value: %s",
                            check.message);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = WF_OK;
    if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "run record is not one msgpack value");
        goto out;
    }
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_MAP) {
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "run record is not a msgpack map");
        goto out;
    }
    /* Unsigned: a forged 2^63 or more must clamp, not wrap to a negative or a truncated int. */
    uint64_t v = 0, a = 1;
    const msgpack_object *idobj = NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        if (key_is(k, "v") && val->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            v = val->via.u64;
        else if (key_is(k, "a") && val->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            a = val->via.u64;
        else if (key_is(k, "id") && val->type == MSGPACK_OBJECT_STR)
            idobj = val;
    }
    if (v != 1) {
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "run record version is not 1");
        goto out;
    }
    if (!idobj || idobj->via.str.size == 0 || idobj->via.str.size >= WF__ID_MAX) {
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "run record has no usable id");
        goto out;
    }
    memcpy(id, idobj->via.str.ptr, idobj->via.str.size);
    id[idobj->via.str.size] = '\0';
    char wfname[WF__NAME_MAX + 1];
    wf_error e = {0};
    if (memchr(id, '\0', idobj->via.str.size) || wf__runid_parse(id, wfname, &e) != WF_OK) {
        id[0] = '\0';
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "run record id is invalid: %s", e.message);
        goto out;
    }
    if (attempt) *attempt = a > 1000000 ? 1000000 : (int)a;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}
