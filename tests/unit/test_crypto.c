/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_crypto.c - unit tests for src/core/crypto.c (hs_crypto.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hs_crypto.h"
#define HS_UNIT_POOL_FIXTURE
#include "unit_main.h"

START_TEST(test_code_format_and_distribution)
{
    /* counts[position][digit] */
    int counts[HS_CODE_LEN][10];
    char code[HS_CODE_LEN + 1];
    int i, j, n = 10000;

    memset(counts, 0, sizeof counts);
    for (i = 0; i < n; i++) {
        memset(code, 'x', sizeof code);
        ck_assert_int_eq(hs_code_generate(code), 0);
        ck_assert_uint_eq(strlen(code), HS_CODE_LEN);
        for (j = 0; j < HS_CODE_LEN; j++) {
            ck_assert_msg(code[j] >= '0' && code[j] <= '9', "code %s", code);
            counts[j][code[j] - '0']++;
        }
    }
    /* Expected 1000 per cell, sd ~30: [850, 1150] is a 5-sigma band. */
    for (j = 0; j < HS_CODE_LEN; j++) {
        double chi2 = 0;

        for (i = 0; i < 10; i++) {
            double d = counts[j][i] - n / 10.0;

            ck_assert_msg(counts[j][i] > 850 && counts[j][i] < 1150,
                          "position %d digit %d seen %d times", j, i,
                          counts[j][i]);
            chi2 += d * d / (n / 10.0);
        }
        /* 9 degrees of freedom: P(chi2 > 40) < 1e-5 */
        ck_assert_msg(chi2 < 40.0, "position %d chi2 %.1f", j, chi2);
    }
}
END_TEST

START_TEST(test_codes_differ)
{
    apr_hash_t *seen = apr_hash_make(pool);
    char code[HS_CODE_LEN + 1];
    int i, dups = 0;

    /* 1000 draws from 10^6: ~0.5 collisions expected; many means broken. */
    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(hs_code_generate(code), 0);
        if (apr_hash_get(seen, code, APR_HASH_KEY_STRING) != NULL) {
            dups++;
        }
        apr_hash_set(seen, apr_pstrdup(pool, code), APR_HASH_KEY_STRING, "");
    }
    ck_assert_int_lt(dups, 6);
}
END_TEST

static void unhex(const char *hex, unsigned char *out, size_t *len)
{
    size_t i, n = strlen(hex) / 2;

    for (i = 0; i < n; i++) {
        unsigned int v;

        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    *len = n;
}

START_TEST(test_hmac_rfc4231)
{
    /* RFC 4231 test cases 1, 2 and 6 (key longer than the block) */
    unsigned char key[131], mac[HS_HMAC_LEN], want[HS_HMAC_LEN];
    size_t wl;
    const char *hex;

    memset(key, 0x0b, 20);
    hex = hs_hmac_sha256_hex(pool, key, 20, "Hi There", 8);
    ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e"
                          "9376c2e32cff7");

    hex = hs_hmac_sha256_hex(pool, (const unsigned char *)"Jefe", 4,
                             "what do ya want for nothing?", 28);
    ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d273983"
                          "9dec58b964ec3843");
    ck_assert_int_eq(hs_hmac_sha256((const unsigned char *)"Jefe", 4,
                                    "what do ya want for nothing?", 28, mac),
                     0);
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
          want, &wl);
    ck_assert_uint_eq(wl, HS_HMAC_LEN);
    ck_assert_int_eq(memcmp(mac, want, HS_HMAC_LEN), 0);

    memset(key, 0xaa, sizeof key);
    hex = hs_hmac_sha256_hex(pool, key, sizeof key,
                             "Test Using Larger Than Block-Size Key - Hash "
                             "Key First",
                             54);
    ck_assert_str_eq(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c514"
                          "0546040f0ee37f54");
}
END_TEST

START_TEST(test_hmac_empty)
{
    /* no key: refused (fail closed), never an HMAC under the empty key */
    unsigned char out[HS_HMAC_LEN];

    ck_assert_ptr_null(hs_hmac_sha256_hex(pool, NULL, 0, "x", 1));
    ck_assert_ptr_null(
        hs_hmac_sha256_hex(pool, (const unsigned char *)"k", 0, "x", 1));
    ck_assert_int_eq(hs_hmac_sha256(NULL, 0, "x", 1, out), -1);
}
END_TEST

START_TEST(test_sha256)
{
    ck_assert_str_eq(hs_sha256_hex(pool, "abc", 3),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff6"
                     "1f20015ad");
    ck_assert_str_eq(hs_sha256_hex(pool, "", 0),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991"
                     "b7852b855");
    ck_assert_str_eq(hs_sha256_hex(pool, NULL, 0),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991"
                     "b7852b855");
    ck_assert_str_eq(
        hs_sha256_hex(
            pool, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            56),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(test_uuid4)
{
    apr_hash_t *seen = apr_hash_make(pool);
    char u[37];
    int i, j;

    for (i = 0; i < 1000; i++) {
        memset(u, 'x', sizeof u);
        ck_assert_int_eq(hs_uuid4(u), 0);
        ck_assert_uint_eq(strlen(u), 36);
        for (j = 0; j < 36; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23) {
                ck_assert_int_eq(u[j], '-');
            }
            else {
                ck_assert_msg(isxdigit((unsigned char)u[j]) &&
                                  !isupper((unsigned char)u[j]),
                              "uuid %s", u);
            }
        }
        ck_assert_int_eq(u[14], '4');
        ck_assert_ptr_nonnull(strchr("89ab", u[19]));
        ck_assert_ptr_null(apr_hash_get(seen, u, APR_HASH_KEY_STRING));
        apr_hash_set(seen, apr_pstrdup(pool, u), APR_HASH_KEY_STRING, "");
    }
}
END_TEST

START_TEST(test_ct_equal)
{
    unsigned char a[32], b[32];

    memset(a, 0x5a, sizeof a);
    memcpy(b, a, sizeof b);
    ck_assert_int_eq(hs_ct_equal(a, b, sizeof a), 1);
    b[31] ^= 1;
    ck_assert_int_eq(hs_ct_equal(a, b, sizeof a), 0);
    b[31] ^= 1;
    b[0] ^= 0x80;
    ck_assert_int_eq(hs_ct_equal(a, b, sizeof a), 0);
    ck_assert_int_eq(hs_ct_equal(a, b, 0), 1);
    ck_assert_int_eq(hs_ct_equal("123456", "123456", 6), 1);
    ck_assert_int_eq(hs_ct_equal("123456", "123457", 6), 0);
}
END_TEST

static Suite *crypto_suite(void)
{
    const TTest *const tests[] = {
        test_code_format_and_distribution,
        test_codes_differ,
        test_hmac_rfc4231,
        test_hmac_empty,
        test_sha256,
        test_uuid4,
        test_ct_equal,
    };

    return hs_unit_suite("crypto", "core", setup, teardown, 120, tests,
                         HS_UNIT_COUNT(tests), NULL);
}

HS_UNIT_MAIN(crypto_suite)
