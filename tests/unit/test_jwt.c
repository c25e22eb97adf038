/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_jwt.c - unit tests for src/core/jwt.c (hs_jwt.h): RFC 7515 A.1 and
 * RFC 8037 A.3/A.4 known answers, RS256/ES256/EdDSA sign + verify with
 * OpenSSL's own verifier, JWK members and RFC 7638 thumbprints, key loading
 * and its refusals, the DER -> R||S conversion and base64url.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw flags */
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <apr_encode.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include <json-c/json.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "hs_crypto.h"
#include "hs_jwt.h"
#include "unit_main.h"

static apr_pool_t *pool;
static char tmpdir[64];

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
    strcpy(tmpdir, "/tmp/test_jwt.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    apr_pool_destroy(pool);
    pool = NULL;
}

/* ---- helpers ------------------------------------------------------------ */

static const char *write_file(const char *name, const void *data, size_t len)
{
    const char *path = apr_pstrcat(pool, tmpdir, "/", name, NULL);
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static const unsigned char *b64d(const char *s, apr_size_t *len)
{
    const unsigned char *r = apr_pdecode_base64_binary(
        pool, s, APR_ENCODE_STRING, APR_ENCODE_BASE64URL, len);

    ck_assert_msg(r != NULL, "cannot decode %s", s);
    return r;
}

/* Independent base64url (APR's), for comparisons. */
static const char *b64e(const unsigned char *d, size_t len)
{
    return apr_pencode_base64_binary(pool, d, (apr_ssize_t)len,
                                     APR_ENCODE_BASE64URL, NULL);
}

static EVP_PKEY *gen(const char *type, const char *arg)
{
    EVP_PKEY *k;

    if (strcmp(type, "RSA") == 0) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(arg));
    }
    else if (strcmp(type, "EC") == 0) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", arg);
    }
    else {
        k = EVP_PKEY_Q_keygen(NULL, NULL, type);
    }
    ck_assert_ptr_nonnull(k);
    return k;
}

/* PEM of pkey: PKCS#8 (how = 0), traditional (1), encrypted PKCS#8 (2),
 * public key only (3). */
static const char *pem_of(EVP_PKEY *pkey, int how)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;
    const char *r;
    int ok;

    ck_assert_ptr_nonnull(bio);
    switch (how) {
        case 1:
            ok = PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0,
                                                      NULL, NULL);
            break;
        case 2:
            ok = PEM_write_bio_PrivateKey(bio, pkey, EVP_aes_256_cbc(),
                                          (const unsigned char *)"pass", 4,
                                          NULL, NULL);
            break;
        case 3:
            ok = PEM_write_bio_PUBKEY(bio, pkey);
            break;
        default:
            ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    }
    ck_assert_int_eq(ok, 1);
    len = BIO_get_mem_data(bio, &data);
    r = apr_pstrmemdup(pool, data, (apr_size_t)len);
    BIO_free(bio);
    return r;
}

static const char *key_file(const char *name, EVP_PKEY *pkey, int how)
{
    const char *pem = pem_of(pkey, how);

    return write_file(name, pem, strlen(pem));
}

static hs_jwt_key *load_ok(hs_jwt_alg alg, const char *path)
{
    hs_jwt_key *key = NULL;
    const char *err = hs_jwt_key_load(pool, alg, path, &key);

    ck_assert_msg(err == NULL, "load %s: %s", path, err);
    ck_assert_ptr_nonnull(key);
    ck_assert_int_eq(hs_jwt_key_alg(key), alg);
    return key;
}

static void load_fails(hs_jwt_alg alg, const char *path, const char *want)
{
    hs_jwt_key *key = NULL;
    const char *err = hs_jwt_key_load(pool, alg, path, &key);

    ck_assert_msg(err != NULL, "load %s succeeded", path);
    ck_assert_msg(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
    ck_assert_msg(strstr(err, path) != NULL, "'%s' lacks the path", err);
    ck_assert_ptr_null(key);
    ck_assert_int_eq(ERR_peek_error(), 0);
}

typedef struct {
    const char *input; /* "h.p" */
    const char *header;
    const char *payload;
    const unsigned char *sig;
    apr_size_t siglen;
} parts;

static parts split(const char *token)
{
    parts r;
    const char *d1 = strchr(token, '.'), *d2;
    apr_size_t len;

    ck_assert_ptr_nonnull(d1);
    d2 = strchr(d1 + 1, '.');
    ck_assert_ptr_nonnull(d2);
    ck_assert_ptr_null(strchr(d2 + 1, '.'));
    ck_assert_msg(strpbrk(token, "=+/ \n") == NULL, "token %s", token);
    r.input = apr_pstrmemdup(pool, token, (apr_size_t)(d2 - token));
    r.header = (const char *)b64d(
        apr_pstrmemdup(pool, token, (apr_size_t)(d1 - token)), &len);
    r.payload = (const char *)b64d(
        apr_pstrmemdup(pool, d1 + 1, (apr_size_t)(d2 - d1 - 1)), &len);
    r.sig = b64d(d2 + 1, &r.siglen);
    return r;
}

/* R||S (64 bytes) -> DER, for OpenSSL's verifier. */
static unsigned char *raw_to_der(const unsigned char *raw, int *derlen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    unsigned char *der = NULL;

    ck_assert_ptr_nonnull(sig);
    ck_assert_int_eq(ECDSA_SIG_set0(sig, r, s), 1);
    *derlen = i2d_ECDSA_SIG(sig, &der);
    ck_assert_int_gt(*derlen, 0);
    ECDSA_SIG_free(sig);
    return der;
}

/* 1 when sig over input verifies under pkey as alg. */
static int verify(EVP_PKEY *pkey, hs_jwt_alg alg, const char *input,
                  const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    int derlen = 0, ok;

    if (ctx == NULL) {
        return 0;
    }
    if (alg == HS_JWT_ES256) {
        if (siglen != 64) {
            EVP_MD_CTX_free(ctx);
            return 0;
        }
        der = raw_to_der(sig, &derlen);
        sig = der;
        siglen = (size_t)derlen;
    }
    ok = EVP_DigestVerifyInit_ex(ctx, NULL,
                                 alg == HS_JWT_EDDSA ? NULL : "SHA256", NULL,
                                 NULL, pkey, NULL) == 1 &&
         EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input,
                          strlen(input)) == 1;
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* RFC 7638 thumbprint of a JWK string, computed from its parsed members. */
static const char *thumbprint_of(const char *jwk)
{
    json_object *o = json_tokener_parse(jwk), *v;
    const char *kty, *canon;
    unsigned char md[32];
    size_t mdlen = 0;

#define M(name)                                                                \
    (json_object_object_get_ex(o, name, &v)                                    \
         ? apr_pstrdup(pool, json_object_get_string(v))                        \
         : "")
    ck_assert_ptr_nonnull(o);
    kty = M("kty");
    if (strcmp(kty, "RSA") == 0) {
        canon =
            apr_psprintf(pool, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
                         M("e"), M("n"));
    }
    else if (strcmp(kty, "EC") == 0) {
        canon = apr_psprintf(pool,
                             "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\","
                             "\"y\":\"%s\"}",
                             M("crv"), M("x"), M("y"));
    }
    else {
        canon =
            apr_psprintf(pool, "{\"crv\":\"%s\",\"kty\":\"%s\",\"x\":\"%s\"}",
                         M("crv"), kty, M("x"));
    }
#undef M
    json_object_put(o);
    ck_assert_int_eq(
        EVP_Q_digest(NULL, "SHA256", NULL, canon, strlen(canon), md, &mdlen),
        1);
    return b64e(md, mdlen);
}

static const char *jwk_member(const char *jwk, const char *name)
{
    json_object *o = json_tokener_parse(jwk), *v;
    const char *r = NULL;

    ck_assert_ptr_nonnull(o);
    if (json_object_object_get_ex(o, name, &v)) {
        ck_assert(json_object_is_type(v, json_type_string));
        r = apr_pstrdup(pool, json_object_get_string(v));
    }
    json_object_put(o);
    return r;
}

/* Signs claims with key, checks the header and payload bytes and the
 * signature under pkey; returns the token. */
static const char *sign_and_check(hs_jwt_key *key, EVP_PKEY *pkey,
                                  const char *claims)
{
    const char *err = NULL, *token, *want;
    const char *kid = hs_jwt_key_kid(key);
    parts t;
    char *bad;

    token = hs_jwt_sign(pool, key, claims, &err);
    ck_assert_msg(token != NULL, "sign: %s", err);
    t = split(token);
    want = kid != NULL
               ? apr_psprintf(pool,
                              "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                              hs_jwt_alg_name(hs_jwt_key_alg(key)), kid)
               : apr_psprintf(pool, "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
                              hs_jwt_alg_name(hs_jwt_key_alg(key)));
    ck_assert_str_eq(t.header, want);
    ck_assert_str_eq(t.payload, claims);
    ck_assert_msg(verify(pkey, hs_jwt_key_alg(key), t.input, t.sig, t.siglen),
                  "signature of %s does not verify", token);
    /* and a changed input does not */
    bad = apr_pstrdup(pool, t.input);
    bad[strlen(bad) - 1] ^= 1;
    ck_assert(!verify(pkey, hs_jwt_key_alg(key), bad, t.sig, t.siglen));
    return token;
}

/* ---- algorithm names and base64url ----------------------------------------
 */

START_TEST(test_alg_names)
{
    static const char *const names[] = {"HS256", "RS256", "ES256", "EdDSA"};
    hs_jwt_alg a;
    int i;

    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(hs_jwt_alg_parse(names[i], &a), 0);
        ck_assert_int_eq(a, i);
        ck_assert_str_eq(hs_jwt_alg_name(a), names[i]);
    }
    ck_assert_int_eq(hs_jwt_alg_parse("hs256", &a), -1);
    ck_assert_int_eq(hs_jwt_alg_parse("EDDSA", &a), -1);
    ck_assert_int_eq(hs_jwt_alg_parse("none", &a), -1);
    ck_assert_int_eq(hs_jwt_alg_parse("", &a), -1);
    ck_assert_int_eq(hs_jwt_alg_parse(NULL, &a), -1);
    ck_assert_ptr_null(hs_jwt_alg_name((hs_jwt_alg)4));
}
END_TEST

START_TEST(test_b64url_vectors)
{
    /* RFC 4648 section 10, without padding */
    static const char *const in[] = {"",     "f",     "fo",    "foo",
                                     "foob", "fooba", "foobar"};
    static const char *const out[] = {"",       "Zg",      "Zm8",     "Zm9v",
                                      "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    static const unsigned char url[] = {0xfb, 0xff, 0xbf};
    unsigned char all[256];
    int i;

    for (i = 0; i < 7; i++) {
        ck_assert_str_eq(
            hs_b64url(pool, (const unsigned char *)in[i], strlen(in[i])),
            out[i]);
    }
    ck_assert_str_eq(hs_b64url(pool, NULL, 0), "");
    /* the URL alphabet: "+/" become "-_" */
    ck_assert_str_eq(hs_b64url(pool, url, 2), "-_8");
    ck_assert_str_eq(hs_b64url(pool, url, 3), "-_-_");
    for (i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
    }
    for (i = 0; i <= 256; i++) {
        ck_assert_str_eq(hs_b64url(pool, all, (size_t)i), b64e(all, (size_t)i));
    }
}
END_TEST

/* ---- HS256 ----------------------------------------------------------------
 */

/* RFC 7515 appendix A.1 */
static const char a1_header[] = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
static const char a1_payload[] =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
    "\"http://example.com/is_root\":true}";
static const char a1_k[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZ"
                           "H75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

START_TEST(test_rfc7515_a1)
{
    const unsigned char *k;
    apr_size_t klen;
    hs_jwt_key *key = NULL;
    const char *h, *pl, *input, *sig, *err = NULL;

    h = hs_b64url(pool, (const unsigned char *)a1_header, strlen(a1_header));
    pl = hs_b64url(pool, (const unsigned char *)a1_payload, strlen(a1_payload));
    ck_assert_str_eq(h, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
    ck_assert_str_eq(pl, "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0"
                         "dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ");
    k = b64d(a1_k, &klen);
    ck_assert_uint_eq(klen, 64);
    ck_assert_ptr_null(hs_jwt_key_from_secret(pool, k, klen, &key));
    ck_assert_int_eq(hs_jwt_key_alg(key), HS_JWT_HS256);
    ck_assert_ptr_null(hs_jwt_key_kid(key));
    ck_assert_ptr_null(hs_jwt_public_jwk(pool, key));
    input = apr_pstrcat(pool, h, ".", pl, NULL);
    sig = hs_jws_sign_input(pool, key, input, strlen(input), &err);
    ck_assert_msg(sig != NULL, "%s", err);
    ck_assert_str_eq(sig, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
}
END_TEST

static int hmac_verifies(const unsigned char *k, size_t klen, const char *token)
{
    parts t = split(token);
    unsigned char mac[32];
    size_t maclen = 0;

    ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k, klen,
                                    (const unsigned char *)t.input,
                                    strlen(t.input), mac, sizeof mac, &maclen));
    return maclen == t.siglen && memcmp(mac, t.sig, maclen) == 0;
}

START_TEST(test_hs256_token)
{
    static const char claims[] = "{\"sub\":\"c1\",\"type\":\"access\"}";
    unsigned char k[32];
    hs_jwt_key *key = NULL;
    const char *token, *err = NULL;
    parts t;

    memset(k, 'k', sizeof k);
    ck_assert_ptr_null(hs_jwt_key_from_secret(pool, k, sizeof k, &key));
    token = hs_jwt_sign(pool, key, claims, &err);
    ck_assert_msg(token != NULL, "%s", err);
    t = split(token);
    ck_assert_str_eq(t.header, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    ck_assert_str_eq(t.payload, claims);
    ck_assert_uint_eq(t.siglen, 32);
    ck_assert(hmac_verifies(k, sizeof k, token));

    /* a configured kid goes into the header, escaped */
    hs_jwt_key_set_kid(key, "k\"1\\\n");
    ck_assert_str_eq(hs_jwt_key_kid(key), "k\"1\\\n");
    token = hs_jwt_sign(pool, key, claims, &err);
    t = split(token);
    ck_assert_str_eq(
        t.header,
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k\\\"1\\\\\\n\"}");
    ck_assert(hmac_verifies(k, sizeof k, token));
    hs_jwt_key_set_kid(key, NULL);
    ck_assert_ptr_null(hs_jwt_key_kid(key));

    /* misuse */
    err = NULL;
    ck_assert_ptr_null(hs_jwt_sign(pool, key, NULL, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(hs_jwt_sign(pool, NULL, claims, NULL));
    ck_assert_ptr_nonnull(hs_jwt_key_from_secret(pool, k, 31, &key));
}
END_TEST

START_TEST(test_hs256_load)
{
    static const char s32[] = "0123456789abcdef0123456789ABCDEF";
    hs_jwt_key *key, *ref = NULL;
    const char *path, *t1, *t2, *err = NULL;
    char big[70000];

    ck_assert_ptr_null(
        hs_jwt_key_from_secret(pool, (const unsigned char *)s32, 32, &ref));
    t1 = hs_jwt_sign(pool, ref, "{}", &err);

    /* exact, with "\n", with "\r\n": the same secret */
    key = load_ok(HS_JWT_HS256, write_file("s0", s32, 32));
    ck_assert_str_eq(hs_jwt_sign(pool, key, "{}", &err), t1);
    key = load_ok(HS_JWT_HS256,
                  write_file("s1", "0123456789abcdef0123456789ABCDEF\n", 33));
    ck_assert_str_eq(hs_jwt_sign(pool, key, "{}", &err), t1);
    key = load_ok(HS_JWT_HS256,
                  write_file("s2", "0123456789abcdef0123456789ABCDEF\r\n", 34));
    ck_assert_str_eq(hs_jwt_sign(pool, key, "{}", &err), t1);
    ck_assert_ptr_null(hs_jwt_key_kid(key));
    ck_assert_ptr_null(hs_jwt_public_jwk(pool, key));

    /* only one newline is trimmed: 31 bytes + "\n\n" is a 32-byte secret */
    key = load_ok(HS_JWT_HS256,
                  write_file("s3", "0123456789abcdef0123456789ABCDE\n\n", 33));
    ck_assert_ptr_null(hs_jwt_key_from_secret(
        pool, (const unsigned char *)"0123456789abcdef0123456789ABCDE\n", 32,
        &ref));
    t2 = hs_jwt_sign(pool, ref, "{}", &err);
    ck_assert_str_eq(hs_jwt_sign(pool, key, "{}", &err), t2);

    /* binary secrets with NUL bytes are fine */
    memset(big, 0, 40);
    key = load_ok(HS_JWT_HS256, write_file("s4", big, 40));
    ck_assert_ptr_nonnull(key);

    /* refusals */
    path = write_file("short", "0123456789abcdef0123456789ABCDE\n", 32);
    load_fails(HS_JWT_HS256, path,
               "secret is 31 bytes; HS256 needs at least 32");
    key = NULL;
    err = hs_jwt_key_load(pool, HS_JWT_HS256, path, &key);
    ck_assert_ptr_null(strstr(err, "0123456789abcdef"));
    load_fails(HS_JWT_HS256, write_file("empty", "", 0),
               "secret is 0 bytes; HS256 needs at least 32");
    load_fails(HS_JWT_HS256, apr_pstrcat(pool, tmpdir, "/missing", NULL),
               "No such file or directory");
    load_fails(HS_JWT_HS256, tmpdir, "not a regular file");
    memset(big, 'x', sizeof big);
    load_fails(HS_JWT_HS256, write_file("big", big, sizeof big), "too large");
}
END_TEST

START_TEST(test_hs256_refuses_pem)
{
    EVP_PKEY *ec = gen("EC", "P-256");
    const char *path = key_file("ec.pem", ec, 0);
    const char *pem = pem_of(ec, 0);
    hs_jwt_key *key = NULL;

    load_fails(HS_JWT_HS256, path,
               "looks like a PEM key, HS256 needs a raw secret");
    load_fails(HS_JWT_HS256,
               write_file("ec2.pem", apr_pstrcat(pool, "\n", pem, NULL),
                          strlen(pem) + 1),
               "looks like a PEM key");
    ck_assert_ptr_nonnull(
        hs_jwt_key_from_pem(pool, HS_JWT_HS256, pem, strlen(pem), &key));
    ck_assert_ptr_null(key);
    EVP_PKEY_free(ec);
}
END_TEST

/* ---- EdDSA -----------------------------------------------------------------
 */

/* RFC 8037 appendix A.1 */
static const char a1_d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const char a1_x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

START_TEST(test_rfc8037)
{
    static const char input[] =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    const unsigned char *d;
    apr_size_t dlen;
    hs_jwt_key *key = NULL;
    const char *err, *sig, *jwk;

    d = b64d(a1_d, &dlen);
    ck_assert_uint_eq(dlen, 32);
    err = hs_jwt_key_from_ed25519_seed(pool, d, &key);
    ck_assert_msg(err == NULL, "%s", err);
    ck_assert_int_eq(hs_jwt_key_alg(key), HS_JWT_EDDSA);
    /* A.3: the thumbprint is the default kid */
    ck_assert_str_eq(hs_jwt_key_kid(key),
                     "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    jwk = hs_jwt_public_jwk(pool, key);
    ck_assert_str_eq(jwk,
                     "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKx"
                     "CrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\",\"kid\":\"kPrK_"
                     "qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k\",\"alg\":"
                     "\"EdDSA\",\"use\":\"sig\"}");
    ck_assert_str_eq(jwk_member(jwk, "x"), a1_x);
    ck_assert_str_eq(thumbprint_of(jwk), hs_jwt_key_kid(key));
    /* A.4 */
    sig = hs_jws_sign_input(pool, key, input, strlen(input), &err);
    ck_assert_msg(sig != NULL, "%s", err);
    ck_assert_str_eq(sig, "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcN"
                          "R4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg");
    /* the kid can be overridden and restored */
    hs_jwt_key_set_kid(key, "ed-1");
    ck_assert_str_eq(jwk_member(hs_jwt_public_jwk(pool, key), "kid"), "ed-1");
    hs_jwt_key_set_kid(key, NULL);
    ck_assert_str_eq(hs_jwt_key_kid(key),
                     "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}
END_TEST

START_TEST(test_eddsa_file)
{
    EVP_PKEY *ed = gen("ED25519", NULL), *ec = gen("EC", "P-256");
    hs_jwt_key *key = load_ok(HS_JWT_EDDSA, key_file("ed.pem", ed, 0));
    unsigned char pub[32];
    size_t publen = sizeof pub;
    const char *jwk = hs_jwt_public_jwk(pool, key);

    sign_and_check(key, ed, "{\"sub\":\"x\"}");
    ck_assert_int_eq(EVP_PKEY_get_raw_public_key(ed, pub, &publen), 1);
    ck_assert_str_eq(jwk_member(jwk, "x"), b64e(pub, publen));
    ck_assert_str_eq(jwk_member(jwk, "kty"), "OKP");
    ck_assert_str_eq(jwk_member(jwk, "crv"), "Ed25519");
    ck_assert_str_eq(jwk_member(jwk, "alg"), "EdDSA");
    ck_assert_str_eq(jwk_member(jwk, "use"), "sig");
    ck_assert_str_eq(thumbprint_of(jwk), hs_jwt_key_kid(key));
    load_fails(HS_JWT_EDDSA, key_file("ec.pem", ec, 0),
               "key is not an Ed25519 key");
    load_fails(HS_JWT_ES256, key_file("ed2.pem", ed, 0),
               "key is not an EC P-256 key");
    load_fails(HS_JWT_RS256, key_file("ed3.pem", ed, 0),
               "key is not an RSA key");
    EVP_PKEY_free(ed);
    EVP_PKEY_free(ec);
}
END_TEST

/* ---- RS256 -----------------------------------------------------------------
 */

START_TEST(test_rs256)
{
    static const char rsa_prefix[] = "{\"kty\":\"RSA\",\"n\":\"";
    EVP_PKEY *rsa = gen("RSA", "2048"), *weak = gen("RSA", "1024");
    hs_jwt_key *key, *key2;
    BIGNUM *n = NULL;
    unsigned char nbuf[256];
    const unsigned char *nd;
    apr_size_t ndlen;
    const char *jwk;

    key = load_ok(HS_JWT_RS256, key_file("rsa.pem", rsa, 0));
    key2 = load_ok(HS_JWT_RS256, key_file("rsa-trad.pem", rsa, 1));
    ck_assert_str_eq(hs_jwt_key_kid(key), hs_jwt_key_kid(key2));
    sign_and_check(key, rsa, "{\"sub\":\"c\",\"exp\":1}");
    sign_and_check(key2, rsa, "{}");

    jwk = hs_jwt_public_jwk(pool, key);
    ck_assert_msg(strncmp(jwk, rsa_prefix, strlen(rsa_prefix)) == 0, "%s", jwk);
    ck_assert_ptr_nonnull(strstr(jwk, "\",\"e\":\"AQAB\",\"kid\":\""));
    ck_assert_ptr_nonnull(strstr(jwk, ",\"alg\":\"RS256\",\"use\":\"sig\"}"));
    ck_assert_str_eq(jwk_member(jwk, "e"), "AQAB");
    ck_assert_int_eq(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    ck_assert_int_eq(BN_bn2bin(n, nbuf), 256);
    BN_free(n);
    nd = b64d(jwk_member(jwk, "n"), &ndlen);
    ck_assert_uint_eq(ndlen, 256);
    ck_assert_int_ne(nd[0], 0);
    ck_assert_int_eq(memcmp(nd, nbuf, 256), 0);
    ck_assert_str_eq(jwk_member(jwk, "kid"), hs_jwt_key_kid(key));
    ck_assert_str_eq(thumbprint_of(jwk), hs_jwt_key_kid(key));

    load_fails(HS_JWT_RS256, key_file("weak.pem", weak, 0),
               "key is a 1024-bit RSA key; RS256 needs at least 2048 bits");
    load_fails(HS_JWT_ES256, key_file("rsa2.pem", rsa, 0),
               "key is not an EC P-256 key (found RSA 2048-bit)");
    load_fails(HS_JWT_EDDSA, key_file("rsa3.pem", rsa, 0),
               "key is not an Ed25519 key");
    load_fails(HS_JWT_HS256, key_file("rsa4.pem", rsa, 1),
               "looks like a PEM key");
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(weak);
}
END_TEST

/* ---- ES256 -----------------------------------------------------------------
 */

START_TEST(test_es256)
{
    static const char ec_prefix[] =
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"";
    EVP_PKEY *ec = gen("EC", "P-256"), *p384 = gen("EC", "P-384");
    hs_jwt_key *key, *key2;
    unsigned char pub[65];
    size_t publen = 0;
    const unsigned char *xd, *yd;
    apr_size_t xlen, ylen;
    const char *jwk;
    int i, short_rs = 0;

    key = load_ok(HS_JWT_ES256, key_file("ec.pem", ec, 0));
    key2 = load_ok(HS_JWT_ES256, key_file("ec-trad.pem", ec, 1));
    ck_assert_str_eq(hs_jwt_key_kid(key), hs_jwt_key_kid(key2));
    sign_and_check(key2, ec, "{}");
    /* many signatures: about one in 128 has an R or S below 2^248, whose
     * DER is short and must be left-padded */
    for (i = 0; i < 300; i++) {
        const char *claims = apr_psprintf(pool, "{\"n\":%d}", i);
        parts t;

        t = split(sign_and_check(key, ec, claims));
        ck_assert_uint_eq(t.siglen, 64);
        if (t.sig[0] == 0 || t.sig[32] == 0) {
            short_rs++;
        }
    }
    ck_assert_int_le(short_rs, 30);

    jwk = hs_jwt_public_jwk(pool, key);
    ck_assert_msg(strncmp(jwk, ec_prefix, strlen(ec_prefix)) == 0, "%s", jwk);
    ck_assert_ptr_nonnull(strstr(jwk, ",\"alg\":\"ES256\",\"use\":\"sig\"}"));
    ck_assert_int_eq(
        EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        pub, sizeof pub, &publen),
        1);
    ck_assert_uint_eq(publen, 65);
    ck_assert_int_eq(pub[0], 4);
    xd = b64d(jwk_member(jwk, "x"), &xlen);
    yd = b64d(jwk_member(jwk, "y"), &ylen);
    ck_assert_uint_eq(xlen, 32);
    ck_assert_uint_eq(ylen, 32);
    ck_assert_int_eq(memcmp(xd, pub + 1, 32), 0);
    ck_assert_int_eq(memcmp(yd, pub + 33, 32), 0);
    ck_assert_str_eq(thumbprint_of(jwk), hs_jwt_key_kid(key));

    load_fails(HS_JWT_ES256, key_file("p384.pem", p384, 0),
               "key is not an EC P-256 key (found EC secp384r1)");
    load_fails(HS_JWT_RS256, key_file("ec2.pem", ec, 0),
               "key is not an RSA key (found EC prime256v1)");
    EVP_PKEY_free(ec);
    EVP_PKEY_free(p384);
}
END_TEST

START_TEST(test_pem_refusals)
{
    EVP_PKEY *ec = gen("EC", "P-256");
    const char *pem = pem_of(ec, 0);
    hs_jwt_key *key = NULL;
    const char *err;

    load_fails(HS_JWT_ES256, key_file("enc.pem", ec, 2), "encrypted");
    load_fails(HS_JWT_ES256, key_file("pub.pem", ec, 3),
               "no PEM private key found");
    load_fails(HS_JWT_ES256, write_file("junk.pem", "hello\n", 6),
               "no PEM private key found");
    load_fails(HS_JWT_ES256, write_file("cut.pem", pem, strlen(pem) / 2),
               "no PEM private key found");
    load_fails(HS_JWT_ES256, write_file("empty.pem", "", 0),
               "no PEM private key found");
    load_fails(HS_JWT_RS256, apr_pstrcat(pool, tmpdir, "/missing.pem", NULL),
               "cannot read");
    load_fails(HS_JWT_EDDSA, tmpdir, "not a regular file");
    ck_assert_ptr_nonnull(hs_jwt_key_load(pool, (hs_jwt_alg)9, "x", &key));
    ck_assert_ptr_nonnull(hs_jwt_key_load(pool, HS_JWT_ES256, NULL, &key));

    /* from memory; no key material in any message */
    err = hs_jwt_key_from_pem(pool, HS_JWT_ES256, pem, strlen(pem), &key);
    ck_assert_msg(err == NULL, "%s", err);
    key = NULL;
    err = hs_jwt_key_from_pem(pool, HS_JWT_RS256, pem, strlen(pem), &key);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "BEGIN"));
    ck_assert_ptr_null(strstr(err, pem + 40));
    ck_assert_ptr_null(key);
    EVP_PKEY_free(ec);
}
END_TEST

/* ---- DER -> R||S ------------------------------------------------------------
 */

/* DER INTEGER with the content bytes as given */
static size_t der_int(unsigned char *o, const unsigned char *c, size_t len)
{
    o[0] = 0x02;
    o[1] = (unsigned char)len;
    memcpy(o + 2, c, len);
    return len + 2;
}

static size_t der_sig(unsigned char *o, const unsigned char *r, size_t rlen,
                      const unsigned char *s, size_t slen)
{
    size_t n = 2;

    n += der_int(o + n, r, rlen);
    n += der_int(o + n, s, slen);
    o[0] = 0x30;
    o[1] = (unsigned char)(n - 2);
    return n;
}

static int to_raw(const unsigned char *der, size_t len, unsigned char *out,
                  size_t n)
{
    int rc = hs_ecdsa_der_to_raw(der, len, out, n);

    ck_assert_int_eq(ERR_peek_error(), 0);
    return rc;
}

START_TEST(test_der_to_raw)
{
    unsigned char r[40], s[40], der[160], out[80];
    size_t n;

    /* R with its high bit set: DER has a leading 0x00 */
    r[0] = 0x00;
    memset(r + 1, 0x80, 32);
    memset(s, 0x11, 32);
    n = der_sig(der, r, 33, s, 32);
    ck_assert_uint_eq(n, 71);
    ck_assert_int_eq(to_raw(der, n, out, 32), 0);
    ck_assert_int_eq(memcmp(out, r + 1, 32), 0);
    ck_assert_int_eq(memcmp(out + 32, s, 32), 0);

    /* both high: 72 bytes */
    s[0] = 0x00;
    memset(s + 1, 0xff, 32);
    n = der_sig(der, r, 33, s, 33);
    ck_assert_uint_eq(n, 72);
    ck_assert_int_eq(to_raw(der, n, out, 32), 0);
    ck_assert_int_eq(memcmp(out + 32, s + 1, 32), 0);

    /* short R (31 bytes) and a one-byte S: left-padded with zeros */
    memset(r, 0x42, 31);
    s[0] = 0x7f;
    n = der_sig(der, r, 31, s, 1);
    memset(out, 0xee, sizeof out);
    ck_assert_int_eq(to_raw(der, n, out, 32), 0);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(memcmp(out + 1, r, 31), 0);
    ck_assert_int_eq(memcmp(out + 32,
                            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                            31),
                     0);
    ck_assert_int_eq(out[63], 0x7f);
    ck_assert_int_eq(out[64], 0xee); /* nothing beyond 2n */

    /* short R with a high bit: 0x00 0x80.. (31 value bytes) */
    r[0] = 0x00;
    memset(r + 1, 0x90, 31);
    n = der_sig(der, r, 32, s, 1);
    ck_assert_int_eq(to_raw(der, n, out, 32), 0);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 0x90);

    /* over-long component: 33 value bytes does not fit 32, fits 33 */
    memset(r, 0x01, 33);
    memset(s, 0x01, 32);
    n = der_sig(der, r, 33, s, 32);
    ck_assert_int_eq(to_raw(der, n, out, 32), -1);
    ck_assert_int_eq(to_raw(der, n, out, 33), 0);
    ck_assert_int_eq(out[33], 0); /* S padded to 33 */
    /* S over-long, R fine */
    n = der_sig(der, s, 32, r, 33);
    ck_assert_int_eq(to_raw(der, n, out, 32), -1);

    /* a valid small signature for the malformed variants below */
    {
        static const unsigned char ok[] = {0x30, 0x06, 0x02, 0x01,
                                           0x01, 0x02, 0x01, 0x02};
        static const unsigned char non_minimal[] = {
            0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02};
        static const unsigned char negative[] = {0x30, 0x06, 0x02, 0x01,
                                                 0x80, 0x02, 0x01, 0x02};
        static const unsigned char zero[] = {0x30, 0x06, 0x02, 0x01,
                                             0x00, 0x02, 0x01, 0x02};
        static const unsigned char empty_int[] = {0x30, 0x05, 0x02, 0x00,
                                                  0x02, 0x01, 0x02};
        static const unsigned char trailing[] = {0x30, 0x06, 0x02, 0x01, 0x01,
                                                 0x02, 0x01, 0x02, 0x00};
        static const unsigned char wrong_tag[] = {0x31, 0x06, 0x02, 0x01,
                                                  0x01, 0x02, 0x01, 0x02};
        static const unsigned char int_tag[] = {0x30, 0x06, 0x03, 0x01,
                                                0x01, 0x02, 0x01, 0x02};
        static const unsigned char long_form[] = {0x30, 0x81, 0x06, 0x02, 0x01,
                                                  0x01, 0x02, 0x01, 0x02};
        static const unsigned char indefinite[] = {
            0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00, 0x00};
        static const unsigned char three[] = {
            0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03};
        static const unsigned char one[] = {0x30, 0x03, 0x02, 0x01, 0x01};
        static const unsigned char len_short[] = {0x30, 0x05, 0x02, 0x01,
                                                  0x01, 0x02, 0x01, 0x02};
        static const unsigned char len_long[] = {0x30, 0x07, 0x02, 0x01,
                                                 0x01, 0x02, 0x01, 0x02};

        ck_assert_int_eq(to_raw(ok, sizeof ok, out, 32), 0);
        ck_assert_int_eq(out[31], 1);
        ck_assert_int_eq(out[63], 2);
        ck_assert_int_eq(to_raw(ok, sizeof ok, out, 1), 0);
        ck_assert_int_eq(out[0], 1);
        ck_assert_int_eq(out[1], 2);
        ck_assert_int_eq(to_raw(ok, sizeof ok - 1, out, 32), -1);
        ck_assert_int_eq(to_raw(ok, 1, out, 32), -1);
        ck_assert_int_eq(to_raw(ok, 0, out, 32), -1);
        ck_assert_int_eq(to_raw(NULL, 8, out, 32), -1);
        ck_assert_int_eq(to_raw(ok, sizeof ok, NULL, 32), -1);
        ck_assert_int_eq(to_raw(ok, sizeof ok, out, 0), -1);
        ck_assert_int_eq(to_raw(non_minimal, sizeof non_minimal, out, 32), -1);
        ck_assert_int_eq(to_raw(negative, sizeof negative, out, 32), -1);
        ck_assert_int_eq(to_raw(zero, sizeof zero, out, 32), -1);
        ck_assert_int_eq(to_raw(empty_int, sizeof empty_int, out, 32), -1);
        ck_assert_int_eq(to_raw(trailing, sizeof trailing, out, 32), -1);
        ck_assert_int_eq(to_raw(wrong_tag, sizeof wrong_tag, out, 32), -1);
        ck_assert_int_eq(to_raw(int_tag, sizeof int_tag, out, 32), -1);
        ck_assert_int_eq(to_raw(long_form, sizeof long_form, out, 32), -1);
        ck_assert_int_eq(to_raw(indefinite, sizeof indefinite, out, 32), -1);
        ck_assert_int_eq(to_raw(three, sizeof three, out, 32), -1);
        ck_assert_int_eq(to_raw(one, sizeof one, out, 32), -1);
        ck_assert_int_eq(to_raw(len_short, sizeof len_short, out, 32), -1);
        ck_assert_int_eq(to_raw(len_long, sizeof len_long, out, 32), -1);
    }
}
END_TEST

START_TEST(test_der_roundtrip_openssl)
{
    /* OpenSSL's own DER signatures of random R, S of every length */
    unsigned char raw[64], back[64];
    int i;

    for (i = 0; i < 2000; i++) {
        unsigned char *der;
        int derlen;

        ck_assert_int_eq(RAND_bytes(raw, sizeof raw), 1);
        /* force short and high-bit components now and then */
        memset(raw, 0, (size_t)(i % 33));
        memset(raw + 32, 0, (size_t)((i / 33) % 33));
        raw[31] |= 1;
        raw[63] |= 1;
        der = raw_to_der(raw, &derlen);
        ck_assert_int_eq(to_raw(der, (size_t)derlen, back, 32), 0);
        ck_assert_int_eq(memcmp(raw, back, 64), 0);
        OPENSSL_free(der);
    }
}
END_TEST

/* ---- threads ----------------------------------------------------------------
 */

typedef struct {
    hs_jwt_key *es;
    hs_jwt_key *hs;
    EVP_PKEY *pub;
    apr_pool_t *p;
    int failures;
} thread_job;

static void *APR_THREAD_FUNC signer(apr_thread_t *th, void *data)
{
    thread_job *job = data;
    int i;

    for (i = 0; i < 50; i++) {
        apr_pool_t *p;
        const char *t1, *t2;

        apr_pool_create(&p, job->p);
        t1 = hs_jwt_sign(p, job->es, "{\"a\":1}", NULL);
        t2 = hs_jwt_sign(p, job->hs, "{\"a\":1}", NULL);
        if (t1 == NULL || t2 == NULL) {
            job->failures++;
        }
        else {
            const char *dot = strrchr(t1, '.');
            char *input = apr_pstrmemdup(p, t1, (apr_size_t)(dot - t1));
            apr_size_t len;
            const unsigned char *sig = apr_pdecode_base64_binary(
                p, dot + 1, APR_ENCODE_STRING, APR_ENCODE_BASE64URL, &len);
            unsigned char *der = NULL;
            int derlen = 0;
            EVP_MD_CTX *ctx = EVP_MD_CTX_new();
            ECDSA_SIG *es = ECDSA_SIG_new();

            ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL),
                           BN_bin2bn(sig + 32, 32, NULL));
            derlen = i2d_ECDSA_SIG(es, &der);
            if (len != 64 || derlen <= 0 ||
                EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL,
                                        job->pub, NULL) != 1 ||
                EVP_DigestVerify(ctx, der, (size_t)derlen,
                                 (const unsigned char *)input,
                                 strlen(input)) != 1) {
                job->failures++;
            }
            OPENSSL_free(der);
            ECDSA_SIG_free(es);
            EVP_MD_CTX_free(ctx);
        }
        apr_pool_destroy(p);
    }
    /* return rather than apr_thread_exit(): pthread_exit's unwinding trips
     * ASan's stack-use-after-scope check in its own thread teardown */
    (void)th;
    return NULL;
}

START_TEST(test_threads)
{
    enum { NTHREADS = 8 };
    EVP_PKEY *ec = gen("EC", "P-256");
    hs_jwt_key *es = load_ok(HS_JWT_ES256, key_file("ec.pem", ec, 0)), *hs;
    apr_thread_t *th[NTHREADS];
    thread_job job[NTHREADS];
    apr_status_t rv;
    int i;

    ck_assert_ptr_null(hs_jwt_key_from_secret(
        pool, (const unsigned char *)"0123456789abcdef0123456789abcdef", 32,
        &hs));
    for (i = 0; i < NTHREADS; i++) {
        job[i].es = es;
        job[i].hs = hs;
        job[i].pub = ec;
        job[i].failures = 0;
        ck_assert_int_eq(apr_pool_create(&job[i].p, NULL), APR_SUCCESS);
        ck_assert_int_eq(apr_thread_create(&th[i], NULL, signer, &job[i], pool),
                         APR_SUCCESS);
    }
    for (i = 0; i < NTHREADS; i++) {
        apr_thread_join(&rv, th[i]);
        ck_assert_int_eq(job[i].failures, 0);
        apr_pool_destroy(job[i].p);
    }
    EVP_PKEY_free(ec);
}
END_TEST

/* ---- pool ownership
 * ---------------------------------------------------------- */

START_TEST(test_pool_cleanup)
{
    EVP_PKEY *rsa_free_check = gen("ED25519", NULL);
    const char *path = key_file("ed.pem", rsa_free_check, 0);
    int i;

    /* loading into short-lived pools must not leak (valgrind / ASan) */
    for (i = 0; i < 20; i++) {
        apr_pool_t *p;
        hs_jwt_key *key = NULL;

        ck_assert_int_eq(apr_pool_create(&p, pool), APR_SUCCESS);
        ck_assert_ptr_null(hs_jwt_key_load(p, HS_JWT_EDDSA, path, &key));
        ck_assert_ptr_nonnull(hs_jwt_sign(p, key, "{}", NULL));
        ck_assert_ptr_nonnull(hs_jwt_key_load(p, HS_JWT_ES256, path, &key));
        apr_pool_destroy(p);
    }
    EVP_PKEY_free(rsa_free_check);
}
END_TEST

static Suite *jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = hs_unit_tcase(s, "encode", setup, teardown, 300);
    TCase *keys = hs_unit_tcase(s, "keys", setup, teardown, 600);
    tcase_add_test(tc, test_alg_names);
    tcase_add_test(tc, test_b64url_vectors);
    tcase_add_test(tc, test_rfc7515_a1);
    tcase_add_test(tc, test_rfc8037);
    tcase_add_test(tc, test_der_to_raw);
    tcase_add_test(tc, test_der_roundtrip_openssl);
    /* RSA key generation is slow under valgrind */
    tcase_add_test(keys, test_hs256_token);
    tcase_add_test(keys, test_hs256_load);
    tcase_add_test(keys, test_hs256_refuses_pem);
    tcase_add_test(keys, test_eddsa_file);
    tcase_add_test(keys, test_rs256);
    tcase_add_test(keys, test_es256);
    tcase_add_test(keys, test_pem_refusals);
    tcase_add_test(keys, test_threads);
    tcase_add_test(keys, test_pool_cleanup);
    return s;
}

HS_UNIT_MAIN(jwt_suite)
