/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_check.h - what the harnesses that keep state between inputs share
 * (fuzz_jwt.c, fuzz_keys.c): CHECK(), which aborts so that libFuzzer
 * reports the input, the libFuzzer entry points and the start-up of APR
 * with a pool of the harness. Include it once, from the harness.
 */
#ifndef HS_FUZZ_CHECK_H
#define HS_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Starts APR and creates the harness's pool, for LLVMFuzzerInitialize. */
static void hs_fuzz_start(apr_pool_t **pool)
{
    CHECK(apr_initialize() == APR_SUCCESS);
    CHECK(apr_pool_create(pool, NULL) == APR_SUCCESS);
}

#endif /* HS_FUZZ_CHECK_H */
