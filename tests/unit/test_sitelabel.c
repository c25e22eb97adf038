/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sitelabel.c - company name -> DNS label.
 */
#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <check.h>

#include "hs_sitelabel.h"
#define HS_UNIT_POOL_FIXTURE
#include "unit_main.h"

static const struct {
    const char *company;
    int n;
    const char *label;
} cases[] = {
    {"Acme Corp", 1, "acme-corp"},
    {"Acme Corp", 2, "acme-corp-2"},
    {"  --Acme--  Corp!! ", 0, "acme-corp"},
    {"ACME", 1, "acme"},
    {"Café Müller GmbH", 1, "cafe-muller-gmbh"},
    {"株式会社", 1, "site"},
    {"株式会社", 3, "site-3"},
    {"", 1, "site"},
    {"!!!", 1, "site"},
    {"Robert'); DROP TABLE customers;--", 1, "robert-drop-table-customers"},
    {"a1 b2 c3", 10, "a1-b2-c3-10"},
};

START_TEST(test_cases)
{
    const char *got = hs_site_label(pool, cases[_i].company, cases[_i].n);
    ck_assert_str_eq(got, cases[_i].label);
}
END_TEST

START_TEST(test_length_cap)
{
    char name[300];
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_uint_eq(strlen(hs_site_label(pool, name, 1)), 63);
    ck_assert_uint_eq(strlen(hs_site_label(pool, name, 12345)), 63);
    ck_assert_str_eq(hs_site_label(pool, name, 12345) + 57, "-12345");
    /* a cut that would end on '-' drops it */
    memset(name, 'y', 62);
    name[62] = ' ';
    strcpy(name + 63, "zzz");
    ck_assert_str_eq(hs_site_label(pool, name, 1) + 61, "y");
}
END_TEST

/* the counter key: the plain label cut to HS_LABEL_BASE_MAX, no '-' at
 * the end; short names keep their whole label */
START_TEST(test_base)
{
    char name[100];

    ck_assert_str_eq(hs_site_label_base(pool, "Acme Corp"), "acme-corp");
    ck_assert_str_eq(hs_site_label_base(pool, "!!!"), "site");
    memset(name, 'x', 80);
    name[80] = '\0';
    ck_assert_uint_eq(strlen(hs_site_label_base(pool, name)), 53);
    /* a cut at a '-' drops it */
    memset(name, 'y', 52);
    strcpy(name + 52, " zzzzzzzzzzzzzzzzzzzz");
    ck_assert_uint_eq(strlen(hs_site_label_base(pool, name)), 52);
    ck_assert_int_eq(hs_site_label_base(pool, name)[51], 'y');
}
END_TEST

/* every numbered label of a name, whatever the length of its number,
 * starts with the name's key, and differs from the name's other labels */
START_TEST(test_base_prefix)
{
    static const char *const names[] = {
        "Acme Corp",
        "Northwestern Regional Widget Manufacturing and Distribution "
        "Cooperative Society",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b c d e f g h i",
        "x"};
    static const int ns[] = {2,      9,       10,       99,        100,
                             999,    1000,    12345,    999999,    1000000,
                             123456, 9999999, 10000000, 999999999, 201};
    size_t i, j;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *base = hs_site_label_base(pool, names[i]);
        const char *plain = hs_site_label(pool, names[i], 1);
        for (j = 0; j < sizeof(ns) / sizeof(ns[0]); j++) {
            const char *label = hs_site_label(pool, names[i], ns[j]);
            char suffix[16];
            snprintf(suffix, sizeof(suffix), "-%d", ns[j]);
            ck_assert_msg(!strncmp(label, base, strlen(base)),
                          "%s does not start with %s", label, base);
            ck_assert_uint_le(strlen(label), HS_LABEL_MAX);
            ck_assert_str_eq(label + strlen(label) - strlen(suffix), suffix);
            ck_assert_str_ne(label, plain);
        }
    }
}
END_TEST

static Suite *sitelabel_suite(void)
{
    Suite *s = suite_create("sitelabel");
    TCase *tc = hs_unit_tcase(s, "core", setup, teardown, 0);
    tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_length_cap);
    tcase_add_test(tc, test_base);
    tcase_add_test(tc, test_base_prefix);
    return s;
}

HS_UNIT_MAIN(sitelabel_suite)
