/* test_payload.c - untrusted payloads: the msgpack check, size and depth limits against hostile
 * input, and readValidatedPayload with validators that reject and that transform (the
 * publish-draft example). JSON conversion itself is in test_payload_json.c. No Redis needed. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "wf/payload.h"

#define HAS(msg, needle) cr_assert(strstr((msg), (needle)) != NULL, "message: %s", (msg))

/* ---- helpers ------------------------------------------------------------------------------- */

static char *nested(const char *open, const char *mid, const char *close, int n)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    char *s = malloc(n * (lo + lc) + lm + 1), *p = s;
    for (int i = 0; i < n; i++) p = memcpy(p, open, lo), p += lo;
    p = memcpy(p, mid, lm), p += lm;
    for (int i = 0; i < n; i++) p = memcpy(p, close, lc), p += lc;
    *p = '\0';
    return s;
}

/* n nested one-element msgpack arrays around a nil. */
static unsigned char *nested_mp(int n, size_t *len)
{
    unsigned char *b = malloc(n + 1);
    memset(b, 0x91, n);
    b[n] = 0xc0;
    *len = n + 1;
    return b;
}

/* ---- The msgpack check --------------------------------------------------------------------- */

static void assert_bad_mp(const void *data, size_t len, const char *needle)
{
    wf_error err = {0};
    int rc = wf_msgpack_check(data, len, NULL, &err);
    cr_assert_eq(rc, WF_ERR_BAD_PAYLOAD, "check gave %d (%s)", rc, err.message);
    HAS(err.message, needle);
    char *json = (char *)"untouched";
    cr_assert_eq(wf_msgpack_to_json(data, len, &json, &err), WF_ERR_BAD_PAYLOAD);
    cr_assert_null(json, "*json is NULL on error");
}

Test(msgpack, accepts_one_value)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    wf_test_packer(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, UINT32_MAX + 1ULL);
    msgpack_pack_float(&pk, 0.5f);
    msgpack_pack_v4raw(&pk, 2);
    msgpack_pack_v4raw_body(&pk, "hi", 2);
    msgpack_pack_int8(&pk, -100);
    msgpack_pack_ext_with_body(&pk, "\x01\x02\x03\x04", 4, 7);
    wf_error err = {0};
    cr_assert_eq(wf_msgpack_check(sb.data, sb.size, NULL, &err), WF_OK, "%s", err.message);
    wf_test_assert_json_is(sb.data, sb.size,
                           "{\"a\":[4294967296,0.5,\"hi\"],\"-100\":\"AQIDBA==\"}");
    msgpack_sbuffer_destroy(&sb);
}

Test(msgpack, trailing_garbage_rejected)
{
    assert_bad_mp("\x81\xa1"
                  "a\x01xyz",
                  7, "3 bytes after the value");
    assert_bad_mp("\xc0\xc1", 2, "send exactly one value");
}

Test(msgpack, two_concatenated_values_rejected)
{
    assert_bad_mp("\x01\x02", 2, "exactly one value");
    assert_bad_mp("\x92\x01\x02\x92\x01\x02", 6, "exactly one value");
}

Test(msgpack, truncated_rejected)
{
    assert_bad_mp("\xa5hell", 5, "truncated");     /* str of 5, 4 given */
    assert_bad_mp("\x93\x01\x02", 3, "truncated"); /* array of 3, 2 given */
    assert_bad_mp("\x82\xa1"
                  "a\x01\xa1"
                  "b",
                  6, "truncated");                         /* map missing a value */
    assert_bad_mp("\xcd\x01", 2, "truncated");             /* uint16 missing a byte */
    assert_bad_mp("\xdb\xff\xff\xff\xff", 5, "truncated"); /* str32 of 4 GiB */
    assert_bad_mp("", 0, "empty");
    assert_bad_mp("\xc1", 1, "invalid type byte 0xc1");
}

Test(msgpack, huge_claimed_counts_rejected_without_allocating)
{
    /* msgpack-c alone would try to allocate 4G objects for these before noticing. */
    assert_bad_mp("\xdd\xff\xff\xff\xff\x01", 6, "claims 4294967295 entries");
    assert_bad_mp("\xdf\xff\xff\xff\xff\x01\x01", 7, "map");
    assert_bad_mp("\xde\x00\x02\x01\x02\x03", 6, "truncated"); /* 2 pairs need 4 bytes */
}

Test(msgpack, null_data_with_length_is_invalid)
{
    wf_error err = {0};
    cr_assert_eq(wf_msgpack_check(NULL, 4, NULL, &err), WF_ERR_INVALID);
}

/* ---- Depth limits -------------------------------------------------------------------------- */

Test(depth, hostile_json_nesting)
{
    char *arrays = nested("[", "", "]", 10000), *objs = nested("{\"a\":", "1", "}", 10000);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_json_to_msgpack(arrays, strlen(arrays), NULL, &sb, &err), WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "JSON nesting deeper than 32 levels");
    cr_assert_eq(wf_json_to_msgpack(objs, strlen(objs), NULL, &sb, &err), WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "deeper than 32");
    cr_assert_eq(wf_read_validated_payload(arrays, strlen(arrays), WF_PAYLOAD_AUTO, NULL, NULL,
                                           NULL, &sb, &err),
                 WF_ERR_BAD_PAYLOAD);
    free(arrays);
    free(objs);
    msgpack_sbuffer_destroy(&sb);
}

Test(depth, hostile_msgpack_nesting)
{
    size_t len;
    unsigned char *b = nested_mp(10000, &len);
    assert_bad_mp(b, len, "msgpack nesting deeper than 32 levels");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_read_validated_payload(b, len, WF_PAYLOAD_MSGPACK, NULL, NULL, NULL, &sb, &err),
                 WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "nesting");
    free(b);
    msgpack_sbuffer_destroy(&sb);
}

Test(depth, exactly_at_the_limit)
{
    wf_error err = {0};
    size_t len;
    for (int n = 31; n <= 33; n++) {
        int want = n <= 32 ? WF_OK : WF_ERR_BAD_PAYLOAD;
        unsigned char *b = nested_mp(n, &len);
        cr_assert_eq(wf_msgpack_check(b, len, NULL, &err), want, "msgpack depth %d", n);
        free(b);
        char *j = nested("[", "", "]", n);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        cr_assert_eq(wf_json_to_msgpack(j, strlen(j), NULL, &sb, &err), want, "JSON depth %d", n);
        if (want == WF_OK) cr_assert_eq(wf_msgpack_check(sb.data, sb.size, NULL, &err), WF_OK);
        msgpack_sbuffer_destroy(&sb);
        free(j);
    }
    /* A bracket inside a string is not nesting. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    const char *s = "[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"]";
    cr_assert_eq(wf_json_to_msgpack(s, strlen(s), NULL, &sb, &err), WF_OK, "%s", err.message);
    msgpack_sbuffer_destroy(&sb);
}

Test(depth, custom_limit_and_ceiling)
{
    wf_error err = {0};
    size_t len;
    wf_payload_limits three = {0, 3}, big = {0, 1000};
    unsigned char *b3 = nested_mp(3, &len);
    cr_assert_eq(wf_msgpack_check(b3, len, &three, &err), WF_OK);
    free(b3);
    unsigned char *b4 = nested_mp(4, &len);
    cr_assert_eq(wf_msgpack_check(b4, len, &three, &err), WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "deeper than 3 levels");
    free(b4);
    /* msgpack-c cannot unpack past 32 levels, so a larger limit is cut to that. */
    unsigned char *b33 = nested_mp(33, &len);
    cr_assert_eq(wf_msgpack_check(b33, len, &big, &err), WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "deeper than 32 levels");
    free(b33);
}

Test(depth, msgpack_c_ceiling_is_32)
{
    /* The ceiling in core/payload_internal.h mirrors libmsgpackc's MSGPACK_EMBED_STACK_SIZE. */
    size_t len;
    msgpack_unpacked u;
    unsigned char *ok = nested_mp(32, &len), *deep = nested_mp(33, &len);
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, (char *)ok, 33, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_assert_neq(msgpack_unpack_next(&u, (char *)deep, 34, NULL), MSGPACK_UNPACK_SUCCESS);
    msgpack_unpacked_destroy(&u);
    free(ok);
    free(deep);
}

Test(depth, hand_built_deep_or_cyclic_object)
{
    msgpack_object objs[40];
    for (int i = 0; i < 40; i++) {
        objs[i].type = MSGPACK_OBJECT_ARRAY;
        objs[i].via.array.size = i == 39 ? 0 : 1;
        objs[i].via.array.ptr = i == 39 ? NULL : &objs[i + 1];
    }
    char *json = NULL;
    wf_error err = {0};
    cr_assert_eq(wf_object_to_json(&objs[0], &json, &err), WF_ERR_BAD_PAYLOAD);
    cr_assert_null(json);
    msgpack_object cyc = {.type = MSGPACK_OBJECT_ARRAY};
    cyc.via.array.size = 1;
    cyc.via.array.ptr = &cyc;
    cr_assert_eq(wf_object_to_json(&cyc, &json, &err), WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "nesting");
}

/* ---- Size limits --------------------------------------------------------------------------- */

Test(size, json_exactly_at_and_one_over)
{
    wf_payload_limits lim = {10, 0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_json_to_msgpack("\"12345678\"", 10, &lim, &sb, &err), WF_OK);
    cr_assert_eq(wf_json_to_msgpack("\"123456789\"", 11, &lim, &sb, &err), WF_ERR_TOO_LARGE);
    cr_assert_eq(err.code, WF_ERR_TOO_LARGE);
    HAS(err.message, "payload is 11 bytes, over the limit of 10 (raise max_payload)");
    msgpack_sbuffer_destroy(&sb);
}

Test(size, msgpack_exactly_at_and_one_over)
{
    wf_payload_limits lim = {10, 0};
    wf_error err = {0};
    cr_assert_eq(wf_msgpack_check("\xa9"
                                  "123456789",
                                  10, &lim, &err),
                 WF_OK, "%s", err.message);
    cr_assert_eq(wf_msgpack_check("\xaa"
                                  "1234567890",
                                  11, &lim, &err),
                 WF_ERR_TOO_LARGE);
    HAS(err.message, "11 bytes, over the limit of 10");
}

Test(size, default_limit_is_one_mebibyte)
{
    size_t n = 1048576;
    char *s = malloc(n + 2);
    s[0] = '"';
    memset(s + 1, 'a', n);
    s[n - 1] = '"';
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_read_validated_payload(s, n, WF_PAYLOAD_AUTO, NULL, NULL, NULL, &sb, &err),
                 WF_OK, "%s", err.message);
    s[n - 1] = 'a';
    s[n] = '"';
    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(wf_read_validated_payload(s, n + 1, WF_PAYLOAD_AUTO, NULL, NULL, NULL, &sb, &err),
                 WF_ERR_TOO_LARGE);
    HAS(err.message, "payload is 1048577 bytes, over the limit of 1048576");
    free(s);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- readValidatedPayload ------------------------------------------------------------------ */

static const msgpack_object *map_get(const msgpack_object *o, const char *key)
{
    if (o->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}

/* The trimmed title, or NULL when there is none worth keeping. */
static const char *trimmed_title(const msgpack_object *in, size_t *len)
{
    const msgpack_object *t = map_get(in, "title");
    if (!t || t->type != MSGPACK_OBJECT_STR) return NULL;
    const char *s = t->via.str.ptr, *e = s + t->via.str.size;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    *len = (size_t)(e - s);
    return *len ? s : NULL;
}

static void pack_title(msgpack_packer *out, const char *s, size_t len)
{
    msgpack_pack_map(out, 1);
    msgpack_pack_str_with_body(out, "title", 5);
    msgpack_pack_str_with_body(out, s, len);
}

/* The HTTP handler's validator: a title is required. */
static int require_title(const msgpack_object *in, msgpack_packer *out, void *ud, wf_error *err)
{
    size_t len;
    const char *s = trimmed_title(in, &len);
    if (!s) return wf_error_set(err, WF_ERR_VALIDATION, "Enter a title for the draft.");
    (*(int *)ud)++;
    pack_title(out, s, len);
    return WF_OK;
}

/* The workflow's validator: a missing title becomes "Untitled draft". */
static int default_title(const msgpack_object *in, msgpack_packer *out, void *ud, wf_error *err)
{
    size_t len;
    const char *s = trimmed_title(in, &len);
    if (!s) s = "Untitled draft", len = 14;
    pack_title(out, s, len);
    return WF_OK;
}

static int validate(const char *body, size_t len, wf_payload_format fmt, wf_validator_fn fn,
                    void *ud, char **json, wf_error *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = wf_read_validated_payload(body, len, fmt, NULL, fn, ud, &sb, err);
    *json = NULL;
    if (rc == WF_OK) {
        wf_error e2 = {0};
        cr_assert_eq(wf_msgpack_to_json(sb.data, sb.size, json, &e2), WF_OK, "%s", e2.message);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

Test(validated, validator_rejects_with_its_message)
{
    const char *bodies[] = {"{}", "{\"title\":\"   \"}", "{\"title\":5}", "[]", "null", ""};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        wf_error err = {0};
        char *json;
        int calls = 0;
        int rc = validate(bodies[i], strlen(bodies[i]), WF_PAYLOAD_AUTO, require_title, &calls,
                          &json, &err);
        cr_assert_eq(rc, WF_ERR_VALIDATION, "body %s", bodies[i]);
        cr_assert_eq(err.code, WF_ERR_VALIDATION);
        cr_assert_str_eq(err.message, "Enter a title for the draft.");
        cr_assert_null(json);
    }
    wf_error err = {0};
    char *json;
    int calls = 0;
    cr_assert_eq(validate("{\"title\":\" Hello \"}", 19, WF_PAYLOAD_JSON, require_title, &calls,
                          &json, &err),
                 WF_OK, "%s", err.message);
    cr_assert_eq(calls, 1, "userdata reaches the validator");
    cr_assert_str_eq(json, "{\"title\":\"Hello\"}");
    free(json);
}

Test(validated, validator_transforms)
{
    static const struct {
        const char *body;
        const char *out;
    } cases[] = {
        {"{\"title\":\"  Hello world \\t\",\"extra\":1}", "{\"title\":\"Hello world\"}"},
        {"{\"title\":\"   \"}", "{\"title\":\"Untitled draft\"}"},
        {"{}", "{\"title\":\"Untitled draft\"}"},
        {"[1]", "{\"title\":\"Untitled draft\"}"},
        {"", "{\"title\":\"Untitled draft\"}"},
        {"\x81\xa5title\xa3"
         "abc",
         "{\"title\":\"abc\"}"}, /* msgpack body */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wf_error err = {0};
        char *json;
        cr_assert_eq(validate(cases[i].body, strlen(cases[i].body), WF_PAYLOAD_AUTO, default_title,
                              NULL, &json, &err),
                     WF_OK, "%s: %s", cases[i].body, err.message);
        cr_assert_str_eq(json, cases[i].out);
        free(json);
    }
    /* NULL data is "no input" too. */
    wf_error err = {0};
    char *json;
    cr_assert_eq(validate(NULL, 5, WF_PAYLOAD_MSGPACK, default_title, NULL, &json, &err), WF_OK);
    cr_assert_str_eq(json, "{\"title\":\"Untitled draft\"}");
    free(json);
}

static int nil_seen(const msgpack_object *in, msgpack_packer *out, void *ud, wf_error *err)
{
    *(int *)ud = in->type == MSGPACK_OBJECT_NIL;
    return msgpack_pack_nil(out) == 0 ? WF_OK : WF_ERR_NOMEM;
}

Test(validated, no_input_is_nil)
{
    int nil = 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_read_validated_payload("", 0, WF_PAYLOAD_JSON, NULL, nil_seen, &nil, &sb, &err),
                 WF_OK);
    cr_assert_eq(nil, 1);
    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(wf_read_validated_payload(NULL, 0, WF_PAYLOAD_AUTO, NULL, NULL, NULL, &sb, &err),
                 WF_OK);
    cr_assert_eq(sb.size, 1);
    cr_assert_eq((unsigned char)sb.data[0], 0xc0);
    msgpack_sbuffer_destroy(&sb);
}

Test(validated, null_validator_keeps_value)
{
    const char *mp = "\x82\xa1"
                     "a\x93\x01\xcb\x3f\xe0\x00\x00\x00\x00\x00\x00\xc0\xa1"
                     "b\xc3";
    size_t mplen = 18;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_read_validated_payload(mp, mplen, WF_PAYLOAD_AUTO, NULL, NULL, NULL, &sb, &err),
                 WF_OK, "%s", err.message);
    cr_assert_eq(sb.size, mplen);
    cr_assert_eq(memcmp(sb.data, mp, mplen), 0, "msgpack passes through byte for byte");
    msgpack_sbuffer_clear(&sb);
    const char *js = " {\"a\":[1,0.5,null],\"b\":true}";
    cr_assert_eq(
        wf_read_validated_payload(js, strlen(js), WF_PAYLOAD_AUTO, NULL, NULL, NULL, &sb, &err),
        WF_OK, "%s", err.message);
    cr_assert_eq(sb.size, mplen);
    cr_assert_eq(memcmp(sb.data, mp, mplen), 0, "JSON becomes the same msgpack");
    msgpack_sbuffer_destroy(&sb);
}

Test(validated, auto_detection)
{
    wf_error err = {0};
    char *json;
    /* 0x05 is not a JSON start byte: a msgpack integer. */
    cr_assert_eq(validate("\x05", 1, WF_PAYLOAD_AUTO, NULL, NULL, &json, &err), WF_OK);
    cr_assert_str_eq(json, "5");
    free(json);
    /* "7" is: JSON 7, not msgpack 55. */
    cr_assert_eq(validate("7", 1, WF_PAYLOAD_AUTO, NULL, NULL, &json, &err), WF_OK);
    cr_assert_str_eq(json, "7");
    free(json);
    cr_assert_eq(validate("7", 1, WF_PAYLOAD_MSGPACK, NULL, NULL, &json, &err), WF_OK);
    cr_assert_str_eq(json, "55");
    free(json);
    /* Blank only: a JSON error, not the small integers those bytes are in msgpack. */
    cr_assert_eq(validate(" \n", 2, WF_PAYLOAD_AUTO, NULL, NULL, &json, &err), WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "JSON");
    /* Forced JSON on msgpack bytes reports a JSON error. */
    cr_assert_eq(validate("\x81\xa1"
                          "a\x01",
                          4, WF_PAYLOAD_JSON, NULL, NULL, &json, &err),
                 WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "JSON syntax error at line 1");
    cr_assert_eq(validate("1", 1, (wf_payload_format)42, NULL, NULL, &json, &err), WF_ERR_INVALID);
}

static int packs_nothing(const msgpack_object *in, msgpack_packer *out, void *ud, wf_error *err)
{
    return WF_OK;
}

static int packs_two(const msgpack_object *in, msgpack_packer *out, void *ud, wf_error *err)
{
    msgpack_pack_nil(out);
    msgpack_pack_nil(out);
    return WF_OK;
}

static int fails_silently(const msgpack_object *in, msgpack_packer *out, void *ud, wf_error *err)
{
    return WF_ERR_STATE;
}

Test(validated, misbehaving_validators)
{
    wf_error err = {0};
    char *json;
    cr_assert_eq(validate("1", 1, WF_PAYLOAD_AUTO, packs_nothing, NULL, &json, &err),
                 WF_ERR_INVALID);
    HAS(err.message, "packed nothing");
    cr_assert_eq(validate("1", 1, WF_PAYLOAD_AUTO, packs_two, NULL, &json, &err), WF_ERR_INVALID);
    HAS(err.message, "exactly one value");
    cr_assert_eq(validate("1", 1, WF_PAYLOAD_AUTO, fails_silently, NULL, &json, &err),
                 WF_ERR_STATE);
    cr_assert_eq(err.code, WF_ERR_STATE);
    cr_assert_str_eq(err.message, wf_strerror(WF_ERR_STATE));
}

Test(validated, bad_bytes_never_reach_the_validator)
{
    int calls = 0;
    wf_error err = {0};
    char *json;
    cr_assert_eq(
        validate("{\"title\":\"x\",}", 14, WF_PAYLOAD_AUTO, require_title, &calls, &json, &err),
        WF_ERR_BAD_PAYLOAD);
    cr_assert_eq(
        validate("\x82\xa5title\xa1x", 9, WF_PAYLOAD_AUTO, require_title, &calls, &json, &err),
        WF_ERR_BAD_PAYLOAD);
    HAS(err.message, "truncated");
    cr_assert_eq(calls, 0);
}
