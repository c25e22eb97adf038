/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_apr.h - the libFuzzer entry points and the start-up of a harness
 * that needs APR and nothing else. Include it once, from the harness.
 */
#ifndef HS_FUZZ_APR_H
#define HS_FUZZ_APR_H

#include <stddef.h>
#include <stdint.h>

#include <apr_general.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    return 0;
}

#endif /* HS_FUZZ_APR_H */
