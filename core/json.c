/* json.c - JSON <-> msgpack for the services and the command line, through jansson.
 *
 * Runs carry msgpack; people and HTTP bodies speak JSON. JSON coming in is untrusted, so it is held
 * to the size limit before jansson sees it and to the depth limit by a cheap bracket count before
 * jansson builds a tree (jansson's own limit is 2048 levels, far more than a run can carry).
 * Converting back is for display and HTTP answers: values JSON cannot express (binary, ext, NaN,
 * non-string keys, unsigned integers above INT64_MAX) are either given a JSON form the header
 * documents or refused with a message, never silently changed.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "payload_internal.h"

/* ---- JSON -> msgpack ----------------------------------------------------------------------- */

/* Bracket depth outside strings equals nesting depth for any JSON jansson would accept, and
 * counting it costs no allocation; malformed text is left for jansson to describe. */
static int json_depth_check(const char *s, size_t len, int max_depth, wf_error *err)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                    "JSON nesting deeper than %d levels (at byte %zu); flatten the "
                                    "data",
                                    max_depth, i);
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return WF_OK;
}

static int pack_json(json_t *j, int depth, int max_depth, msgpack_packer *pk, wf_error *err)
{
    int r = 0;
    if ((json_is_object(j) || json_is_array(j)) && depth >= max_depth)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "JSON nesting deeper than %d levels",
                            max_depth);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        json_t *v;
        r = msgpack_pack_map(pk, json_object_size(j));
        json_object_keylen_foreach(j, key, klen, v)
        {
            if (r == 0) r = msgpack_pack_str(pk, klen);
            if (r == 0) r = msgpack_pack_str_body(pk, key, klen);
            if (r != 0) break;
            int rc = pack_json(v, depth + 1, max_depth, pk, err);
            if (rc != WF_OK) return rc;
        }
        break;
    }
    case JSON_ARRAY:
        r = msgpack_pack_array(pk, json_array_size(j));
        for (size_t i = 0; r == 0 && i < json_array_size(j); i++) {
            int rc = pack_json(json_array_get(j, i), depth + 1, max_depth, pk, err);
            if (rc != WF_OK) return rc;
        }
        break;
    case JSON_STRING:
        r = msgpack_pack_str(pk, json_string_length(j));
        if (r == 0) r = msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        r = msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        r = msgpack_pack_double(pk, json_real_value(j));
        break;
    case JSON_TRUE:
        r = msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        r = msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        r = msgpack_pack_nil(pk);
        break;
    }
    if (r != 0) return wf_error_set(err, WF_ERR_NOMEM, "out of memory converting JSON to msgpack");
    return WF_OK;
}

int wf_json_to_msgpack(const char *json, size_t len, const wf_payload_limits *limits,
                       msgpack_sbuffer *out, wf_error *err)
{
    size_t max_bytes;
    int max_depth;
    int rc = wf__payload_limits(limits, &max_bytes, &max_depth, err);
    if (rc != WF_OK) return rc;
    if (!out) return wf_error_set(err, WF_ERR_INVALID, "out is NULL; pass an initialised sbuffer");
    if (!json && len > 0) return wf_error_set(err, WF_ERR_INVALID, "json is NULL, len > 0");
    if (len > max_bytes)
        return wf_error_set(err, WF_ERR_TOO_LARGE,
                            "payload is %zu bytes, over the limit of %zu (raise max_payload)", len,
                            max_bytes);
    rc = json_depth_check(json, len, max_depth, err);
    if (rc != WF_OK) return rc;

    /* JSON_ALLOW_NUL: "\u0000" is valid JSON and msgpack strings carry lengths, so keep it. */
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", len,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "JSON syntax error at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    rc = pack_json(root, 0, max_depth, &pk, err);
    json_decref(root);
    return rc;
}

/* ---- msgpack -> JSON ----------------------------------------------------------------------- */

/* jansson's own check is not exported, and without one a NULL from json_stringn could mean either
 * bad bytes or no memory; strict: no overlong forms, surrogates or code points past U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i - 1 < n) return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += n + 1;
    }
    return 1;
}

static json_t *base64_string(const char *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)data;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    size_t n = (len + 2) / 3 * 4, o = 0;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        s[o++] = abc[(v >> 18) & 63];
        s[o++] = abc[(v >> 12) & 63];
        s[o++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        s[o++] = i + 2 < len ? abc[v & 63] : '=';
    }
    json_t *j = json_stringn_nocheck(s, n);
    free(s);
    return j;
}

static void jansson_free(void *p)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    f(p);
}

#define DUMP_FLAGS   (JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER)
#define KEY_TEXT_MAX 1024 /* longest JSON text a non-string map key may turn into */

static int to_json(const msgpack_object *o, int depth, json_t **out, wf_error *err);

/* Adds one map entry. String keys are used as they are; any other key becomes its JSON text, so
 * {1: "a"} reads {"1":"a"}. Two keys that end up equal would silently lose a value, so refused. */
static int add_entry(json_t *obj, const msgpack_object_kv *kv, int depth, wf_error *err)
{
    const char *key;
    size_t klen;
    char *text = NULL;
    json_t *kj = NULL, *v = NULL;
    int rc = WF_OK;
    if (kv->key.type == MSGPACK_OBJECT_STR) {
        /* msgpack-c leaves ptr NULL for an empty string; jansson wants a real pointer. */
        key = kv->key.via.str.ptr ? kv->key.via.str.ptr : "";
        klen = kv->key.via.str.size;
        if (!utf8_valid((const unsigned char *)key, klen))
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack map key is not valid UTF-8; JSON keys must be text");
    } else {
        rc = to_json(&kv->key, depth + 1, &kj, err);
        if (rc != WF_OK) return rc;
        text = json_dumps(kj, DUMP_FLAGS);
        json_decref(kj);
        if (!text) return wf_error_set(err, WF_ERR_NOMEM, "out of memory converting a map key");
        key = text;
        klen = strlen(text);
        /* Each level of containers-as-keys escapes the quotes of the level below, doubling the
         * text: 80 bytes of msgpack nested 30 deep would become gigabytes. Bounded here, per
         * level, so the work stays linear. */
        if (klen > KEY_TEXT_MAX) {
            jansson_free(text);
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack map key converts to %zu bytes of JSON text, over %d; "
                                "use string keys",
                                klen, KEY_TEXT_MAX);
        }
    }
    if (json_object_getn(obj, key, klen)) {
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                          "msgpack map has the key \"%.*s\" twice (as JSON text); JSON objects "
                          "need unique keys",
                          (int)(klen > 40 ? 40 : klen), key);
    } else if ((rc = to_json(&kv->val, depth + 1, &v, err)) == WF_OK) {
        if (json_object_setn_new_nocheck(obj, key, klen, v) != 0)
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory converting msgpack to JSON");
    }
    if (text) jansson_free(text);
    return rc;
}

/* Recursion is bounded by the ceiling: decoded objects cannot be deeper, and an object built by
 * hand (or by mistake, with a cycle) is refused at the same depth. */
static int to_json(const msgpack_object *o, int depth, json_t **out, wf_error *err)
{
    json_t *j = NULL;
    *out = NULL;
    if ((o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP) &&
        depth >= WF__PAYLOAD_DEPTH_CEILING)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "msgpack nesting deeper than %d levels",
                            WF__PAYLOAD_DEPTH_CEILING);
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        j = json_null();
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        j = json_boolean(o->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack integer %llu is beyond JSON's signed 64-bit range",
                                (unsigned long long)o->via.u64);
        j = json_integer((json_int_t)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        j = json_integer((json_int_t)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64))
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack float %g has no JSON form (NaN and infinity)", o->via.f64);
        j = json_real(o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        if (!utf8_valid((const unsigned char *)o->via.str.ptr, o->via.str.size))
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "msgpack string is not valid UTF-8; send bytes as bin instead");
        j = json_stringn_nocheck(o->via.str.ptr ? o->via.str.ptr : "", o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        j = base64_string(o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        j = base64_string(o->via.ext.ptr, o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        j = json_array();
        for (uint32_t i = 0; j && i < o->via.array.size; i++) {
            json_t *v;
            int rc = to_json(&o->via.array.ptr[i], depth + 1, &v, err);
            if (rc == WF_OK && json_array_append_new(j, v) != 0)
                rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory converting msgpack to JSON");
            if (rc != WF_OK) {
                json_decref(j);
                return rc;
            }
        }
        break;
    case MSGPACK_OBJECT_MAP:
        j = json_object();
        for (uint32_t i = 0; j && i < o->via.map.size; i++) {
            int rc = add_entry(j, &o->via.map.ptr[i], depth, err);
            if (rc != WF_OK) {
                json_decref(j);
                return rc;
            }
        }
        break;
    default:
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "msgpack object has unknown type %d",
                            (int)o->type);
    }
    if (!j) return wf_error_set(err, WF_ERR_NOMEM, "out of memory converting msgpack to JSON");
    *out = j;
    return WF_OK;
}

int wf_object_to_json(const msgpack_object *obj, char **json, wf_error *err)
{
    if (!json) return wf_error_set(err, WF_ERR_INVALID, "json is NULL");
    *json = NULL;
    if (!obj) return wf_error_set(err, WF_ERR_INVALID, "obj is NULL");
    json_t *j;
    int rc = to_json(obj, 0, &j, err);
    if (rc != WF_OK) return rc;
    char *s = json_dumps(j, DUMP_FLAGS);
    json_decref(j);
    if (!s) return wf_error_set(err, WF_ERR_NOMEM, "out of memory writing JSON");
    /* json_dumps allocates with jansson's allocator: malloc unless the application installed its
     * own with json_set_alloc_funcs(). Copy in that case so "caller frees with free()" holds. */
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    if (f != free) {
        char *copy = strdup(s);
        f(s);
        if (!copy) return wf_error_set(err, WF_ERR_NOMEM, "out of memory writing JSON");
        s = copy;
    }
    *json = s;
    return WF_OK;
}

int wf_msgpack_to_json(const void *data, size_t len, char **json, wf_error *err)
{
    if (!json) return wf_error_set(err, WF_ERR_INVALID, "json is NULL");
    *json = NULL;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    /* The bytes come from Redis, already checked on the way in: no size limit, only structure. */
    int rc = wf__msgpack_decode(data, len, SIZE_MAX, WF__PAYLOAD_DEPTH_CEILING, &u, err);
    if (rc == WF_OK) rc = wf_object_to_json(&u.data, json, err);
    msgpack_unpacked_destroy(&u);
    return rc;
}
