/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_json.c - hs_json: body parsing and the FastAPI error shapes.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <check.h>

#include "hs_json.h"
#define HS_UNIT_POOL_FIXTURE
#include "unit_main.h"

/* Parses buf[0..len) and returns the rendered errors, or "OBJECT" when an
 * object came back (released here). */
static const char *parse_render(const char *buf, size_t len)
{
    hs_errors *e = hs_errors_make(pool);
    json_object *o = hs_json_parse_object(buf, len, e);

    if (o) {
        ck_assert_int_eq(hs_errors_count(e), 0);
        json_object_put(o);
        return "OBJECT";
    }
    ck_assert_int_eq(hs_errors_count(e), 1);
    return hs_errors_render(e, pool);
}

#define INVALID_AT(n)                                                          \
    "{\"detail\":[{\"loc\":[\"body\"," #n                                      \
    "],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]}"
#define MISSING_BODY                                                           \
    "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Field "                        \
    "required\",\"type\":\"missing\"}]}"
#define NOT_OBJECT                                                             \
    "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Input should be a valid "      \
    "dictionary or object to extract fields from\",\"type\":"                  \
    "\"model_attributes_type\"}]}"

typedef struct {
    const char *body;
    size_t len; /* 0: strlen(body) */
    const char *expect;
} parse_case;

static const parse_case parse_cases[] = {
    {"{\"a\":1}", 0, "OBJECT"},
    {" \t\r\n{\"a\":1} \n", 0, "OBJECT"},
    {"{}", 0, "OBJECT"},
    {"\xEF\xBB\xBF{}", 0, "OBJECT"},
    /* malformed JSON, offsets as Python's json reports them */
    {"{\"a\":1,}", 0, INVALID_AT(7)},
    {"{\"a\":1", 0, INVALID_AT(6)},
    {"{", 0, INVALID_AT(1)},
    {"{a:1}", 0, INVALID_AT(1)},
    {"{\"a\":'x'}", 0, INVALID_AT(5)},
    {"{\"a\":1} x", 0, INVALID_AT(8)},
    {"{\"a\":1}{}", 0, INVALID_AT(7)},
    {"{\"a\":1.}", 0, INVALID_AT(6)},
    {"{\"a\":[1,]}", 0, INVALID_AT(8)},
    /* a broken literal: where it starts, as Python's "Expecting value" */
    {"nul", 0, INVALID_AT(0)},
    {"{\"a\": tru}", 0, INVALID_AT(6)},
    {"[1, 2, fals]", 0, INVALID_AT(7)},
    {"{\"a\":nul", 0, INVALID_AT(5)},
    {"{\"a\":nullx}", 0, INVALID_AT(9)},
    {"{\"a\":\"abc", 0, INVALID_AT(9)},
    {"   ", 0, INVALID_AT(3)},
    /* not an object */
    {"[1,2]", 0, NOT_OBJECT},
    {"[]", 0, NOT_OBJECT},
    {"123", 0, NOT_OBJECT},
    {"\"x\"", 0, NOT_OBJECT},
    {"true", 0, NOT_OBJECT},
    {"1e999", 0, NOT_OBJECT},
    /* empty body and JSON null: FastAPI's missing body */
    {"", 0, MISSING_BODY},
    {"null", 0, MISSING_BODY},
    /* huge numbers are fine */
    {"{\"a\":123456789012345678901234567890123456789,\"b\":-1e400}", 0,
     "OBJECT"},
    /* raw NUL bytes and control characters */
    {"{\"a\":\"x\0y\"}", 11, INVALID_AT(7)},
    {"{\"a\":1}\0", 8, INVALID_AT(7)},
    {"\0", 1, INVALID_AT(0)},
    {"{\"a\":\"x\ty\"}", 0, INVALID_AT(7)},
    {"{\"a\":\"x\\ty\"}", 0, "OBJECT"},
    /* escaped surrogates: a pair is one character, a lone one is refused */
    {"{\"a\":\"\\ud83d\\ude00\"}", 0, "OBJECT"},
    {"{\"a\":\"\\uD83D\\uDE00\"}", 0, "OBJECT"},
    {"{\"a\":\"x\\ud800\"}", 0, INVALID_AT(7)},
    {"{\"a\":\"\\ud800\\u0041\"}", 0, INVALID_AT(6)},
    {"{\"a\":\"\\udc00\"}", 0, INVALID_AT(6)},
    {"{\"a\":\"\\\\ud800\"}", 0, "OBJECT"},
    /* escaped NUL is a valid JSON string */
    {"{\"a\":\"x\\u0000y\"}", 0, "OBJECT"},
    /* invalid UTF-8: cut, overlong, surrogate, past U+10FFFF, stray */
    {"{\"a\":\"\xC3\x28\"}", 0, INVALID_AT(6)},
    {"{\"a\":\"\xC0\xAF\"}", 0, INVALID_AT(6)},
    {"{\"a\":\"\xED\xA0\x80\"}", 0, INVALID_AT(6)},
    {"{\"a\":\"\xF4\x90\x80\x80\"}", 0, INVALID_AT(6)},
    {"{\"a\":\"\x80\"}", 0, INVALID_AT(6)},
    {"{\"a\":\"\xE6\x97\xA5\xE6\x9C\xAC\"}", 0, "OBJECT"},
};

START_TEST(test_parse_table)
{
    const parse_case *c = &parse_cases[_i];
    size_t len = c->len ? c->len : strlen(c->body);

    ck_assert_msg(strcmp(parse_render(c->body, len), c->expect) == 0,
                  "case %d: got %s", _i, parse_render(c->body, len));
}
END_TEST

START_TEST(test_parse_null_buffer)
{
    ck_assert_str_eq(parse_render(NULL, 0), MISSING_BODY);
}
END_TEST

START_TEST(test_deep_nesting)
{
    size_t n = 10000, i;
    char *buf = apr_palloc(pool, 2 * n + 1);
    const char *r;

    for (i = 0; i < n; i++) {
        buf[i] = '[';
        buf[n + i] = ']';
    }
    r = parse_render(buf, 2 * n);
    ck_assert_str_eq(r, INVALID_AT(16));

    for (i = 0; i < n; i++) {
        buf[i] = '{';
    }
    ck_assert_ptr_nonnull(strstr(parse_render(buf, n), "json_invalid"));

    /* HS_JSON_MAX_DEPTH levels parse, one more does not */
    for (i = 0; i < HS_JSON_MAX_DEPTH - 1; i++) {
        buf[i] = '[';
        buf[HS_JSON_MAX_DEPTH - 1 + i] = ']';
    }
    buf[2 * (HS_JSON_MAX_DEPTH - 1)] = '\0';
    r = apr_pstrcat(pool, "{\"a\":", buf, "}", NULL);
    ck_assert_str_eq(parse_render(r, strlen(r)), "OBJECT");
    r = apr_pstrcat(pool, "{\"a\":[", buf, "]}", NULL);
    ck_assert_str_eq(parse_render(r, strlen(r)), INVALID_AT(20));
}
END_TEST

START_TEST(test_duplicate_members_last_wins)
{
    hs_errors *e = hs_errors_make(pool);
    const char *b = "{\"a\":\"first\",\"b\":1,\"a\":\"second\"}";
    json_object *o = hs_json_parse_object(b, strlen(b), e);
    json_object *v;

    ck_assert_ptr_nonnull(o);
    hs_json_pool_own(pool, o);
    ck_assert(json_object_object_get_ex(o, "a", &v));
    ck_assert_str_eq(json_object_get_string(v), "second");
    ck_assert_int_eq(json_object_object_length(o), 2);
}
END_TEST

START_TEST(test_embedded_nul_kept)
{
    hs_errors *e = hs_errors_make(pool);
    const char *b = "{\"a\":\"x\\u0000y\"}";
    json_object *o = hs_json_parse_object(b, strlen(b), e);
    json_object *v;

    ck_assert_ptr_nonnull(o);
    hs_json_pool_own(pool, o);
    ck_assert(json_object_object_get_ex(o, "a", &v));
    ck_assert_int_eq(json_object_get_string_len(v), 3);
    ck_assert(memcmp(json_object_get_string(v), "x\0y", 3) == 0);
}
END_TEST

START_TEST(test_errors_render)
{
    hs_errors *e = hs_errors_make(pool);

    ck_assert_int_eq(hs_errors_count(e), 0);
    ck_assert_str_eq(hs_errors_render(e, pool), "{\"detail\":[]}");
    hs_errors_add(e, "email", "missing", "Field required");
    hs_errors_add(e, NULL, "model_attributes_type", "x/y \"q\" \xC3\xA9\n");
    hs_errors_add_offset(e, 42, "json_invalid", "JSON decode error");
    ck_assert_int_eq(hs_errors_count(e), 3);
    ck_assert_str_eq(
        hs_errors_render(e, pool),
        "{\"detail\":[{\"loc\":[\"body\",\"email\"],\"msg\":\"Field "
        "required\",\"type\":\"missing\"},{\"loc\":[\"body\"],\"msg\":\"x/y "
        "\\\"q\\\" \xC3\xA9\\n\",\"type\":\"model_attributes_type\"},{\"loc\":"
        "[\"body\",42],\"msg\":\"JSON decode error\",\"type\":\"json_"
        "invalid\"}]}");
}
END_TEST

START_TEST(test_detail)
{
    ck_assert_str_eq(hs_json_detail(pool, "Tenant not found"),
                     "{\"detail\":\"Tenant not found\"}");
    ck_assert_str_eq(hs_json_detail(pool, "a \"b\" </c>\t"),
                     "{\"detail\":\"a \\\"b\\\" </c>\\t\"}");
    ck_assert_str_eq(hs_json_detail(pool, NULL), "{\"detail\":\"\"}");
}
END_TEST

START_TEST(test_to_string_and_pool_own)
{
    apr_pool_t *sub;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "url", json_object_new_string("https://a/b"));
    json_object_object_add(o, "n", json_object_new_int(3));
    ck_assert_str_eq(hs_json_to_string(pool, o),
                     "{\"url\":\"https://a/b\",\"n\":3}");
    apr_pool_create(&sub, pool);
    ck_assert_ptr_eq(hs_json_pool_own(sub, o), o);
    ck_assert_ptr_null(hs_json_pool_own(sub, NULL));
    apr_pool_destroy(sub); /* releases o; valgrind checks */
}
END_TEST

static Suite *json_suite(void)
{
    const TTest *const tests[] = {
        test_parse_null_buffer,
        test_deep_nesting,
        test_duplicate_members_last_wins,
        test_embedded_nul_kept,
        test_errors_render,
        test_detail,
        test_to_string_and_pool_own,
    };
    TCase *tc;
    Suite *s = hs_unit_suite("json", "core", setup, teardown, 0, tests,
                             HS_UNIT_COUNT(tests), &tc);

    tcase_add_loop_test(tc, test_parse_table, 0,
                        (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
    return s;
}

HS_UNIT_MAIN(json_suite)
