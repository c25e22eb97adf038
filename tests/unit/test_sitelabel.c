/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sitelabel.c - company name -> DNS label.
 */
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

static Suite *sitelabel_suite(void)
{
    Suite *s = suite_create("sitelabel");
    TCase *tc = hs_unit_tcase(s, "core", setup, teardown, 0);
    tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_length_cap);
    return s;
}

HS_UNIT_MAIN(sitelabel_suite)
