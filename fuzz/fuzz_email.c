/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_email.c - libFuzzer harness for hs_email_check: never crash, and a
 * valid address normalises to a valid address that normalises to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <apr_pools.h>

#include "fuzz_apr.h"

#include "hs_validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *norm = NULL, *norm2 = NULL, *why;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return 0;
    }
    why = hs_email_check(p, (const char *)data, size, &norm);
    if (why == NULL) {
        if (norm == NULL || hs_utf8_length(norm, strlen(norm)) < 0) {
            __builtin_trap();
        }
        /* idempotent: the stored form is accepted and kept as it is */
        if (hs_email_check(p, norm, strlen(norm), &norm2) != NULL ||
            strcmp(norm, norm2) != 0) {
            __builtin_trap();
        }
    }
    else if (norm != NULL || *why == '\0') {
        __builtin_trap();
    }
    apr_pool_destroy(p);
    return 0;
}
