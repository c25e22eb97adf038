/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_jwt.h - portal tokens: JWS compact serialisation (RFC 7515/7519) signed
 * with OpenSSL 3 (HS256 through EVP_MAC; RS256, ES256 and EdDSA/Ed25519
 * through EVP_DigestSign), keys loaded once at configuration time, and the
 * public JWK / JWKS (RFC 7517, RFC 7638 thumbprint as the default kid).
 *
 * httpd-free: APR, OpenSSL and json-c only.
 */
#ifndef HS_JWT_H
#define HS_JWT_H

#include <stddef.h>

#include <apr_pools.h>

typedef enum {
    HS_JWT_HS256 = 0,
    HS_JWT_RS256,
    HS_JWT_ES256,
    HS_JWT_EDDSA
} hs_jwt_alg;

typedef struct hs_jwt_key hs_jwt_key;

/* "HS256", "RS256", "ES256", "EdDSA" (exact case) -> alg; 0 ok, -1 unknown. */
int hs_jwt_alg_parse(const char *name, hs_jwt_alg *alg);
const char *hs_jwt_alg_name(hs_jwt_alg alg);

/*
 * Loads the key for alg from path, owned by p (a pool cleanup frees the
 * OpenSSL objects). HS256: the file's bytes (one trailing newline trimmed)
 * must be at least 32 bytes. Others: a PEM private key whose type matches
 * alg (RSA >= 2048 bits for RS256, P-256 for ES256, Ed25519 for EdDSA).
 * Returns NULL on success, else a message for the operator that names the
 * path and never holds key material, e.g. "cannot read /x: No such file or
 * directory" or "/x: key is not an EC P-256 key (found RSA 2048-bit); ES256
 * needs P-256". HS256 refuses a file that starts (after whitespace) with
 * "-----BEGIN" (a PEM key is not a secret); encrypted PEM keys are refused
 * (never prompts). The kid defaults to the RFC 7638 thumbprint (none for
 * HS256).
 */
const char *hs_jwt_key_load(apr_pool_t *p, hs_jwt_alg alg, const char *path,
                            hs_jwt_key **key);

/* HS256 key from len secret bytes (copied into p, wiped by a pool cleanup);
 * at least 32 bytes. NULL on success, else a message. */
const char *hs_jwt_key_from_secret(apr_pool_t *p, const unsigned char *bytes,
                                   size_t len, hs_jwt_key **key);

/* As hs_jwt_key_load for RS256/ES256/EdDSA, from PEM text in memory (len
 * bytes, need not be NUL terminated); messages say "key" for the path. */
const char *hs_jwt_key_from_pem(apr_pool_t *p, hs_jwt_alg alg, const char *pem,
                                size_t len, hs_jwt_key **key);

/* EdDSA key from a raw 32-byte Ed25519 private key (RFC 8032 seed, the
 * JWK "d"). NULL on success, else a message. */
const char *hs_jwt_key_from_ed25519_seed(apr_pool_t *p,
                                         const unsigned char seed[32],
                                         hs_jwt_key **key);

hs_jwt_alg hs_jwt_key_alg(const hs_jwt_key *key);
/* kid or NULL (HS256 without a configured kid). */
const char *hs_jwt_key_kid(const hs_jwt_key *key);
/* Overrides the kid (string copied into the key's pool); NULL restores the
 * default. Configuration time only: not safe while other threads sign. */
void hs_jwt_key_set_kid(hs_jwt_key *key, const char *kid);

/*
 * Signs: header {"alg":..,"typ":"JWT"[,"kid":..]} . claims_json (already
 * serialised JSON object) -> compact "h.p.s" in p. Returns NULL and sets
 * *err on failure. Every OpenSSL object is freed on every path.
 */
const char *hs_jwt_sign(apr_pool_t *p, const hs_jwt_key *key,
                        const char *claims_json, const char **err);

/*
 * Signs the JWS signing input (len bytes, "b64(header).b64(payload)") and
 * returns the base64url signature in p: HMAC-SHA256, RSASSA-PKCS1-v1_5 with
 * SHA-256, ECDSA P-256 SHA-256 as 64 bytes R||S, or Ed25519. Returns NULL
 * and sets *err (if err is not NULL) on failure. Safe to call from several
 * threads with one key.
 */
const char *hs_jws_sign_input(apr_pool_t *p, const hs_jwt_key *key,
                              const char *signing_input, size_t len,
                              const char **err);

/* Public JWK as a JSON object string ({"kty":..,"kid":..,"alg":..,"use":"sig",
 * ...}), or NULL for HS256. */
const char *hs_jwt_public_jwk(apr_pool_t *p, const hs_jwt_key *key);

/* base64url without padding, in p. */
const char *hs_b64url(apr_pool_t *p, const unsigned char *data, size_t len);

/*
 * DER ECDSA-Sig-Value -> raw R||S into out (2 * n bytes), each left-padded
 * to n bytes (32 for P-256). Returns 0 on success, -1 when der is not a
 * strict DER signature (BER forms, trailing bytes, zero or negative
 * components are refused) or a component is longer than n.
 */
int hs_ecdsa_der_to_raw(const unsigned char *der, size_t der_len,
                        unsigned char *out, size_t n);

#endif /* HS_JWT_H */
