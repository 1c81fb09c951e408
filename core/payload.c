/* payload.c - readValidatedPayload and the msgpack well-formedness check for untrusted bytes.
 *
 * msgpack-c trusts the counts it reads: a 5-byte "array of 4 billion items" makes it allocate
 * the whole array before it notices that the bytes run out, and it has no notion of a depth limit
 * other than failing at its fixed stack size. So every untrusted buffer is first walked here on
 * the wire format alone, with no allocation, in a loop whose stack is bounded by the depth limit.
 * Only a buffer that is exactly one complete value, whose every container count fits in the bytes
 * that remain, reaches msgpack_unpack_next; its allocations are then bounded by the input size.
 */
#include <stdint.h>
#include <string.h>

#include "payload_internal.h"

/* ---- Limits -------------------------------------------------------------------------------- */

int wf__payload_limits(const wf_payload_limits *limits, size_t *max_bytes, int *max_depth,
                       wf_error *err)
{
    size_t bytes = limits ? limits->max_bytes : 0;
    int depth = limits ? limits->max_depth : 0;
    *max_bytes = WF__PAYLOAD_DEFAULT_MAX_BYTES;
    *max_depth = WF__PAYLOAD_DEFAULT_MAX_DEPTH;
    if (depth < 0)
        return wf_error_set(err, WF_ERR_INVALID,
                            "payload limit max_depth is %d; use 0 for the default or a positive "
                            "number",
                            depth);
    if (bytes) *max_bytes = bytes;
    if (depth) *max_depth = depth > WF__PAYLOAD_DEPTH_CEILING ? WF__PAYLOAD_DEPTH_CEILING : depth;
    return WF_OK;
}

/* ---- Wire-format walk ---------------------------------------------------------------------- */

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

enum kind { SCALAR, BODY, ARRAY, MAP };

/* Describes the value whose type byte is `b`: the width of its big-endian length or count field,
 * the bytes that always follow that field, and what the length means. Returns -1 for 0xc1, the
 * one byte msgpack never uses. */
static int classify(uint8_t b, size_t *lenbytes, size_t *fixed, enum kind *kind, uint64_t *n)
{
    *lenbytes = 0;
    *fixed = 0;
    *kind = SCALAR;
    *n = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return 0;
    if (b <= 0x8f) {
        *kind = MAP;
        *n = b & 0x0f;
        return 0;
    }
    if (b <= 0x9f) {
        *kind = ARRAY;
        *n = b & 0x0f;
        return 0;
    }
    if (b <= 0xbf) {
        *kind = BODY;
        *n = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xc4:
        *kind = BODY, *lenbytes = 1;
        break; /* bin 8 */
    case 0xc5:
        *kind = BODY, *lenbytes = 2;
        break;
    case 0xc6:
        *kind = BODY, *lenbytes = 4;
        break;
    case 0xc7:
        *kind = BODY, *lenbytes = 1, *fixed = 1;
        break; /* ext 8: length, type, data */
    case 0xc8:
        *kind = BODY, *lenbytes = 2, *fixed = 1;
        break;
    case 0xc9:
        *kind = BODY, *lenbytes = 4, *fixed = 1;
        break;
    case 0xca:
        *fixed = 4;
        break; /* float 32 */
    case 0xcb:
        *fixed = 8;
        break;
    case 0xcc:
        *fixed = 1;
        break; /* uint 8 .. 64 */
    case 0xcd:
        *fixed = 2;
        break;
    case 0xce:
        *fixed = 4;
        break;
    case 0xcf:
        *fixed = 8;
        break;
    case 0xd0:
        *fixed = 1;
        break; /* int 8 .. 64 */
    case 0xd1:
        *fixed = 2;
        break;
    case 0xd2:
        *fixed = 4;
        break;
    case 0xd3:
        *fixed = 8;
        break;
    case 0xd4:
        *fixed = 2;
        break; /* fixext 1 .. 16: type byte plus data */
    case 0xd5:
        *fixed = 3;
        break;
    case 0xd6:
        *fixed = 5;
        break;
    case 0xd7:
        *fixed = 9;
        break;
    case 0xd8:
        *fixed = 17;
        break;
    case 0xd9:
        *kind = BODY, *lenbytes = 1;
        break; /* str 8 */
    case 0xda:
        *kind = BODY, *lenbytes = 2;
        break;
    case 0xdb:
        *kind = BODY, *lenbytes = 4;
        break;
    case 0xdc:
        *kind = ARRAY, *lenbytes = 2;
        break;
    case 0xdd:
        *kind = ARRAY, *lenbytes = 4;
        break;
    case 0xde:
        *kind = MAP, *lenbytes = 2;
        break;
    case 0xdf:
        *kind = MAP, *lenbytes = 4;
        break;
    default:
        return -1;
    }
    return 0;
}

/* Walks `len` bytes and accepts them only if they are exactly one value nested at most
 * `max_depth` (<= the ceiling) deep. Iterative: `left` holds, per open container, how many values
 * it still expects. */
static int scan(const uint8_t *p, size_t len, int max_depth, wf_error *err)
{
    uint64_t left[WF__PAYLOAD_DEPTH_CEILING];
    int top = 0;
    size_t pos = 0;
    if (len == 0) return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "msgpack payload is empty");
    for (;;) {
        if (pos == len)
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack is truncated: input ends inside an array or map that "
                                "still expects %llu values",
                                (unsigned long long)left[top - 1]);
        size_t start = pos, lenbytes, fixed;
        enum kind kind;
        uint64_t n;
        if (classify(p[pos], &lenbytes, &fixed, &kind, &n) != 0)
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack has the invalid type byte 0x%02x at offset %zu", p[pos],
                                pos);
        size_t avail = len - pos - 1;
        if (lenbytes + fixed > avail)
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack is truncated: the value at offset %zu needs %zu more "
                                "bytes, %zu are left",
                                start, lenbytes + fixed, avail);
        if (lenbytes) n = load_be(p + pos + 1, lenbytes);
        avail -= lenbytes + fixed;
        pos += 1 + lenbytes + fixed;
        if (kind == BODY) {
            if (n > avail)
                return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                    "msgpack is truncated: the value at offset %zu claims %llu "
                                    "bytes, %zu are left",
                                    start, (unsigned long long)n, avail);
            pos += (size_t)n;
        } else if (kind == ARRAY || kind == MAP) {
            if (top >= max_depth)
                return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                    "msgpack nesting deeper than %d levels (at offset %zu); "
                                    "flatten the data",
                                    max_depth, start);
            /* Every value takes at least one byte, so a count the rest cannot hold is a lie, and
             * refusing it here is what keeps msgpack-c from allocating for it. */
            uint64_t values = kind == MAP ? n * 2 : n;
            if ((kind == MAP && n > avail / 2) || values > avail)
                return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                    "msgpack is truncated: the %s at offset %zu claims %llu "
                                    "entries, only %zu bytes are left",
                                    kind == MAP ? "map" : "array", start, (unsigned long long)n,
                                    avail);
            if (values > 0) {
                left[top++] = values;
                continue;
            }
        }
        /* A value just ended; it may be the last one of one or more enclosing containers. */
        while (top > 0 && --left[top - 1] == 0) top--;
        if (top == 0) break;
    }
    if (pos != len)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                            "msgpack has %zu bytes after the value that ends at offset %zu; send "
                            "exactly one value",
                            len - pos, pos);
    return WF_OK;
}

/* ---- Decoding ------------------------------------------------------------------------------ */

static int check_size(size_t len, size_t max_bytes, wf_error *err)
{
    if (len > max_bytes)
        return wf_error_set(err, WF_ERR_TOO_LARGE,
                            "payload is %zu bytes, over the limit of %zu (raise max_payload)", len,
                            max_bytes);
    return WF_OK;
}

int wf__msgpack_decode(const void *data, size_t len, size_t max_bytes, int max_depth,
                       msgpack_unpacked *u, wf_error *err)
{
    if (!data && len > 0) return wf_error_set(err, WF_ERR_INVALID, "payload is NULL, len > 0");
    int rc = check_size(len, max_bytes, err);
    if (rc == WF_OK) rc = scan(data, len, max_depth, err);
    if (rc != WF_OK) return rc;
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(u, data, len, &off);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory decoding a %zu-byte msgpack payload",
                            len);
    /* scan() accepted exactly what msgpack-c accepts, so this is a disagreement between the two. */
    if (r != MSGPACK_UNPACK_SUCCESS || off != len)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "msgpack-c rejected the payload (code %d)",
                            (int)r);
    return WF_OK;
}

int wf_msgpack_check(const void *data, size_t len, const wf_payload_limits *limits, wf_error *err)
{
    size_t max_bytes;
    int max_depth;
    int rc = wf__payload_limits(limits, &max_bytes, &max_depth, err);
    if (rc != WF_OK) return rc;
    if (!data && len > 0) return wf_error_set(err, WF_ERR_INVALID, "payload is NULL, len > 0");
    rc = check_size(len, max_bytes, err);
    return rc == WF_OK ? scan(data, len, max_depth, err) : rc;
}

/* ---- readValidatedPayload ------------------------------------------------------------------ */

static int looks_like_json(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
    /* All blank: as msgpack those bytes would be small integers, which no one means by an empty
     * body; as JSON they are a clear syntax error. */
    if (i == len) return 1;
    return p[i] != '\0' && strchr("{[\"tfn-0123456789", p[i]) != NULL;
}

/* Runs `validator` on `obj`, keeping its code and message, and makes sure it packed one value. */
static int run_validator(const msgpack_object *obj, wf_validator_fn validator, void *userdata,
                         msgpack_sbuffer *out, wf_error *err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t before = out->size;
    if (!validator) {
        if (msgpack_pack_object(&pk, *obj) != 0)
            return wf_error_set(err, WF_ERR_NOMEM, "out of memory packing the payload");
        return WF_OK;
    }
    wf_error verr = {0};
    int rc = validator(obj, &pk, userdata, &verr);
    if (rc != WF_OK) {
        if (verr.message[0] == '\0') return wf_error_set(err, rc, "%s", wf_strerror(rc));
        return wf_error_set(err, rc, "%s", verr.message);
    }
    /* The kept value is stored and decoded later as one value; a validator that packed nothing
     * or two values is a bug better reported here than by the worker. */
    wf_error serr = {0};
    if (out->size == before || scan((const uint8_t *)out->data + before, out->size - before,
                                    WF__PAYLOAD_DEPTH_CEILING, &serr) != WF_OK)
        return wf_error_set(err, WF_ERR_INVALID,
                            "the validator returned WF_OK but did not pack exactly one value "
                            "into out: %s",
                            out->size == before ? "it packed nothing" : serr.message);
    return WF_OK;
}

int wf_read_validated_payload(const void *data, size_t len, wf_payload_format format,
                              const wf_payload_limits *limits, wf_validator_fn validator,
                              void *userdata, msgpack_sbuffer *out, wf_error *err)
{
    size_t max_bytes;
    int max_depth;
    int rc = wf__payload_limits(limits, &max_bytes, &max_depth, err);
    if (rc != WF_OK) return rc;
    if (!out) return wf_error_set(err, WF_ERR_INVALID, "out is NULL; pass an initialised sbuffer");
    if (format != WF_PAYLOAD_AUTO && format != WF_PAYLOAD_MSGPACK && format != WF_PAYLOAD_JSON)
        return wf_error_set(err, WF_ERR_INVALID, "unknown payload format %d", (int)format);

    if (!data || len == 0) {
        msgpack_object nil;
        memset(&nil, 0, sizeof nil);
        nil.type = MSGPACK_OBJECT_NIL;
        return run_validator(&nil, validator, userdata, out, err);
    }

    if (format == WF_PAYLOAD_AUTO)
        format = looks_like_json(data, len) ? WF_PAYLOAD_JSON : WF_PAYLOAD_MSGPACK;

    msgpack_sbuffer converted;
    msgpack_sbuffer_init(&converted);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (format == WF_PAYLOAD_JSON) {
        rc = wf_json_to_msgpack(data, len, limits, &converted, err);
        /* The JSON text was already held to the limits; its msgpack form may be larger (a short
         * number becomes a 9-byte double) without being any more hostile. */
        if (rc == WF_OK)
            rc = wf__msgpack_decode(converted.data, converted.size, SIZE_MAX, max_depth, &u, err);
    } else {
        rc = wf__msgpack_decode(data, len, max_bytes, max_depth, &u, err);
    }
    if (rc == WF_OK) rc = run_validator(&u.data, validator, userdata, out, err);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&converted);
    return rc;
}
