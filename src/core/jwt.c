/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jwt.c - portal tokens: JWS compact serialisation (RFC 7515/7519) signed
 * with OpenSSL 3, keys loaded once at configuration time, the public JWK
 * (RFC 7517/7518/8037) and the RFC 7638 thumbprint (see hs_jwt.h).
 *
 * Ownership: a key and its EVP_PKEY live in the pool they were loaded into
 * (a cleanup frees the EVP_PKEY and wipes an HS256 secret). Signing makes
 * its own contexts and frees them on every path, so one key is shared
 * read-only by every thread of the server.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <apr_encode.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include <json-c/json.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "hs_crypto.h"
#include "hs_jwt.h"

#define HS_SECRET_MIN 32
#define HS_RSA_MIN_BITS 2048
#define HS_P256_LEN 32
#define HS_ED25519_LEN 32
/* Key files are small; refuse anything bigger before reading it. */
#define HS_KEYFILE_MAX (64 * 1024)
#define HS_PEM_BEGIN "-----BEGIN"

struct hs_jwt_key {
    apr_pool_t *pool;
    hs_jwt_alg alg;
    EVP_PKEY *pkey;        /* RS256, ES256, EdDSA */
    unsigned char *secret; /* HS256 */
    size_t secret_len;
    const char *kid;        /* NULL: no kid header */
    const char *thumbprint; /* RFC 7638, asymmetric keys */
    const char *header_b64; /* base64url of the JOSE header */
    /* public JWK members, base64url: n, e (RSA); x, y (EC); x (OKP) */
    const char *n;
    const char *e;
    const char *x;
    const char *y;
};

static const char *const alg_names[] = {"HS256", "RS256", "ES256", "EdDSA"};

int hs_jwt_alg_parse(const char *name, hs_jwt_alg *alg)
{
    size_t i;

    if (name == NULL) {
        return -1;
    }
    for (i = 0; i < sizeof alg_names / sizeof alg_names[0]; i++) {
        if (strcmp(name, alg_names[i]) == 0) {
            *alg = (hs_jwt_alg)i;
            return 0;
        }
    }
    return -1;
}

const char *hs_jwt_alg_name(hs_jwt_alg alg)
{
    if ((unsigned)alg >= sizeof alg_names / sizeof alg_names[0]) {
        return NULL;
    }
    return alg_names[alg];
}

/* ---- encoding helpers -------------------------------------------------- */

const char *hs_b64url(apr_pool_t *p, const unsigned char *data, size_t len)
{
    /* URL alphabet, no padding (RFC 7515 section 2); APR 1.7 (which
     * answers NULL for no data) */
    if (len == 0) {
        return "";
    }
    return apr_pencode_base64_binary(p, data, (apr_ssize_t)len,
                                     APR_ENCODE_BASE64URL, NULL);
}

/* s as a JSON string literal (quotes included) in p, quoted by json-c;
 * NULL when out of memory. */
static const char *json_quote(apr_pool_t *p, const char *s)
{
    json_object *o = json_object_new_string(s);
    const char *out = NULL;

    if (o != NULL) {
        out = apr_pstrdup(
            p, json_object_to_json_string_ext(
                   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    }
    return out;
}

/* "what: <OpenSSL reason>", and the thread's error queue emptied (never
 * leave errors behind for mod_ssl or the next caller to trip over). */
static const char *ossl_error(apr_pool_t *p, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return apr_psprintf(p, "%s: %s", what,
                        reason != NULL ? reason : "unknown OpenSSL error");
}

static void set_err(const char **err, const char *msg)
{
    if (err != NULL) {
        *err = msg;
    }
}

/* ---- keys ---------------------------------------------------------------- */

static apr_status_t pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

static apr_status_t secret_cleanup(void *data)
{
    hs_jwt_key *key = data;

    OPENSSL_cleanse(key->secret, key->secret_len);
    return APR_SUCCESS;
}

static void set_header(hs_jwt_key *key)
{
    const char *name = alg_names[key->alg];
    const char *kid = key->kid != NULL ? json_quote(key->pool, key->kid) : NULL;
    const char *h;

    if (kid != NULL) {
        h = apr_pstrcat(key->pool, "{\"alg\":\"", name,
                        "\",\"typ\":\"JWT\",\"kid\":", kid, "}", NULL);
    }
    else {
        h = apr_pstrcat(key->pool, "{\"alg\":\"", name, "\",\"typ\":\"JWT\"}",
                        NULL);
    }
    key->header_b64 = hs_b64url(key->pool, (const unsigned char *)h, strlen(h));
}

/*
 * Reads path (a regular file of at most HS_KEYFILE_MAX bytes) into tmp.
 * The caller wipes the buffer. NULL on success, else a message.
 */
static const char *read_key_file(apr_pool_t *p, apr_pool_t *tmp,
                                 const char *path, unsigned char **buf,
                                 size_t *len)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;
    apr_size_t got = 0;
    char ebuf[128];
    unsigned char *b;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                       APR_FPROT_OS_DEFAULT, tmp);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(p, "cannot read %s: %s", path,
                            apr_strerror(rv, ebuf, sizeof ebuf));
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, f);
    if (rv != APR_SUCCESS) {
        apr_file_close(f);
        return apr_psprintf(p, "cannot read %s: %s", path,
                            apr_strerror(rv, ebuf, sizeof ebuf));
    }
    if (fi.filetype != APR_REG) {
        apr_file_close(f);
        return apr_psprintf(p, "cannot read %s: not a regular file", path);
    }
    if (fi.size > HS_KEYFILE_MAX) {
        apr_file_close(f);
        return apr_psprintf(p,
                            "%s is too large for a key file (%" APR_OFF_T_FMT
                            " bytes, at most %d)",
                            path, fi.size, HS_KEYFILE_MAX);
    }
    b = apr_palloc(tmp, (apr_size_t)fi.size + 1);
    if (fi.size > 0) {
        rv = apr_file_read_full(f, b, (apr_size_t)fi.size, &got);
    }
    apr_file_close(f);
    if (rv != APR_SUCCESS || got != (apr_size_t)fi.size) {
        OPENSSL_cleanse(b, got);
        return apr_psprintf(p, "cannot read %s: %s", path,
                            rv != APR_SUCCESS
                                ? apr_strerror(rv, ebuf, sizeof ebuf)
                                : "short read");
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    return NULL;
}

const char *hs_jwt_key_from_secret(apr_pool_t *p, const unsigned char *bytes,
                                   size_t len, hs_jwt_key **key)
{
    hs_jwt_key *k;

    if (bytes == NULL || len < HS_SECRET_MIN) {
        return apr_psprintf(
            p, "secret is %" APR_SIZE_T_FMT " bytes; HS256 needs at least %d",
            bytes != NULL ? len : 0, HS_SECRET_MIN);
    }
    k = apr_pcalloc(p, sizeof *k);
    k->pool = p;
    k->alg = HS_JWT_HS256;
    k->secret = apr_pmemdup(p, bytes, len);
    k->secret_len = len;
    apr_pool_cleanup_register(p, k, secret_cleanup, apr_pool_cleanup_null);
    set_header(k);
    *key = k;
    return NULL;
}

static const char *load_secret(apr_pool_t *p, const char *path,
                               hs_jwt_key **key)
{
    apr_pool_t *tmp;
    unsigned char *buf = NULL;
    size_t len = 0, len0, i;
    const char *err;

    if (apr_pool_create(&tmp, p) != APR_SUCCESS) {
        return apr_psprintf(p, "cannot read %s: out of memory", path);
    }
    err = read_key_file(p, tmp, path, &buf, &len);
    if (err != NULL) {
        apr_pool_destroy(tmp);
        return err;
    }
    len0 = len;
    if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n') {
        len -= 2;
    }
    else if (len >= 1 && buf[len - 1] == '\n') {
        len -= 1;
    }
    for (i = 0; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' ||
                            buf[i] == '\n');
         i++) {
    }
    if (len - i >= sizeof HS_PEM_BEGIN - 1 &&
        memcmp(buf + i, HS_PEM_BEGIN, sizeof HS_PEM_BEGIN - 1) == 0) {
        err = apr_psprintf(
            p, "%s looks like a PEM key, HS256 needs a raw secret", path);
    }
    else if (len < HS_SECRET_MIN) {
        err = apr_psprintf(p,
                           "%s: secret is %" APR_SIZE_T_FMT
                           " bytes; HS256 needs at least %d",
                           path, len, HS_SECRET_MIN);
    }
    else {
        err = hs_jwt_key_from_secret(p, buf, len, key);
    }
    OPENSSL_cleanse(buf, len0);
    apr_pool_destroy(tmp);
    return err;
}

/* "RSA 1024-bit", "EC prime256v1", "ED25519": for messages. */
static const char *describe_pkey(apr_pool_t *p, const EVP_PKEY *pkey)
{
    const char *type = EVP_PKEY_get0_type_name(pkey);

    if (type == NULL) {
        type = "unknown";
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        return apr_psprintf(p, "RSA %d-bit", EVP_PKEY_get_bits(pkey));
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64];
        size_t glen = 0;

        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) == 1) {
            return apr_psprintf(p, "EC %s", group);
        }
        ERR_clear_error();
        return "EC with explicit parameters";
    }
    return type;
}

static int is_p256(const EVP_PKEY *pkey)
{
    char group[64];
    size_t glen = 0;
    int nid;

    if (!EVP_PKEY_is_a(pkey, "EC")) {
        return 0;
    }
    if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) != 1) {
        ERR_clear_error();
        return 0;
    }
    nid = OBJ_sn2nid(group);
    if (nid == NID_undef) {
        nid = EC_curve_nist2nid(group);
    }
    return nid == NID_X9_62_prime256v1;
}

/* The reason a key of the wrong type is refused: "LABEL: key is not an
 * KIND key (found ...); NEED". */
static const char *wrong_type(apr_pool_t *p, const char *label,
                              const EVP_PKEY *pkey, const char *kind,
                              const char *need)
{
    return apr_psprintf(p, "%s: key is not an %s key (found %s); %s", label,
                        kind, describe_pkey(p, pkey), need);
}

static const char *check_pkey_type(apr_pool_t *p, hs_jwt_alg alg,
                                   const char *label, const EVP_PKEY *pkey)
{
    int bits;

    switch (alg) {
        case HS_JWT_RS256:
            if (!EVP_PKEY_is_a(pkey, "RSA")) {
                return wrong_type(p, label, pkey, "RSA", "RS256 needs RSA");
            }
            bits = EVP_PKEY_get_bits(pkey);
            if (bits < HS_RSA_MIN_BITS) {
                return apr_psprintf(p,
                                    "%s: key is a %d-bit RSA key; RS256 "
                                    "needs at least %d bits",
                                    label, bits, HS_RSA_MIN_BITS);
            }
            return NULL;
        case HS_JWT_ES256:
            if (!is_p256(pkey)) {
                return wrong_type(p, label, pkey, "EC P-256",
                                  "ES256 needs P-256");
            }
            return NULL;
        case HS_JWT_EDDSA:
            if (!EVP_PKEY_is_a(pkey, "ED25519")) {
                return wrong_type(p, label, pkey, "Ed25519",
                                  "EdDSA needs Ed25519");
            }
            return NULL;
        case HS_JWT_HS256:
        default:
            return apr_psprintf(p,
                                "%s: HS256 needs a raw secret, not an "
                                "asymmetric key",
                                label);
    }
}

/* base64url of a BIGNUM parameter: big-endian unsigned, padded to pad
 * bytes, or minimal (at least one byte) when pad is 0. */
static const char *bn_param_b64(apr_pool_t *p, const EVP_PKEY *pkey,
                                const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char *buf;
    const char *r = NULL;
    int len;

    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
        return NULL;
    }
    len = BN_num_bytes(bn);
    if (pad > 0) {
        if (len > pad) {
            BN_free(bn);
            return NULL;
        }
        len = pad;
    }
    else if (len == 0) {
        len = 1;
    }
    buf = apr_palloc(p, (apr_size_t)len);
    if (BN_bn2binpad(bn, buf, len) == len) {
        r = hs_b64url(p, buf, (size_t)len);
    }
    BN_free(bn);
    return r;
}

/* Fills the public members and the RFC 7638 thumbprint. */
static const char *fill_public(apr_pool_t *p, const char *label, hs_jwt_key *k)
{
    unsigned char raw[HS_ED25519_LEN];
    unsigned char md[32];
    unsigned int mdlen = 0;
    size_t rawlen = sizeof raw;
    const char *canon;

    switch (k->alg) {
        case HS_JWT_RS256:
            k->n = bn_param_b64(p, k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
            k->e = bn_param_b64(p, k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
            if (k->n == NULL || k->e == NULL) {
                break;
            }
            /* RFC 7638 3.2: required members in lexicographic order */
            canon = apr_pstrcat(p, "{\"e\":\"", k->e,
                                "\",\"kty\":\"RSA\","
                                "\"n\":\"",
                                k->n, "\"}", NULL);
            goto hash;
        case HS_JWT_ES256:
            k->x =
                bn_param_b64(p, k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, HS_P256_LEN);
            k->y =
                bn_param_b64(p, k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, HS_P256_LEN);
            if (k->x == NULL || k->y == NULL) {
                break;
            }
            canon = apr_pstrcat(p,
                                "{\"crv\":\"P-256\",\"kty\":\"EC\","
                                "\"x\":\"",
                                k->x, "\",\"y\":\"", k->y, "\"}", NULL);
            goto hash;
        case HS_JWT_EDDSA:
            if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) != 1 ||
                rawlen != HS_ED25519_LEN) {
                break;
            }
            k->x = hs_b64url(p, raw, rawlen);
            canon = apr_pstrcat(p,
                                "{\"crv\":\"Ed25519\",\"kty\":\"OKP\","
                                "\"x\":\"",
                                k->x, "\"}", NULL);
            goto hash;
        case HS_JWT_HS256:
        default:
            break;
    }
    return ossl_error(
        p, apr_pstrcat(p, label, ": cannot read the public key", NULL));
hash:
    if (EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != sizeof md) {
        return ossl_error(
            p, apr_pstrcat(p, label, ": cannot hash the public key", NULL));
    }
    k->thumbprint = hs_b64url(p, md, mdlen);
    return NULL;
}

/* Makes the key for pkey (type already checked) and takes pkey over: on
 * failure it is freed, on success the pool frees it. */
static const char *key_from_pkey(apr_pool_t *p, hs_jwt_alg alg,
                                 const char *label, EVP_PKEY *pkey,
                                 hs_jwt_key **key)
{
    hs_jwt_key *k;
    apr_pool_t *tmp;
    const char *err;

    k = apr_pcalloc(p, sizeof *k);
    k->pool = p;
    k->alg = alg;
    k->pkey = pkey;
    err = fill_public(p, label, k);
    if (err != NULL) {
        EVP_PKEY_free(pkey);
        return err;
    }
    apr_pool_cleanup_register(p, pkey, pkey_cleanup, apr_pool_cleanup_null);
    k->kid = k->thumbprint;
    set_header(k);

    /* One signature now, so that a key OpenSSL cannot use fails at
     * configuration time and not in the first request. */
    if (apr_pool_create(&tmp, p) != APR_SUCCESS) {
        apr_pool_cleanup_run(p, pkey, pkey_cleanup);
        return apr_pstrcat(p, label, ": out of memory", NULL);
    }
    if (hs_jws_sign_input(tmp, k, "e30.e30", 7, &err) == NULL) {
        err = apr_pstrcat(p, label, ": test signature failed: ", err, NULL);
        apr_pool_destroy(tmp);
        apr_pool_cleanup_run(p, pkey, pkey_cleanup);
        return err;
    }
    apr_pool_destroy(tmp);
    *key = k;
    return NULL;
}

typedef struct {
    int asked;
} passphrase_state;

/* Keys are read at startup without a terminal: never prompt, but note that
 * a passphrase was wanted so that the message can say so. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    ((passphrase_state *)u)->asked = 1;
    return -1;
}

static const char *pem_key(apr_pool_t *p, hs_jwt_alg alg, const char *label,
                           const char *pem, size_t len, hs_jwt_key **key)
{
    passphrase_state pw = {0};
    EVP_PKEY *pkey;
    BIO *bio;
    const char *err;

    if (alg == HS_JWT_HS256) {
        return check_pkey_type(p, alg, label, NULL);
    }
    if (pem == NULL || len > INT_MAX) {
        return apr_pstrcat(p, label, ": no PEM private key found", NULL);
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        return ossl_error(p, label);
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &pw);
    BIO_free(bio);
    if (pkey == NULL) {
        ERR_clear_error();
        if (pw.asked) {
            return apr_pstrcat(p, label,
                               ": the private key is encrypted; a key "
                               "without a passphrase is needed",
                               NULL);
        }
        return apr_pstrcat(p, label,
                           ": no PEM private key found (PKCS#8 or "
                           "traditional PEM expected)",
                           NULL);
    }
    err = check_pkey_type(p, alg, label, pkey);
    if (err != NULL) {
        EVP_PKEY_free(pkey);
        return err;
    }
    return key_from_pkey(p, alg, label, pkey, key);
}

const char *hs_jwt_key_from_pem(apr_pool_t *p, hs_jwt_alg alg, const char *pem,
                                size_t len, hs_jwt_key **key)
{
    return pem_key(p, alg, "key", pem, len, key);
}

const char *hs_jwt_key_load(apr_pool_t *p, hs_jwt_alg alg, const char *path,
                            hs_jwt_key **key)
{
    apr_pool_t *tmp;
    unsigned char *buf = NULL;
    size_t len = 0;
    const char *err;

    if (hs_jwt_alg_name(alg) == NULL) {
        return "unknown JWT algorithm";
    }
    if (path == NULL) {
        return "no key file";
    }
    if (alg == HS_JWT_HS256) {
        return load_secret(p, path, key);
    }
    if (apr_pool_create(&tmp, p) != APR_SUCCESS) {
        return apr_psprintf(p, "cannot read %s: out of memory", path);
    }
    err = read_key_file(p, tmp, path, &buf, &len);
    if (err == NULL) {
        err = pem_key(p, alg, path, (const char *)buf, len, key);
        OPENSSL_cleanse(buf, len);
    }
    apr_pool_destroy(tmp);
    return err;
}

const char *hs_jwt_key_from_ed25519_seed(apr_pool_t *p,
                                         const unsigned char seed[32],
                                         hs_jwt_key **key)
{
    EVP_PKEY *pkey;

    pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed,
                                           HS_ED25519_LEN);
    if (pkey == NULL) {
        return ossl_error(p, "cannot make the Ed25519 key");
    }
    return key_from_pkey(p, HS_JWT_EDDSA, "Ed25519 key", pkey, key);
}

hs_jwt_alg hs_jwt_key_alg(const hs_jwt_key *key)
{
    return key->alg;
}

const char *hs_jwt_key_kid(const hs_jwt_key *key)
{
    return key->kid;
}

void hs_jwt_key_set_kid(hs_jwt_key *key, const char *kid)
{
    key->kid = kid != NULL ? apr_pstrdup(key->pool, kid) : key->thumbprint;
    set_header(key);
}

/* ---- signing ------------------------------------------------------------- */

/* EVP_DigestSign with SHA-256 (RS256, ES256) or none (Ed25519, one-shot).
 * The signature goes into p. */
static const char *digest_sign(apr_pool_t *p, const hs_jwt_key *key,
                               const char *in, size_t len, unsigned char **sig,
                               size_t *siglen)
{
    const char *mdname = key->alg == HS_JWT_EDDSA ? NULL : "SHA256";
    const char *err = NULL;
    EVP_MD_CTX *ctx;
    unsigned char *buf;
    size_t n;
    int size;

    size = EVP_PKEY_get_size(key->pkey);
    if (size <= 0) {
        return ossl_error(p, "cannot size the signature");
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return ossl_error(p, "out of memory");
    }
    n = (size_t)size;
    buf = apr_palloc(p, n);
    if (EVP_DigestSignInit_ex(ctx, NULL, mdname, NULL, NULL, key->pkey, NULL) !=
        1) {
        err = ossl_error(p, "cannot start the signature");
    }
    else if (EVP_DigestSign(ctx, buf, &n, (const unsigned char *)in, len) !=
             1) {
        err = ossl_error(p, "signing failed");
    }
    EVP_MD_CTX_free(ctx);
    if (err == NULL) {
        *sig = buf;
        *siglen = n;
    }
    return err;
}

const char *hs_jws_sign_input(apr_pool_t *p, const hs_jwt_key *key,
                              const char *signing_input, size_t len,
                              const char **err)
{
    unsigned char *sig = NULL;
    size_t siglen = 0;
    const char *e;

    if (key == NULL || signing_input == NULL) {
        set_err(err, "no key or nothing to sign");
        return NULL;
    }
    if (key->alg == HS_JWT_HS256) {
        unsigned char mac[HS_HMAC_LEN];

        if (hs_hmac_sha256(key->secret, key->secret_len, signing_input, len,
                           mac) != 0) {
            set_err(err, "HMAC-SHA256 failed");
            return NULL;
        }
        return hs_b64url(p, mac, sizeof mac);
    }
    e = digest_sign(p, key, signing_input, len, &sig, &siglen);
    if (e != NULL) {
        set_err(err, apr_pstrcat(p, alg_names[key->alg], " ", e, NULL));
        return NULL;
    }
    if (key->alg == HS_JWT_ES256) {
        /* RFC 7518 3.4: JWS wants R||S, OpenSSL gives DER */
        unsigned char raw[2 * HS_P256_LEN];

        if (hs_ecdsa_der_to_raw(sig, siglen, raw, HS_P256_LEN) != 0) {
            set_err(err, "ES256 signature is not valid DER");
            return NULL;
        }
        return hs_b64url(p, raw, sizeof raw);
    }
    return hs_b64url(p, sig, siglen);
}

const char *hs_jwt_sign(apr_pool_t *p, const hs_jwt_key *key,
                        const char *claims_json, const char **err)
{
    const char *payload, *input, *sig;

    if (key == NULL || claims_json == NULL) {
        set_err(err, "no key or no claims");
        return NULL;
    }
    payload =
        hs_b64url(p, (const unsigned char *)claims_json, strlen(claims_json));
    if (payload == NULL) {
        set_err(err, "claims too large");
        return NULL;
    }
    input = apr_pstrcat(p, key->header_b64, ".", payload, NULL);
    sig = hs_jws_sign_input(p, key, input, strlen(input), err);
    if (sig == NULL) {
        return NULL;
    }
    return apr_pstrcat(p, input, ".", sig, NULL);
}

const char *hs_jwt_public_jwk(apr_pool_t *p, const hs_jwt_key *key)
{
    const char *kid = "";

    if (key == NULL || key->alg == HS_JWT_HS256) {
        return NULL;
    }
    if (key->kid != NULL) {
        const char *quoted = json_quote(p, key->kid);
        if (quoted == NULL) {
            return NULL;
        }
        kid = apr_pstrcat(p, ",\"kid\":", quoted, NULL);
    }
    switch (key->alg) {
        case HS_JWT_RS256:
            return apr_pstrcat(p, "{\"kty\":\"RSA\",\"n\":\"", key->n,
                               "\",\"e\":\"", key->e, "\"", kid,
                               ",\"alg\":\"RS256\",\"use\":\"sig\"}", NULL);
        case HS_JWT_ES256:
            return apr_pstrcat(p, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"",
                               key->x, "\",\"y\":\"", key->y, "\"", kid,
                               ",\"alg\":\"ES256\",\"use\":\"sig\"}", NULL);
        case HS_JWT_EDDSA:
            return apr_pstrcat(
                p, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"", key->x,
                "\"", kid, ",\"alg\":\"EdDSA\",\"use\":\"sig\"}", NULL);
        case HS_JWT_HS256:
        default:
            return NULL;
    }
}

int hs_ecdsa_der_to_raw(const unsigned char *der, size_t der_len,
                        unsigned char *out, size_t n)
{
    const unsigned char *q = der;
    const BIGNUM *r = NULL, *s = NULL;
    unsigned char *re = NULL;
    ECDSA_SIG *sig;
    int relen, rc = -1;

    if (der == NULL || out == NULL || n == 0 || n > INT_MAX / 2 ||
        der_len == 0 || der_len > LONG_MAX) {
        return -1;
    }
    sig = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
    if (sig == NULL) {
        ERR_clear_error();
        return -1;
    }
    if (q != der + der_len) {
        goto done; /* trailing bytes */
    }
    /* d2i accepts BER (long-form lengths, indefinite length): only the one
     * DER encoding re-encodes to the same bytes. */
    relen = i2d_ECDSA_SIG(sig, &re);
    if (relen <= 0 || (size_t)relen != der_len ||
        memcmp(re, der, der_len) != 0) {
        goto done;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_is_negative(r) || BN_is_negative(s) || BN_is_zero(r) ||
        BN_is_zero(s)) {
        goto done;
    }
    if ((size_t)BN_num_bytes(r) > n || (size_t)BN_num_bytes(s) > n) {
        goto done;
    }
    if (BN_bn2binpad(r, out, (int)n) != (int)n ||
        BN_bn2binpad(s, out + n, (int)n) != (int)n) {
        goto done;
    }
    rc = 0;
done:
    OPENSSL_free(re);
    ECDSA_SIG_free(sig);
    if (rc != 0) {
        ERR_clear_error();
    }
    return rc;
}
