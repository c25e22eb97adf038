/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unit_main.h - what every Check unit test of the core shares: its test
 * cases made one way, a whole file read into a pool, the fixture of a file
 * that needs just a pool (define HS_UNIT_POOL_FIXTURE first), and main():
 * APR up, the suite run with Check's normal output, exit status 1 on a
 * failure. scripts/test.sh counts the checks from the TAP that Check
 * writes to stdout when CK_TAP_LOG_FILE_NAME=- is set. Include it once,
 * before the tests, in a file that links APR.
 */
#ifndef HS_UNIT_MAIN_H
#define HS_UNIT_MAIN_H

#include <stdio.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <check.h>

#ifdef HS_UNIT_POOL_FIXTURE
static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
}
#endif

/* A test case named name in s, with the fixture (when setup is not NULL)
 * run around each test, and a timeout in seconds (0: Check's default). */
static inline TCase *hs_unit_tcase(Suite *s, const char *name, SFun setup_fn,
                                   SFun teardown_fn, double timeout)
{
    TCase *tc = tcase_create(name);

    if (setup_fn != NULL) {
        tcase_add_checked_fixture(tc, setup_fn, teardown_fn);
    }
    if (timeout > 0) {
        tcase_set_timeout(tc, timeout);
    }
    suite_add_tcase(s, tc);
    return tc;
}

/* A suite name of one test case tcname (as hs_unit_tcase makes it) that
 * runs tests[0..n); *tc_out (unless NULL) gets the test case, for loop
 * tests. */
static inline Suite *hs_unit_suite(const char *name, const char *tcname,
                                   SFun setup_fn, SFun teardown_fn,
                                   double timeout, const TTest *const *tests,
                                   size_t n, TCase **tc_out)
{
    Suite *s = suite_create(name);
    TCase *tc = hs_unit_tcase(s, tcname, setup_fn, teardown_fn, timeout);
    size_t i;

    for (i = 0; i < n; i++) {
        tcase_add_test(tc, tests[i]);
    }
    if (tc_out != NULL) {
        *tc_out = tc;
    }
    return s;
}

#define HS_UNIT_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The rest of f (open, read from its start) in p, NUL-terminated; *len
 * gets its length. Fails the test when it cannot be read. */
static inline char *hs_unit_slurp(apr_pool_t *p, FILE *f, size_t *len)
{
    char *buf;
    long n;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    buf = apr_palloc(p, (size_t)n + 1);
    ck_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static int hs_unit_run(Suite *s)
{
    SRunner *sr;
    int failures;

    apr_initialize();
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failures ? 1 : 0;
}

#define HS_UNIT_MAIN(suite_fn)                                                 \
    int main(void)                                                             \
    {                                                                          \
        return hs_unit_run(suite_fn());                                        \
    }

#endif /* HS_UNIT_MAIN_H */
