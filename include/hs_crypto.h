/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_crypto.h - the small secrets: verification codes from a CSPRNG, their
 * HMAC-SHA256 under the server's code secret, UUIDv4, constant-time compare,
 * SHA-256 hex (refresh jti at rest).
 *
 * httpd-free: APR and OpenSSL only.
 */
#ifndef HS_CRYPTO_H
#define HS_CRYPTO_H

#include <stddef.h>

#include <apr_pools.h>

#define HS_CODE_LEN 6
#define HS_HMAC_LEN 32

/* Six decimal digits, uniform (rejection sampling, no modulo bias), NUL
 * terminated. 0 on success, -1 if the CSPRNG failed. */
int hs_code_generate(char out[HS_CODE_LEN + 1]);

/* HMAC-SHA256(key, msg) through EVP_MAC. 0 on success, -1 on failure. */
int hs_hmac_sha256(const unsigned char *key, size_t keylen, const void *msg,
                   size_t msglen, unsigned char out[HS_HMAC_LEN]);

/* Lower-case hex of HMAC-SHA256(key, msg) in p, or NULL on failure. */
const char *hs_hmac_sha256_hex(apr_pool_t *p, const unsigned char *key,
                               size_t keylen, const void *msg, size_t msglen);

/* Lower-case hex of SHA-256(msg) in p, or NULL on failure. */
const char *hs_sha256_hex(apr_pool_t *p, const void *msg, size_t msglen);

/* Random (version 4) UUID, lower-case, 36 chars + NUL. 0 ok, -1 failure. */
int hs_uuid4(char out[37]);

/* 1 when a and b (both n bytes) are equal, compared in constant time. */
int hs_ct_equal(const void *a, const void *b, size_t n);

#endif /* HS_CRYPTO_H */
