/* test_payload_json.c - JSON <-> msgpack conversion (wf_json_to_msgpack, wf_msgpack_to_json,
 * wf_object_to_json): round trips, malformed and duplicate-key JSON, and what msgpack values become
 * in JSON or are refused as. Limits and readValidatedPayload are in test_payload.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "wf/payload.h"

#define HAS(msg, needle) cr_assert(strstr((msg), (needle)) != NULL, "message: %s", (msg))

/* ---- helpers ------------------------------------------------------------------------------- */

/* JSON -> msgpack -> JSON, asserting both steps succeed. Caller frees. */
static char *j2m2j(const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    int rc = wf_json_to_msgpack(json, strlen(json), NULL, &sb, &err);
    cr_assert_eq(rc, WF_OK, "json->msgpack of %s: %s", json, err.message);
    char *out = NULL;
    rc = wf_msgpack_to_json(sb.data, sb.size, &out, &err);
    cr_assert_eq(rc, WF_OK, "msgpack->json of %s: %s", json, err.message);
    cr_assert_not_null(out);
    msgpack_sbuffer_destroy(&sb);
    return out;
}

static void assert_roundtrip(const char *json, const char *expect)
{
    char *out = j2m2j(json);
    cr_assert_str_eq(out, expect);
    free(out);
}

/* ---- JSON -> msgpack -> JSON -------------------------------------------------------------- */

Test(roundtrip, nested_objects_keep_order)
{
    assert_roundtrip("{\"z\":[1,2,{\"b\":null,\"a\":[[\"x\"]]}],\"c\":{\"d\":true,\"e\":false}}",
                     "{\"z\":[1,2,{\"b\":null,\"a\":[[\"x\"]]}],\"c\":{\"d\":true,\"e\":false}}");
}

Test(roundtrip, compacts_whitespace)
{
    assert_roundtrip(" {\n \"a\" : [ 1 , 2 ] ,\t\"b\" : { } }\n", "{\"a\":[1,2],\"b\":{}}");
}

Test(roundtrip, unicode_and_escapes)
{
    assert_roundtrip("{\"h\\u00e9llo\":\"w\xc3\xb6rld \xe2\x9c\x93 \\ud83d\\ude00\","
                     "\"esc\":\"line\\nbreak \\\"q\\\" \\\\ nul\\u0000end\"}",
                     "{\"h\xc3\xa9llo\":\"w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80\","
                     "\"esc\":\"line\\nbreak \\\"q\\\" \\\\ nul\\u0000end\"}");
}

Test(roundtrip, integers_including_extremes)
{
    const char *ints = "[9223372036854775807,-9223372036854775808,0,-1,-32,-33,127,128,255,256,"
                       "65535,65536,4294967295,4294967296,-2147483649]";
    assert_roundtrip(ints, ints);
}

Test(roundtrip, integers_stay_integers_reals_become_doubles)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    cr_assert_eq(wf_json_to_msgpack("[1,-5,1.0,9223372036854775807]", 30, NULL, &sb, &err), WF_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    msgpack_object_array *a = &u.data.via.array;
    cr_assert_eq(a->size, 4);
    cr_assert_eq(a->ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_assert_eq(a->ptr[0].via.u64, 1);
    cr_assert_eq(a->ptr[1].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    cr_assert_eq(a->ptr[1].via.i64, -5);
    cr_assert_eq(a->ptr[2].type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(a->ptr[3].via.u64, 9223372036854775807ULL);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(roundtrip, floats_keep_their_value)
{
    const char *in = "[0.5,-2.25,1.0,1.5e300,1e-7,3.141592653589793,-0.0]";
    char *out = j2m2j(in);
    json_t *a = json_loads(in, 0, NULL), *b = json_loads(out, 0, NULL);
    cr_assert_not_null(b, "output is JSON: %s", out);
    cr_assert(json_equal(a, b), "%s != %s", in, out);
    cr_assert(json_is_real(json_array_get(b, 2)), "1.0 stays a real: %s", out);
    json_decref(a);
    json_decref(b);
    free(out);
}

Test(roundtrip, null_bool_and_empty_containers)
{
    assert_roundtrip("[null,true,false,[],{},\"\",[[]],{\"\":{}}]",
                     "[null,true,false,[],{},\"\",[[]],{\"\":{}}]");
}

Test(roundtrip, bare_values)
{
    assert_roundtrip("\"hi\"", "\"hi\"");
    assert_roundtrip("42", "42");
    assert_roundtrip("-7", "-7");
    assert_roundtrip("3.25", "3.25");
    assert_roundtrip("null", "null");
    assert_roundtrip("true", "true");
    assert_roundtrip("false", "false");
    assert_roundtrip("  \n42 \r\n", "42");
}

/* ---- Malformed JSON ------------------------------------------------------------------------ */

static void assert_bad_json(const char *json, const char *needle)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    wf_error err = {0};
    int rc = wf_json_to_msgpack(json, strlen(json), NULL, &sb, &err);
    cr_assert_eq(rc, WF_ERR_BAD_PAYLOAD, "%s gave %d", json, rc);
    cr_assert_eq(err.code, WF_ERR_BAD_PAYLOAD);
    HAS(err.message, needle);
    msgpack_sbuffer_destroy(&sb);
}

Test(json, syntax_errors_name_line_and_column)
{
    assert_bad_json("{\"a\": }", "JSON syntax error at line 1 column 7");
    assert_bad_json("{\n  \"a\": 1,\n  \"b\": tru\n}", "line 3");
    assert_bad_json("[1, 2", "JSON syntax error at line 1");
    assert_bad_json("", "JSON syntax error");
    assert_bad_json("{'a': 1}", "line 1 column 2");
    assert_bad_json("1 2", "line 1");
    assert_bad_json("99999999999999999999", "too big");
}

Test(json, duplicate_keys_rejected)
{
    assert_bad_json("{\"a\":1,\"b\":2,\"a\":3}", "duplicate");
    assert_bad_json("[{\"x\":{\"k\":1,\"k\":1}}]", "duplicate");
}

Test(json, null_argument_and_null_out)
{
    wf_error err = {0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(wf_json_to_msgpack(NULL, 3, NULL, &sb, &err), WF_ERR_INVALID);
    cr_assert_eq(wf_json_to_msgpack("1", 1, NULL, NULL, &err), WF_ERR_INVALID);
    wf_payload_limits neg = {0, -1};
    cr_assert_eq(wf_json_to_msgpack("1", 1, &neg, &sb, &err), WF_ERR_INVALID);
    HAS(err.message, "max_depth");
    msgpack_sbuffer_destroy(&sb);
}

/* ---- msgpack -> JSON ----------------------------------------------------------------------- */

static void pack_bin(msgpack_sbuffer *sb, const char *data, size_t len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_bin_with_body(&pk, data, len);
}

Test(to_json, bin_becomes_base64)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"", 0, "\"\""},           {"f", 1, "\"Zg==\""},         {"fo", 2, "\"Zm8=\""},
        {"foo", 3, "\"Zm9v\""},    {"hello", 5, "\"aGVsbG8=\""}, {"\xff\xfe", 2, "\"//4=\""},
        {"\0\0\0", 3, "\"AAAA\""}, {"\xfb\xff", 2, "\"+/8=\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_bin(&sb, cases[i].in, cases[i].len);
        wf_test_assert_json_is(sb.data, sb.size, cases[i].out);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(to_json, non_string_keys_become_their_json_text)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    wf_test_packer(&sb, &pk);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_true(&pk);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_int(&pk, 4);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_int(&pk, 5);
    wf_test_assert_json_is(sb.data, sb.size,
                           "{\"1\":\"a\",\"true\":2,\"null\":3,\"[1,\\\"x\\\"]\":4,"
                           "\"2.5\":5}");
    msgpack_sbuffer_destroy(&sb);
}

/* Well-formed msgpack that has no faithful JSON form. */
static void assert_no_json(const void *data, size_t len, const char *needle)
{
    wf_error err = {0};
    cr_assert_eq(wf_msgpack_check(data, len, NULL, &err), WF_OK, "%s", err.message);
    char *json = (char *)"untouched";
    cr_assert_eq(wf_msgpack_to_json(data, len, &json, &err), WF_ERR_BAD_PAYLOAD);
    cr_assert_null(json, "*json is NULL on error");
    HAS(err.message, needle);
}

Test(to_json, colliding_keys_rejected)
{
    /* {1: "a", "1": "b"} would lose a value as a JSON object. */
    assert_no_json("\x82\x01\xa1"
                   "a\xa1"
                   "1\xa1"
                   "b",
                   8, "twice");
    assert_no_json("\x82\xa1"
                   "k\x01\xa1"
                   "k\x02",
                   7, "twice");
}

Test(to_json, values_json_cannot_hold_rejected)
{
    assert_no_json("\xa2\xc3\x28", 3, "UTF-8");                       /* bad str */
    assert_no_json("\xa3\xed\xa0\x80", 4, "UTF-8");                   /* surrogate */
    assert_no_json("\xa2\xc0\x80", 3, "UTF-8");                       /* overlong NUL */
    assert_no_json("\x81\xa1\xff\x01", 4, "UTF-8");                   /* bad key */
    assert_no_json("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9, "NaN"); /* NaN */
    assert_no_json("\xcb\xff\xf0\x00\x00\x00\x00\x00\x00", 9, "NaN"); /* -infinity */
    assert_no_json("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, "18446744073709551615");
    /* INT64_MAX itself is fine. */
    wf_test_assert_json_is("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, "9223372036854775807");
}

Test(to_json, float32_and_ext)
{
    wf_test_assert_json_is("\xca\x3f\x00\x00\x00", 5, "0.5");
    wf_test_assert_json_is("\xd4\x05\x41", 3, "\"QQ==\"");
    wf_test_assert_json_is("\xc7\x00\x05", 3, "\"\"");
}

Test(to_json, null_arguments)
{
    wf_error err = {0};
    char *json = (char *)"untouched";
    cr_assert_eq(wf_object_to_json(NULL, &json, &err), WF_ERR_INVALID);
    cr_assert_null(json);
    cr_assert_eq(wf_msgpack_to_json("\xc0", 1, NULL, &err), WF_ERR_INVALID);
}
