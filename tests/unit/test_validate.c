/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_validate.c - hs_validate: code-point lengths, email addresses as
 * python email-validator 2.1 judges them, the request models.
 *
 * The expected reasons were checked against email-validator's rules.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <check.h>

#include "hs_json.h"
#include "hs_validate.h"
#define HS_UNIT_POOL_FIXTURE
#include "unit_main.h"

static const char *repeat(const char *s, int n)
{
    const char *out = "";
    int i;

    for (i = 0; i < n; i++) {
        out = apr_pstrcat(pool, out, s, NULL);
    }
    return out;
}

/* ------------------------------------------------------------------ */

typedef struct {
    const char *s;
    size_t len; /* 0: strlen */
    long expect;
} utf8_case;

static const utf8_case utf8_cases[] = {
    {"", 0, 0},
    {"abc", 0, 3},
    {"\xC3\xA9", 0, 1},
    {"\xE6\x97\xA5\xE6\x9C\xAC", 0, 2},
    {"\xF0\x9F\x8E\x89", 0, 1},
    {"a\0b", 3, 3},
    {"\xF4\x8F\xBF\xBF", 0, 1},      /* U+10FFFF */
    {"\xC3", 0, -1},                 /* cut */
    {"\xC0\xAF", 0, -1},             /* overlong */
    {"\xE0\x80\xAF", 0, -1},         /* overlong */
    {"\xF0\x80\x80\xAF", 0, -1},     /* overlong */
    {"\xED\xA0\x80", 0, -1},         /* surrogate */
    {"\xF4\x90\x80\x80", 0, -1},     /* past U+10FFFF */
    {"\xF8\x88\x80\x80\x80", 0, -1}, /* 5 bytes */
    {"\x80", 0, -1},                 /* stray continuation */
    {"\xE6\x97", 0, -1},             /* cut */
    {"\xE6\x97\x41", 0, -1},         /* bad continuation */
};

START_TEST(test_utf8_length)
{
    const utf8_case *c = &utf8_cases[_i];
    size_t len = c->len ? c->len : strlen(c->s);

    ck_assert_int_eq(hs_utf8_length(c->s, len), c->expect);
}
END_TEST

/* ------------------------------------------------------------------ */

typedef struct {
    const char *in;
    const char *normalized; /* NULL: invalid */
    const char *reason;     /* NULL: valid */
} email_case;

#define OK(in, out)                                                            \
    {                                                                          \
        in, out, NULL                                                          \
    }
#define BAD(in, why)                                                           \
    {                                                                          \
        in, NULL, why                                                          \
    }

static const email_case email_cases[] = {
    OK("user@example.com", "user@example.com"),
    OK("user@example.net", "user@example.net"),
    OK("a@b.co", "a@b.co"),
    OK("User.Name+tag@Example.COM", "User.Name+tag@example.com"),
    OK("x!#$%&'*+-/=?^_`{|}~@example.com", "x!#$%&'*+-/=?^_`{|}~@example.com"),
    OK("ab--c@example.com", "ab--c@example.com"),
    OK("Postmaster@Example.com", "postmaster@example.com"),
    OK("INFO@example.com", "info@example.com"),
    OK("\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF"
       "\xE5\x91\x8A",
       "\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF"
       "\xE5\x91\x8A"),
    OK("jos\xC3\xA9@example.com", "jos\xC3\xA9@example.com"),
    /* NFC of the local part */
    OK("e\xCC\x81@example.com", "\xC3\xA9@example.com"),
    OK("user@b\xC3\xBC"
       "cher.de",
       "user@b\xC3\xBC"
       "cher.de"),
    OK("user@B\xC3\x9C"
       "CHER.de",
       "user@b\xC3\xBC"
       "cher.de"),
    OK("user@xn--bcher-kva.de", "user@b\xC3\xBC"
                                "cher.de"),
    /* sharp s is kept (non-transitional) */
    OK("user@stra\xC3\x9F"
       "e.de",
       "user@stra\xC3\x9F"
       "e.de"),
    /* full-width letters and the ideographic full stop */
    OK("user@\xEF\xBC\xA5\xEF\xBC\xB8\xEF\xBC\xA1\xEF\xBC\xAD\xEF\xBC\xB0"
       "\xEF\xBC\xAC\xEF\xBC\xA5.com",
       "user@example.com"),
    OK("user@example\xE3\x80\x82"
       "com",
       "user@example.com"),
    BAD("", "The email address is not valid. It must have exactly one "
            "@-sign."),
    BAD("userexample.com", "The email address is not valid. It must have "
                           "exactly one @-sign."),
    BAD("a@b@c.com", "The email address is not valid. It must have exactly "
                     "one @-sign."),
    BAD("@example.com", "There must be something before the @-sign."),
    BAD("@", "There must be something before the @-sign."),
    BAD("user@", "There must be something after the @-sign."),
    BAD(".user@example.com", "An email address cannot start with a period."),
    BAD("user.@example.com", "An email address cannot have a period "
                             "immediately before the @-sign."),
    BAD("us..er@example.com", "An email address cannot have two periods in "
                              "a row."),
    BAD("us er@example.com", "The email address contains invalid characters "
                             "before the @-sign: SPACE."),
    BAD("us\"er@example.com", "The email address contains invalid characters "
                              "before the @-sign: '\"'."),
    BAD("a(b)c@example.com", "The email address contains invalid characters "
                             "before the @-sign: '(', ')'."),
    BAD("a\\b@example.com", "The email address contains invalid characters "
                            "before the @-sign: \"\\\"."),
    BAD("user\t@example.com", "The email address contains invalid characters "
                              "before the @-sign: U+0009."),
    BAD("user@localhost", "The part after the @-sign is not valid. It should "
                          "have a period."),
    BAD("a@b", "The part after the @-sign is not valid. It should have a "
               "period."),
    BAD("user@foo.local", "The part after the @-sign is a special-use or "
                          "reserved name that cannot be used with email."),
    BAD("user@foo.test", "The part after the @-sign is a special-use or "
                         "reserved name that cannot be used with email."),
    BAD("user@foo.invalid", "The part after the @-sign is a special-use or "
                            "reserved name that cannot be used with email."),
    BAD("user@foo.onion", "The part after the @-sign is a special-use or "
                          "reserved name that cannot be used with email."),
    BAD("user@x.in-addr.arpa", "The part after the @-sign is a special-use or "
                               "reserved name that cannot be used with "
                               "email."),
    BAD("user@1.2.3.4", "The part after the @-sign is not valid. It is not "
                        "within a valid top-level domain."),
    BAD("user@foo.b1", "The part after the @-sign is not valid. It is not "
                       "within a valid top-level domain."),
    BAD("user@-foo.com", "An email address cannot have a hyphen immediately "
                         "after the @-sign."),
    BAD("user@foo.com-", "An email address cannot end with a hyphen."),
    BAD("user@foo-.com", "An email address cannot have a period and a "
                         "hyphen next to each other."),
    BAD("user@.foo.com", "An email address cannot have a period immediately "
                         "after the @-sign."),
    BAD("user@foo.com.", "An email address cannot end with a period."),
    BAD("user@foo..com", "An email address cannot have two periods in a "
                         "row."),
    BAD("user@ab--cd.com", "An email address cannot have two letters "
                           "followed by two dashes immediately after the "
                           "@-sign or after a period, except Punycode."),
    BAD("user@exa_mple.com", "The part after the @-sign contains invalid "
                             "characters: '_'."),
    BAD("user@exa mple.com", "The part after the @-sign contains invalid "
                             "characters: SPACE."),
    BAD("user@exa'mple.com", "The part after the @-sign contains invalid "
                             "characters: \"'\"."),
    BAD("user@example.com\n", "The part after the @-sign contains invalid "
                              "characters: U+000A."),
    BAD("\"quoted\"@example.com", "Quoting the part before the @-sign is not "
                                  "allowed here."),
    BAD("\"\"@example.com", "There must be something before the @-sign."),
    BAD("user@[1.2.3.4]", "A bracketed IP address after the @-sign is not "
                          "allowed here."),
    BAD("user@[IPv6:::1]", "A bracketed IP address after the @-sign is not "
                           "allowed here."),
    BAD("user@[300.1.1.1]", "The address in brackets after the @-sign is not "
                            "valid: It is not an IPv4 address (Octet 300 (> "
                            "255) not permitted in '300.1.1.1') or is "
                            "missing an address literal tag."),
    BAD("user@[foo]", "The part after the @-sign in brackets is not an IPv4 "
                      "address and has no address literal tag."),
    BAD("user@[x:y]", "The part after the @-sign contains an invalid address "
                      "literal tag in brackets."),
    BAD("\xCC\x81user@example.com", "The email address contains unsafe "
                                    "characters: COMBINING ACUTE ACCENT."),
    BAD("us\xE2\x80\x8B"
        "er@example.com",
        "The email address contains unsafe characters: ZERO WIDTH SPACE."),
    BAD("user@exa\xE2\x80\x8B"
        "mple.com",
        "The email address contains unsafe characters: ZERO WIDTH SPACE."),
    BAD("user@\xEE\x80\x80.com", "The email address contains unsafe "
                                 "characters: U+E000."),
    BAD("user@xn--abc.com", "The part after the @-sign is not valid IDNA "
                            "(Codepoint U+0082 at position 1 of "
                            "'\\x82\\x81\\x80' not allowed)."),
    BAD("user@\xF0\x9F\x92\xA9.la", "The part after the @-sign contains "
                                    "invalid characters (Codepoint U+1F4A9 "
                                    "at position 1 of '\xF0\x9F\x92\xA9' not "
                                    "allowed)."),
    BAD("user@a.xn--ls8h", "The part after the @-sign is not valid IDNA "
                           "(Codepoint U+1F4A9 at position 1 of "
                           "'\xF0\x9F\x92\xA9' not allowed)."),
    BAD("not valid utf-8 \xC3@example.com", "The email address contains an "
                                            "invalid character."),
    /* fuzz_email: the NFC form is checked again (email-validator 2.2) */
    BAD("victim+test\xCD\xBE"
        "attacker@example.com", /* U+037E GREEK QUESTION MARK -> ';' */
        "After Unicode normalization: The email address contains invalid "
        "characters before the @-sign: ';'."),
    BAD("\xCD\xBE@d.d", "After Unicode normalization: The email address "
                        "contains invalid characters before the @-sign: ';'."),
    OK("a\xE1\xBF\xAF"
       "b@example.com", /* U+1FEF GREEK VARIA -> '`', which is atext */
       "a`b@example.com"),
    /* U+212A KELVIN SIGN -> 'K': ASCII now, so the role name is lowered */
    OK("MAR\xE2\x84\xAA"
       "ETING@example.com",
       "marketing@example.com"),
};

START_TEST(test_email_table)
{
    const email_case *c = &email_cases[_i];
    const char *norm = "untouched";
    const char *why = hs_email_check(pool, c->in, strlen(c->in), &norm);

    if (c->reason) {
        ck_assert_msg(why != NULL, "case %d <%s> accepted as <%s>", _i, c->in,
                      norm);
        ck_assert_msg(strcmp(why, c->reason) == 0, "case %d <%s>: %s", _i,
                      c->in, why);
        ck_assert_ptr_null(norm);
    }
    else {
        ck_assert_msg(why == NULL, "case %d <%s>: %s", _i, c->in, why);
        ck_assert_str_eq(norm, c->normalized);
    }
}
END_TEST

START_TEST(test_email_lengths)
{
    const char *norm, *why, *s;

    s = apr_pstrcat(pool, repeat("x", 64), "@example.com", NULL);
    ck_assert_ptr_null(hs_email_check(pool, s, strlen(s), &norm));
    s = apr_pstrcat(pool, repeat("x", 65), "@example.com", NULL);
    ck_assert_str_eq(hs_email_check(pool, s, strlen(s), &norm),
                     "The email address is too long before the @-sign (1 "
                     "character too many).");
    s = apr_pstrcat(pool, repeat("x", 70), "@example.com", NULL);
    ck_assert_str_eq(hs_email_check(pool, s, strlen(s), &norm),
                     "The email address is too long before the @-sign (6 "
                     "characters too many).");
    /* NFC may lengthen: U+0958 becomes U+0915 U+093C */
    s = apr_pstrcat(pool, repeat("x", 63), "\xE0\xA5\x98@example.com", NULL);
    ck_assert_str_eq(hs_email_check(pool, s, strlen(s), &norm),
                     "After Unicode normalization: The email address is too "
                     "long before the @-sign (1 character too many).");
    /* 64 code points of CJK are fine before the @-sign */
    s = apr_pstrcat(pool, repeat("\xE7\x94\xA8", 64), "@example.com", NULL);
    ck_assert_ptr_null(hs_email_check(pool, s, strlen(s), &norm));
    /* but 257 bytes in all are not */
    s = apr_pstrcat(pool, repeat("\xE7\x94\xA8", 64), "@", repeat("b", 60),
                    ".com", NULL);
    why = hs_email_check(pool, s, strlen(s), &norm);
    ck_assert_str_eq(why, "The email address is too long (when encoded in "
                          "bytes).");

    /* 256 characters in all */
    s = apr_pstrcat(pool, repeat("a", 64), "@", repeat("b", 63), ".",
                    repeat("b", 63), ".", repeat("b", 59), ".com", NULL);
    ck_assert_str_eq(hs_email_check(pool, s, strlen(s), &norm),
                     "The email address is too long (2 characters too "
                     "many).");
    s = apr_pstrcat(pool, repeat("a", 60), "@", repeat("\xC3\xBC", 20), ".",
                    repeat("b", 63), ".", repeat("b", 63), ".", repeat("b", 40),
                    ".com", NULL);
    ck_assert_str_eq(hs_email_check(pool, s, strlen(s), &norm),
                     "The email address is too long (when converted to IDNA "
                     "ASCII).");
    /* labels */
    s = apr_pstrcat(pool, "a@", repeat("b", 63), ".com", NULL);
    ck_assert_ptr_null(hs_email_check(pool, s, strlen(s), &norm));
    s = apr_pstrcat(pool, "a@", repeat("b", 64), ".com", NULL);
    ck_assert_str_eq(hs_email_check(pool, s, strlen(s), &norm),
                     "After the @-sign, periods cannot be separated by so "
                     "many characters (1 character too many).");
    s = apr_pstrcat(pool, "x@", repeat("\xC3\xBC", 62), ".de", NULL);
    ck_assert_str_eq(hs_email_check(pool, s, strlen(s), &norm),
                     "The part after the @-sign contains invalid characters "
                     "(Label too long).");
}
END_TEST

START_TEST(test_email_embedded_nul)
{
    const char *norm;

    ck_assert_str_eq(hs_email_check(pool, "user\0@example.com", 17, &norm),
                     "The email address contains invalid characters before "
                     "the @-sign: U+0000.");
    ck_assert_str_eq(hs_email_check(pool, "user@exam\0ple.com", 17, &norm),
                     "The part after the @-sign contains invalid characters: "
                     "U+0000.");
    /* NULL normalized pointer is allowed */
    ck_assert_ptr_null(hs_email_check(pool, "a@b.co", 6, NULL));
}
END_TEST

/* ------------------------------------------------------------------ */
/* request models */

static json_object *parse(const char *body)
{
    hs_errors *e = hs_errors_make(pool);
    json_object *o = hs_json_parse_object(body, strlen(body), e);

    ck_assert_msg(o != NULL, "not an object: %s", hs_errors_render(e, pool));
    return hs_json_pool_own(pool, o);
}

/* hs_signup_req_read on body: the rendered errors, or "OK" */
static const char *signup(const char *body, hs_signup_req *req)
{
    hs_errors *e = hs_errors_make(pool);
    hs_signup_req tmp;
    int n = hs_signup_req_read(pool, parse(body), req ? req : &tmp, e);

    ck_assert_int_eq(n, hs_errors_count(e));
    return n ? hs_errors_render(e, pool) : "OK";
}

static const char *verify(const char *body, hs_verify_req *req)
{
    hs_errors *e = hs_errors_make(pool);
    hs_verify_req tmp;
    int n = hs_verify_req_read(pool, parse(body), req ? req : &tmp, e);

    ck_assert_int_eq(n, hs_errors_count(e));
    return n ? hs_errors_render(e, pool) : "OK";
}

#define ERR1(field, msg, type)                                                 \
    "{\"detail\":[{\"loc\":[\"body\",\"" field "\"],\"msg\":\"" msg            \
    "\",\"type\":\"" type "\"}]}"
#define STRING_TYPE(field)                                                     \
    ERR1(field, "Input should be a valid string", "string_type")

START_TEST(test_signup_valid)
{
    hs_signup_req r;

    ck_assert_str_eq(signup("{\"company_name\":\"Acme Corp\",\"email\":"
                            "\"User@Example.COM\",\"tenant_slug\":\"acme\","
                            "\"extra\":[1,{\"x\":null}]}",
                            &r),
                     "OK");
    ck_assert_str_eq(r.company_name, "Acme Corp");
    ck_assert_str_eq(r.email, "User@example.com");
    ck_assert_str_eq(r.plan, "starter");
    ck_assert_str_eq(r.tenant_slug, "acme");

    ck_assert_str_eq(signup("{\"company_name\":\"A\",\"email\":\" Jane Doe "
                            "<jane@example.net> \",\"tenant_slug\":\"t\","
                            "\"plan\":\"pro\"}",
                            &r),
                     "OK");
    ck_assert_str_eq(r.email, "jane@example.net");
    ck_assert_str_eq(r.plan, "pro");

    /* empty plan is allowed by the model (the plan lookup refuses it) */
    ck_assert_str_eq(signup("{\"company_name\":\"A\",\"email\":\"a@b.co\","
                            "\"tenant_slug\":\"t\",\"plan\":\"\"}",
                            &r),
                     "OK");
    ck_assert_str_eq(r.plan, "");
}
END_TEST

START_TEST(test_signup_all_errors_at_once)
{
    ck_assert_str_eq(
        signup("{}", NULL),
        "{\"detail\":[{\"loc\":[\"body\",\"company_name\"],\"msg\":\"Field "
        "required\",\"type\":\"missing\"},{\"loc\":[\"body\",\"email\"],"
        "\"msg\":\"Field required\",\"type\":\"missing\"},{\"loc\":[\"body\","
        "\"tenant_slug\"],\"msg\":\"Field required\",\"type\":\"missing\"}]}");

    ck_assert_str_eq(
        signup("{\"company_name\":\"\",\"email\":\"not-an-email\",\"plan\":"
               "null,\"tenant_slug\":7}",
               NULL),
        "{\"detail\":[{\"loc\":[\"body\",\"company_name\"],\"msg\":\"String "
        "should have at least 1 character\",\"type\":\"string_too_short\"},"
        "{\"loc\":[\"body\",\"email\"],\"msg\":\"value is not a valid email "
        "address: The email address is not valid. It must have exactly one "
        "@-sign.\",\"type\":\"value_error\"},{\"loc\":[\"body\",\"plan\"],"
        "\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
        "{\"loc\":[\"body\",\"tenant_slug\"],\"msg\":\"Input should be a "
        "valid string\",\"type\":\"string_type\"}]}");
}
END_TEST

START_TEST(test_signup_types)
{
    static const char *const values[] = {
        "1",    "1.5",     "null",
        "true", "false",   "{}",
        "[]",   "[\"x\"]", "123456789012345678901234567890"};
    size_t i;

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        const char *b = apr_psprintf(pool,
                                     "{\"company_name\":%s,\"email\":"
                                     "\"a@b.co\",\"tenant_slug\":\"t\"}",
                                     values[i]);

        ck_assert_str_eq(signup(b, NULL), STRING_TYPE("company_name"));
        b = apr_psprintf(pool,
                         "{\"company_name\":\"c\",\"email\":%s,"
                         "\"tenant_slug\":\"t\"}",
                         values[i]);
        ck_assert_str_eq(signup(b, NULL), STRING_TYPE("email"));
    }
}
END_TEST

START_TEST(test_signup_lengths)
{
    const char *jp200 = repeat("\xE6\x97\xA5", 200); /* 200 x U+65E5 */
    const char *jp201 = repeat("\xE6\x97\xA5", 201);
    hs_signup_req r;

    ck_assert_str_eq(signup(apr_psprintf(pool,
                                         "{\"company_name\":\"%s\",\"email\":"
                                         "\"a@b.co\",\"tenant_slug\":\"t\"}",
                                         jp200),
                            &r),
                     "OK");
    ck_assert_str_eq(r.company_name, jp200);
    ck_assert_str_eq(signup(apr_psprintf(pool,
                                         "{\"company_name\":\"%s\",\"email\":"
                                         "\"a@b.co\",\"tenant_slug\":\"t\"}",
                                         jp201),
                            NULL),
                     ERR1("company_name",
                          "String should have at most 200 characters",
                          "string_too_long"));
    /* escapes count as the characters they stand for */
    ck_assert_str_eq(signup(apr_psprintf(pool,
                                         "{\"company_name\":\"%s\",\"email\":"
                                         "\"a@b.co\",\"tenant_slug\":\"t\"}",
                                         repeat("\\u65e5", 200)),
                            &r),
                     "OK");
    ck_assert_str_eq(r.company_name, jp200);
    ck_assert_str_eq(signup(apr_psprintf(pool,
                                         "{\"company_name\":\"c\",\"email\":"
                                         "\"a@b.co\",\"tenant_slug\":\"%s\"}",
                                         repeat("s", 101)),
                            NULL),
                     ERR1("tenant_slug",
                          "String should have at most 100 characters",
                          "string_too_long"));
    ck_assert_str_eq(signup(apr_psprintf(pool,
                                         "{\"company_name\":\"c\",\"email\":"
                                         "\"a@b.co\",\"tenant_slug\":\"t\","
                                         "\"plan\":\"%s\"}",
                                         repeat("p", 51)),
                            NULL),
                     ERR1("plan", "String should have at most 50 characters",
                          "string_too_long"));
}
END_TEST

START_TEST(test_signup_nul_and_unicode)
{
    ck_assert_str_eq(
        signup("{\"company_name\":\"a\\u0000b\",\"email\":\"a@b.co\","
               "\"tenant_slug\":\"t\"}",
               NULL),
        ERR1("company_name",
             "Value error, String should not contain NUL characters",
             "value_error"));
    ck_assert_str_eq(signup("{\"company_name\":\"c\",\"email\":\"a\\u0000@b."
                            "co\",\"tenant_slug\":\"t\"}",
                            NULL),
                     ERR1("email",
                          "value is not a valid email address: The email "
                          "address contains invalid characters before the "
                          "@-sign: U+0000.",
                          "value_error"));
    ck_assert_str_eq(signup(apr_psprintf(pool,
                                         "{\"company_name\":\"c\",\"email\":"
                                         "\"%s@b.co\",\"tenant_slug\":\"t\"}",
                                         repeat("a", 2100)),
                            NULL),
                     ERR1("email",
                          "value is not a valid email address: Length must "
                          "not exceed 2048 characters",
                          "value_error"));
}
END_TEST

START_TEST(test_verify)
{
    hs_verify_req r;

    ck_assert_str_eq(verify("{\"code\":\"123456\",\"email\":\"user@example."
                            "com\",\"tenant_slug\":\"acme\"}",
                            &r),
                     "OK");
    ck_assert_str_eq(r.code, "123456");
    ck_assert_str_eq(r.email, "user@example.com");
    ck_assert_str_eq(r.tenant_slug, "acme");

    ck_assert_str_eq(verify("{\"code\":\"12345\",\"email\":\"a@b.co\","
                            "\"tenant_slug\":\"t\"}",
                            NULL),
                     ERR1("code", "String should have at least 6 characters",
                          "string_too_short"));
    ck_assert_str_eq(verify("{\"code\":\"1234567\",\"email\":\"a@b.co\","
                            "\"tenant_slug\":\"t\"}",
                            NULL),
                     ERR1("code", "String should have at most 6 characters",
                          "string_too_long"));
    ck_assert_str_eq(
        verify("{\"code\":123456,\"tenant_slug\":\"\"}", NULL),
        "{\"detail\":[{\"loc\":[\"body\",\"code\"],\"msg\":\"Input should be "
        "a valid string\",\"type\":\"string_type\"},{\"loc\":[\"body\","
        "\"email\"],\"msg\":\"Field required\",\"type\":\"missing\"},{\"loc\":"
        "[\"body\",\"tenant_slug\"],\"msg\":\"String should have at least 1 "
        "character\",\"type\":\"string_too_short\"}]}");
}
END_TEST

START_TEST(test_validate_string_direct)
{
    hs_errors *e = hs_errors_make(pool);
    json_object *o = parse("{\"a\":\"x\",\"n\":null}");

    ck_assert_str_eq(hs_validate_string(pool, o, "a", 1, 1, 1, NULL, e), "x");
    ck_assert_str_eq(hs_validate_string(pool, o, "zz", 0, 5, 0, "d", e), "d");
    ck_assert_ptr_null(hs_validate_string(pool, o, "zz", 0, 5, 0, NULL, e));
    ck_assert_int_eq(hs_errors_count(e), 0);
    ck_assert_ptr_null(hs_validate_string(pool, o, "n", 0, 5, 0, "d", e));
    ck_assert_ptr_null(hs_validate_string(pool, o, "a", 2, 5, 1, NULL, e));
    ck_assert_int_eq(hs_errors_count(e), 2);
    ck_assert_str_eq(
        hs_errors_render(e, pool),
        "{\"detail\":[{\"loc\":[\"body\",\"n\"],\"msg\":\"Input should be a "
        "valid string\",\"type\":\"string_type\"},{\"loc\":[\"body\",\"a\"],"
        "\"msg\":\"String should have at least 2 characters\",\"type\":"
        "\"string_too_short\"}]}");
}
END_TEST

/* the mail budget counts the mailbox, not its spelling */
START_TEST(test_mailbox)
{
    ck_assert_str_eq(hs_email_mailbox(pool, "a+1@x.example"), "a@x.example");
    ck_assert_str_eq(hs_email_mailbox(pool, "A+2@X.Example"), "a@x.example");
    ck_assert_str_eq(hs_email_mailbox(pool, "Alice@Example.com"),
                     "alice@example.com");
    ck_assert_str_eq(hs_email_mailbox(pool, "a++b+c@x.example"), "a@x.example");
    ck_assert_str_eq(hs_email_mailbox(pool, "\"a+b\"@x.example"),
                     "\"a+b\"@x.example");
    ck_assert_str_eq(hs_email_mailbox(pool, "x@a+b.example"), "x@a+b.example");
}
END_TEST

static Suite *validate_suite(void)
{
    const TTest *const tests[] = {
        test_email_lengths,          test_email_embedded_nul,
        test_signup_valid,           test_signup_all_errors_at_once,
        test_signup_types,           test_signup_lengths,
        test_signup_nul_and_unicode, test_verify,
        test_validate_string_direct, test_mailbox,
    };
    TCase *tc;
    Suite *s = hs_unit_suite("validate", "core", setup, teardown, 0, tests,
                             HS_UNIT_COUNT(tests), &tc);

    tcase_add_loop_test(tc, test_utf8_length, 0,
                        (int)(sizeof(utf8_cases) / sizeof(utf8_cases[0])));
    tcase_add_loop_test(tc, test_email_table, 0,
                        (int)(sizeof(email_cases) / sizeof(email_cases[0])));
    return s;
}

HS_UNIT_MAIN(validate_suite)
