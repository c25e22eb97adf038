/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.c - the small secrets: verification codes, HMAC-SHA256, SHA-256,
 * UUIDv4 and constant-time comparison (see hs_crypto.h).
 *
 * OpenSSL 3 through non-deprecated APIs only; no global mutable state, every
 * context is made and freed per call, so all of it is thread-safe.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "hs_crypto.h"
#include "hs_util.h"

/* 10^HS_CODE_LEN */
#define HS_CODE_RANGE 1000000u
/* A failing CSPRNG or a broken sampler must not loop for ever: the chance
 * that 64 draws in a row are rejected is (967296 / 2^32)^64, i.e. never. */
#define HS_CODE_MAX_DRAWS 64

int hs_code_generate(char out[HS_CODE_LEN + 1])
{
    /* The largest multiple of 10^6 not above 2^32: values at or above it
     * are drawn again, so that every code is equally likely. */
    const uint64_t limit = (UINT64_C(1) << 32) / HS_CODE_RANGE * HS_CODE_RANGE;
    unsigned char b[4];
    uint32_t v = 0;
    int draws, i, rc = -1;

    for (draws = 0; draws < HS_CODE_MAX_DRAWS; draws++) {
        if (RAND_bytes(b, sizeof b) != 1) {
            ERR_clear_error();
            break;
        }
        v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
            (uint32_t)b[3];
        if (v < limit) {
            v %= HS_CODE_RANGE;
            for (i = HS_CODE_LEN - 1; i >= 0; i--) {
                out[i] = (char)('0' + v % 10);
                v /= 10;
            }
            out[HS_CODE_LEN] = '\0';
            rc = 0;
            break;
        }
    }
    OPENSSL_cleanse(b, sizeof b);
    OPENSSL_cleanse(&v, sizeof v);
    if (rc != 0) {
        out[0] = '\0';
    }
    return rc;
}

int hs_hmac_sha256(const unsigned char *key, size_t keylen, const void *msg,
                   size_t msglen, unsigned char out[HS_HMAC_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx = NULL;
    size_t outlen = 0;
    int rc = -1;

    /* fail closed: an HMAC under no key proves nothing (a configuration
     * that lost its secret must not run with an empty one) */
    if (key == NULL || keylen == 0) {
        return -1;
    }
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        goto done;
    }
    ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL) {
        goto done;
    }
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, keylen, params) != 1) {
        goto done;
    }
    if (msglen > 0 && EVP_MAC_update(ctx, msg, msglen) != 1) {
        goto done;
    }
    if (EVP_MAC_final(ctx, out, &outlen, HS_HMAC_LEN) != 1 ||
        outlen != HS_HMAC_LEN) {
        goto done;
    }
    rc = 0;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (rc != 0) {
        ERR_clear_error();
    }
    return rc;
}

const char *hs_hmac_sha256_hex(apr_pool_t *p, const unsigned char *key,
                               size_t keylen, const void *msg, size_t msglen)
{
    unsigned char mac[HS_HMAC_LEN];
    char *out;

    if (hs_hmac_sha256(key, keylen, msg, msglen, mac) != 0) {
        return NULL;
    }
    out = apr_palloc(p, 2 * HS_HMAC_LEN + 1);
    hs_hex_encode(out, mac, HS_HMAC_LEN);
    OPENSSL_cleanse(mac, sizeof mac);
    return out;
}

const char *hs_sha256_hex(apr_pool_t *p, const void *msg, size_t msglen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *out;

    if (EVP_Digest(msglen > 0 ? msg : "", msglen, md, &mdlen, EVP_sha256(),
                   NULL) != 1 ||
        mdlen != 32) {
        ERR_clear_error();
        return NULL;
    }
    out = apr_palloc(p, 2 * mdlen + 1);
    hs_hex_encode(out, md, mdlen);
    return out;
}

int hs_uuid4(char out[37])
{
    unsigned char b[16];
    size_t i, o = 0;

    if (RAND_bytes(b, sizeof b) != 1) {
        ERR_clear_error();
        out[0] = '\0';
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
    for (i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hs_hex_digit(b[i] >> 4, 0);
        out[o++] = hs_hex_digit(b[i], 0);
    }
    out[o] = '\0';
    return 0;
}

int hs_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0) {
        return 1;
    }
    return CRYPTO_memcmp(a, b, n) == 0;
}
