/*
 * unit_main.h - the main() every Check unit test shares: APR up, the
 * suite run with Check's normal output, exit status 1 on a failure.
 * scripts/test.sh counts the checks from the TAP that Check writes to
 * stdout when CK_TAP_LOG_FILE_NAME=- is set.
 * Include it once, after the suite function, in a file that links APR.
 */
#ifndef HS_UNIT_MAIN_H
#define HS_UNIT_MAIN_H

#include <apr_general.h>
#include <check.h>

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
