/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jwt.c - libFuzzer harness for src/core/jwt.c.
 *
 * Each input is used three ways:
 *   - as a DER ECDSA-Sig-Value for hs_ecdsa_der_to_raw (n = 32 and an n
 *     taken from the input); whatever it accepts must be the one DER
 *     encoding of the R||S it returns (re-encoded by OpenSSL);
 *   - as claims JSON (up to the first NUL) signed with a fixed HS256 key
 *     and an ES256 key generated at start-up; the tokens must split into
 *     three base64url parts, carry the claims bytes and verify;
 *   - as bytes for hs_b64url, checked against APR's decoder.
 *
 * Built and run by `make fuzz-build` / `make fuzz` (fuzz/README.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_encode.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "hs_crypto.h"
#include "hs_jwt.h"

#include "fuzz_check.h"

/* Debian's APR takes pool memory from mmap, which LeakSanitizer does not
 * scan: the start-up keys, referenced only from pool memory, would look
 * leaked. Their allocations are excluded; every per-input allocation is
 * still checked. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HS_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) /* gcc's spelling (the make check replay) */
#define HS_LSAN 1
#endif
#ifdef HS_LSAN
#include <sanitizer/lsan_interface.h>
#endif
#ifndef HS_LSAN
#define __lsan_disable()
#define __lsan_enable()
#endif

static apr_pool_t *g_pool;
static hs_jwt_key *g_hs;
static hs_jwt_key *g_es;
static EVP_PKEY *g_es_pkey;
static unsigned char g_secret[32];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    BIO *bio;
    char *pem;
    long pemlen;
    size_t i;
    const char *err;

    (void)argc;
    (void)argv;
    hs_fuzz_start(&g_pool);
    __lsan_disable();
    for (i = 0; i < sizeof g_secret; i++) {
        g_secret[i] = (unsigned char)(i * 7 + 1);
    }
    err = hs_jwt_key_from_secret(g_pool, g_secret, sizeof g_secret, &g_hs);
    CHECK(err == NULL);

    g_es_pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(g_es_pkey != NULL);
    bio = BIO_new(BIO_s_mem());
    CHECK(bio != NULL);
    CHECK(PEM_write_bio_PrivateKey(bio, g_es_pkey, NULL, NULL, 0, NULL, NULL) ==
          1);
    pemlen = BIO_get_mem_data(bio, &pem);
    err = hs_jwt_key_from_pem(g_pool, HS_JWT_ES256, pem, (size_t)pemlen, &g_es);
    BIO_free(bio);
    CHECK(err == NULL);
    __lsan_enable();
    return 0;
}

/* The DER that OpenSSL writes for R||S (each n bytes), or -1. */
static int raw_to_der(const unsigned char *raw, size_t n, unsigned char **der)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)n, NULL);
    BIGNUM *s = BN_bin2bn(raw + n, (int)n, NULL);
    int len;

    CHECK(sig != NULL && r != NULL && s != NULL);
    CHECK(ECDSA_SIG_set0(sig, r, s) == 1);
    len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return len;
}

static void check_der(const uint8_t *data, size_t size, size_t n)
{
    unsigned char *out = malloc(2 * n), *der = NULL;

    CHECK(out != NULL);
    if (hs_ecdsa_der_to_raw(data, size, out, n) == 0) {
        int len = raw_to_der(out, n, &der);

        CHECK(len > 0 && (size_t)len == size && memcmp(der, data, size) == 0);
        OPENSSL_free(der);
    }
    CHECK(ERR_peek_error() == 0);
    free(out);
}

static const unsigned char *b64d(apr_pool_t *p, const char *s, size_t len,
                                 apr_size_t *outlen)
{
    return apr_pdecode_base64_binary(p, s, (apr_ssize_t)len,
                                     APR_ENCODE_BASE64URL, outlen);
}

/* Splits token, checks header/payload, returns the signing input and the
 * decoded signature. */
static const char *check_token(apr_pool_t *p, const char *token,
                               const char *claims, const char *alg,
                               const unsigned char **sig, apr_size_t *siglen)
{
    const char *d1 = strchr(token, '.'), *d2;
    const unsigned char *h, *pl;
    apr_size_t hlen, plen;
    const char *want;

    CHECK(d1 != NULL);
    d2 = strchr(d1 + 1, '.');
    CHECK(d2 != NULL && strchr(d2 + 1, '.') == NULL);
    CHECK(strpbrk(token, "=+/") == NULL);
    h = b64d(p, token, (size_t)(d1 - token), &hlen);
    pl = b64d(p, d1 + 1, (size_t)(d2 - d1 - 1), &plen);
    *sig = b64d(p, d2 + 1, strlen(d2 + 1), siglen);
    CHECK(h != NULL && pl != NULL && *sig != NULL);
    want = apr_psprintf(p, "{\"alg\":\"%s\",\"typ\":\"JWT\"", alg);
    CHECK(hlen > strlen(want) && memcmp(h, want, strlen(want)) == 0);
    CHECK(plen == strlen(claims) && memcmp(pl, claims, plen) == 0);
    return apr_pstrmemdup(p, token, (apr_size_t)(d2 - token));
}

static void check_sign(apr_pool_t *p, const char *claims)
{
    const char *token, *input, *err = NULL;
    const unsigned char *sig;
    apr_size_t siglen;
    unsigned char mac[HS_HMAC_LEN], *der = NULL;
    EVP_MD_CTX *ctx;
    int derlen;

    token = hs_jwt_sign(p, g_hs, claims, &err);
    CHECK(token != NULL);
    input = check_token(p, token, claims, "HS256", &sig, &siglen);
    CHECK(hs_hmac_sha256(g_secret, sizeof g_secret, input, strlen(input),
                         mac) == 0);
    CHECK(siglen == sizeof mac && memcmp(sig, mac, siglen) == 0);

    token = hs_jwt_sign(p, g_es, claims, &err);
    CHECK(token != NULL);
    input = check_token(p, token, claims, "ES256", &sig, &siglen);
    CHECK(siglen == 64);
    derlen = raw_to_der(sig, 32, &der);
    CHECK(derlen > 0);
    ctx = EVP_MD_CTX_new();
    CHECK(ctx != NULL);
    CHECK(EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, g_es_pkey,
                                  NULL) == 1);
    CHECK(EVP_DigestVerify(ctx, der, (size_t)derlen,
                           (const unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    char *claims;
    const char *b;

    check_der(data, size, 32);
    if (size > 0) {
        check_der(data, size, (size_t)(data[size - 1] % 48) + 1);
    }

    CHECK(apr_pool_create(&p, g_pool) == APR_SUCCESS);
    /* the claims end at the first NUL, as any C string does */
    claims = apr_pstrmemdup(p, (const char *)data, size);
    check_sign(p, claims);

    b = hs_b64url(p, data, size);
    CHECK(b != NULL &&
          strlen(b) == size / 3 * 4 + (size % 3 ? size % 3 + 1 : 0));
    if (size > 0) {
        apr_size_t backlen;
        const unsigned char *back = b64d(p, b, strlen(b), &backlen);

        CHECK(back != NULL && backlen == size && memcmp(back, data, size) == 0);
    }
    apr_pool_destroy(p);
    return 0;
}
