/*
 * fuzz_keys.c - libFuzzer harness for key loading and JWK export in
 * src/core/jwt.c (issue 12).
 *
 * The first byte chooses the loader, the rest is the key material:
 *   byte % 8 == 0..2  PEM text for RS256 / ES256 / EdDSA
 *                     (hs_jwt_key_from_pem);
 *   3                 an HS256 secret (hs_jwt_key_from_secret);
 *   4                 an Ed25519 seed (hs_jwt_key_from_ed25519_seed, the
 *                     first 32 bytes, when there are 32);
 *   5..7              the bytes as a key file for HS256 / ES256 / EdDSA
 *                     (hs_jwt_key_load: file reading, newline trimming,
 *                     the refusal of PEM text as an HS256 secret).
 * Properties: a refused key comes with a message and no key (a key file's
 * message names the file); an accepted one has the algorithm asked for and
 * signs a token; its public JWK (none for HS256) is a JSON object with the
 * kty and curve of the algorithm, base64url coordinates of the right
 * length (an RSA modulus of at least 2048 bits), "use":"sig", the key's
 * kid (a 43-character RFC 7638 thumbprint) and no private member; an HS256
 * secret is accepted exactly when it has at least 32 bytes; any 32-byte
 * Ed25519 seed is accepted.
 *
 * make fuzz-build FUZZ_TARGETS=keys && fuzz/keys_fuzzer fuzz/corpus/keys
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <json-c/json.h>

#include "hs_jwt.h"

#include "fuzz_check.h"

static apr_pool_t *g_pool;
static char g_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hs_fuzz_start(&g_pool);
    snprintf(g_path, sizeof g_path, "/tmp/hs-fuzz-keys.%ld", (long)getpid());
    return 0;
}

static int b64url_len_ok(const char *s, size_t want)
{
    size_t n = s ? strlen(s) : 0;
    return n == want &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-_") == n;
}

static const char *member(json_object *o, const char *name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_string)) {
        return NULL;
    }
    return json_object_get_string(v);
}

/* What every accepted key must satisfy. */
static void check_key(apr_pool_t *p, const hs_jwt_key *key, hs_jwt_alg alg)
{
    const char *jwk, *err = NULL, *jws, *kid;
    json_object *o;

    CHECK(key != NULL);
    CHECK(hs_jwt_key_alg(key) == alg);
    jws = hs_jwt_sign(p, key, "{\"sub\":\"x\"}", &err);
    CHECK(jws != NULL);
    CHECK(strchr(jws, '.') != strrchr(jws, '.'));
    jwk = hs_jwt_public_jwk(p, key);
    kid = hs_jwt_key_kid(key);
    if (alg == HS_JWT_HS256) {
        CHECK(jwk == NULL);
        CHECK(kid == NULL);
        return;
    }
    CHECK(jwk != NULL);
    CHECK(b64url_len_ok(kid, 43));
    o = json_tokener_parse(jwk);
    CHECK(o != NULL && json_object_is_type(o, json_type_object));
    CHECK(member(o, "kid") && !strcmp(member(o, "kid"), kid));
    CHECK(member(o, "use") && !strcmp(member(o, "use"), "sig"));
    CHECK(member(o, "d") == NULL); /* never the private part */
    CHECK(member(o, "p") == NULL && member(o, "q") == NULL);
    switch (alg) {
        case HS_JWT_RS256:
            CHECK(!strcmp(member(o, "kty"), "RSA"));
            CHECK(member(o, "n") && strlen(member(o, "n")) >= 342);
            CHECK(member(o, "e") != NULL);
            break;
        case HS_JWT_ES256:
            CHECK(!strcmp(member(o, "kty"), "EC"));
            CHECK(member(o, "crv") && !strcmp(member(o, "crv"), "P-256"));
            CHECK(b64url_len_ok(member(o, "x"), 43));
            CHECK(b64url_len_ok(member(o, "y"), 43));
            break;
        default:
            CHECK(!strcmp(member(o, "kty"), "OKP"));
            CHECK(member(o, "crv") && !strcmp(member(o, "crv"), "Ed25519"));
            CHECK(b64url_len_ok(member(o, "x"), 43));
            break;
    }
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const hs_jwt_alg pem_algs[3] = {HS_JWT_RS256, HS_JWT_ES256,
                                           HS_JWT_EDDSA};
    static const hs_jwt_alg file_algs[3] = {HS_JWT_HS256, HS_JWT_ES256,
                                            HS_JWT_EDDSA};
    apr_pool_t *p;
    hs_jwt_key *key = NULL;
    const char *err;
    const uint8_t *k;
    size_t n;
    int mode;

    if (size < 1) {
        return 0;
    }
    mode = data[0] % 8;
    k = data + 1;
    n = size - 1;
    CHECK(apr_pool_create(&p, g_pool) == APR_SUCCESS);
    if (mode <= 2) {
        err = hs_jwt_key_from_pem(p, pem_algs[mode], (const char *)k, n, &key);
        CHECK((err == NULL) == (key != NULL));
        if (!err) {
            check_key(p, key, pem_algs[mode]);
        }
    }
    else if (mode == 3) {
        err = hs_jwt_key_from_secret(p, k, n, &key);
        CHECK((err == NULL) == (n >= 32));
        if (!err) {
            check_key(p, key, HS_JWT_HS256);
        }
    }
    else if (mode == 4) {
        if (n >= 32) {
            err = hs_jwt_key_from_ed25519_seed(p, k, &key);
            CHECK(err == NULL);
            check_key(p, key, HS_JWT_EDDSA);
        }
    }
    else {
        FILE *f = fopen(g_path, "wb");
        CHECK(f != NULL);
        CHECK(fwrite(k, 1, n, f) == n);
        CHECK(fclose(f) == 0);
        err = hs_jwt_key_load(p, file_algs[mode - 5], g_path, &key);
        CHECK((err == NULL) == (key != NULL));
        if (err) {
            /* the operator's message names the file, never its bytes */
            CHECK(strstr(err, g_path) != NULL);
        }
        else {
            check_key(p, key, file_algs[mode - 5]);
        }
        unlink(g_path);
    }
    apr_pool_destroy(p);
    return 0;
}
