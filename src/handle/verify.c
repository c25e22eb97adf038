/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify.c - POST {location}/verify: check the code, activate the customer,
 * issue the portal tokens (DESIGN.md "POST verify").
 *
 * The attempt is counted by the UPDATE that finds the code row (so it is
 * counted before any comparison, under the row lock, and parallel guesses
 * queue behind each other); then the HMAC of the given code is compared in
 * constant time. A wrong, expired or used code, an unknown address and an
 * active customer all get the same 400, after the same HMAC work and a
 * COMMIT that waits for the same WAL flush (decoy_commit()).
 */
#include <string.h>

#include "httpd.h"
#include "http_log.h"
#include "http_protocol.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "hs_config.h"
#include "hs_crypto.h"
#include "hs_db.h"
#include "hs_endpoints.h"
#include "hs_http.h"
#include "hs_json.h"
#include "hs_jwt.h"
#include "hs_metrics.h"
#include "hs_log.h"
#include "hs_ratelimit.h"
#include "hs_util.h"
#include "hs_validate.h"

APLOG_USE_MODULE(hydra_signup);

#define MSG_INVALID "Invalid or expired verification code"
#define MSG_LOCKED                                                             \
    "Too many failed attempts; request a new code by signing up again"
#define MSG_UNAVAILABLE "Service temporarily unavailable"
#define MSG_DAY_LIMIT                                                          \
    "Too many failed attempts for this address today; try again later"
#define NO_CUSTOMER "00000000-0000-0000-0000-000000000000"
#define DAY 86400

/* columns of HS_Q_VERIFY_ATTEMPT */
enum { V_CUSTOMER, V_TENANT, V_MAC, V_ATTEMPTS, V_EXPIRED, V_VOID, V_RELEASED };

/* HMAC of the given code for customer, raw (HS_HMAC_LEN bytes). */
static int code_mac(request_rec *r, const hs_dir_cfg *cfg, const char *customer,
                    const char *code, unsigned char out[HS_HMAC_LEN])
{
    const char *msg = apr_pstrcat(r->pool, customer, ":", code, NULL);
    const hs_secret *secret = hs_cfg_code_secret(cfg);
    return hs_hmac_sha256(secret->data, secret->len, msg, strlen(msg), out);
}

/*
 * The name of an address's attempt counters in the shared cache: an HMAC of
 * tenant slug and address under the code secret, so that the cache (maybe
 * a memcached shared by hosts) never holds an address. The same function
 * names them for signup (hs_attempt_key in hs_endpoints.h).
 */
const char *hs_attempt_key(request_rec *r, const hs_dir_cfg *cfg,
                           const char *kind, const char *slug,
                           const char *email)
{
    char *lower = apr_pstrdup(r->pool, email);
    const char *msg, *mac;
    char *p;

    for (p = lower; *p; p++) {
        *p = apr_tolower(*p);
    }
    msg = apr_pstrcat(r->pool, "attempts:", slug, ":", lower, NULL);
    mac = hs_hmac_sha256_hex(r->pool, hs_cfg_code_secret(cfg)->data,
                             hs_cfg_code_secret(cfg)->len, msg, strlen(msg));
    return mac ? apr_pstrcat(r->pool, "hs-a", kind, "|", mac, NULL) : NULL;
}

/* One signed token of type for customer/tenant. */
static const char *token(request_rec *r, const hs_dir_cfg *cfg,
                         const hs_jwt_key *key, const char *type,
                         const char *customer, const char *tenant,
                         const char *jti, long ttl)
{
    json_object *c = json_object_new_object();
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    const char *claims, *jwt, *err = NULL;

    json_object_object_add(c, "sub", json_object_new_string(customer));
    json_object_object_add(c, "tenant_id", json_object_new_string(tenant));
    json_object_object_add(c, "type", json_object_new_string(type));
    json_object_object_add(c, "iss",
                           json_object_new_string(hs_cfg_issuer(cfg)));
    json_object_object_add(c, "aud",
                           json_object_new_string(hs_cfg_audience(cfg)));
    json_object_object_add(c, "iat", json_object_new_int64(now));
    json_object_object_add(c, "exp", json_object_new_int64(now + ttl));
    json_object_object_add(c, "jti", json_object_new_string(jti));
    claims = hs_json_to_string(r->pool, c);
    json_object_put(c);
    jwt = hs_jwt_sign(r->pool, key, claims, &err);
    if (!jwt) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(00701) "signing the %s token failed: %s", type,
                      err ? err : "unknown error");
    }
    return jwt;
}

/*
 * The work of a counted attempt, for a request with nothing to count: a
 * transaction id (HS_Q_VERIFY_DECOY) and COMMIT, sent together, so that
 * the COMMIT waits for a WAL flush like an attempt's and the request makes
 * as many round trips as a pending signup's wrong code does (BEGIN with
 * the attempt, then COMMIT). Without it an unknown address answers
 * measurably faster (about 1.5 ms on a local database) than a pending
 * signup's wrong code, and the time would tell which addresses signed up.
 * A failure is logged (by hs_db too) and the answer goes anyway.
 */
static void decoy_commit(request_rec *r, hs_db *db)
{
    const hs_db_call call = {HS_Q_VERIFY_DECOY, 0, NULL, NULL};
    const char *state;

    if (hs_db_commit_with(db, &call, NULL, &state)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HSLOGNO(00403) "the timing decoy of an unmatched "
                                     "verify failed; answering anyway");
    }
}

static int finish(request_rec *r, hs_db *db, int commit, int status,
                  const char *text, long retry)
{
    if (!strcmp(text, MSG_LOCKED)) {
        hs_metrics_add(HS_M_RL_ATTEMPTS, 1);
    }
    if (hs_db_end(db, commit) && commit) {
        status = HTTP_SERVICE_UNAVAILABLE;
        text = MSG_UNAVAILABLE;
        retry = 5;
    }
    hs_db_release(db);
    return retry > 0 ? hs_send_retry(r, status, text, retry)
                     : hs_send_detail(r, status, text);
}

/* The right code: sign first, so that a customer is never activated
 * without tokens; then activate, consume, record the refresh jti, COMMIT
 * and answer 200. row is the HS_Q_VERIFY_ATTEMPT row. */
static int activate(request_rec *r, const hs_dir_cfg *cfg, hs_db *db,
                    const hs_jwt_key *key, const char **row)
{
    const char *args[3], *access, *refresh, *hash;
    char jti_a[37], jti_r[37];
    hs_db_result res;
    hs_db_call call;
    const char *state;
    json_object *o;

    if (hs_uuid4(jti_a) || hs_uuid4(jti_r)) {
        return finish(r, db, 0, HTTP_SERVICE_UNAVAILABLE, MSG_UNAVAILABLE, 5);
    }
    access = token(r, cfg, key, "access", row[V_CUSTOMER], row[V_TENANT], jti_a,
                   hs_cfg_access_ttl(cfg));
    refresh = token(r, cfg, key, "refresh", row[V_CUSTOMER], row[V_TENANT],
                    jti_r, hs_cfg_refresh_ttl(cfg));
    hash = hs_sha256_hex(r->pool, jti_r, strlen(jti_r));
    if (!access || !refresh || !hash) {
        return finish(r, db, 0, HTTP_INTERNAL_SERVER_ERROR,
                      "Internal Server Error", 0);
    }
    args[0] = row[V_CUSTOMER];
    args[1] = hash;
    args[2] = apr_ltoa(r->pool, hs_cfg_refresh_ttl(cfg));
    call.label = HS_Q_ACTIVATE;
    call.nargs = 3;
    call.args = args;
    call.res = &res;
    /* the statement and COMMIT in one round trip */
    if (hs_db_commit_with(db, &call, NULL, &state)) {
        return hs_send_retry(r, HTTP_SERVICE_UNAVAILABLE, MSG_UNAVAILABLE, 5);
    }
    hs_db_release(db);
    if (res.nrows != 1) {
        /* consumed by a concurrent request meanwhile (this attempt is
         * counted, and nothing else was changed) */
        return hs_send_detail(r, HTTP_BAD_REQUEST, MSG_INVALID);
    }
    o = hs_json_pool_own(r->pool, json_object_new_object());
    json_object_object_add(o, "access_token", json_object_new_string(access));
    json_object_object_add(o, "refresh_token", json_object_new_string(refresh));
    json_object_object_add(o, "token_type", json_object_new_string("bearer"));
    json_object_object_add(o, "expires_in",
                           json_object_new_int64(hs_cfg_access_ttl(cfg)));
    json_object_object_add(o, "customer_id",
                           json_object_new_string(row[V_CUSTOMER]));
    json_object_object_add(o, "tenant_id",
                           json_object_new_string(row[V_TENANT]));
    return hs_send_json(r, HTTP_OK, hs_json_to_string(r->pool, o));
}

/* The per-day cap, for every address alike (pending, active, unknown),
 * counted before anything is compared or looked up. OK-style answer sent
 * (returned), or -1 to go on with *code_key set. */
static int day_cap(request_rec *r, const hs_dir_cfg *cfg,
                   const hs_verify_req *req, const char **code_key)
{
    const char *day_key;
    unsigned long count;
    long left;

    if (!(day_key =
              hs_attempt_key(r, cfg, "d", req->tenant_slug, req->email)) ||
        !(*code_key =
              hs_attempt_key(r, cfg, "c", req->tenant_slug, req->email))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(01205) "no code secret in effect here "
                                     "(HydraSignupCodeSecretFile): verify "
                                     "refused");
        return hs_send_internal_error(r);
    }
    if (hs_counter_hit(r, day_key, DAY, &count, &left)) {
        return hs_send_retry(r, HTTP_SERVICE_UNAVAILABLE, MSG_UNAVAILABLE, 5);
    }
    if (count > (unsigned long)hs_cfg_max_attempts_per_day(cfg)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      HSLOGNO(01206) "verify refused: more than %d attempts "
                                     "for one address of tenant %s today",
                      hs_cfg_max_attempts_per_day(cfg), req->tenant_slug);
        hs_metrics_add(HS_M_RL_ATTEMPTS, 1);
        return hs_send_retry(r, HTTP_TOO_MANY_REQUESTS, MSG_DAY_LIMIT, left);
    }
    return -1;
}

/* Nobody to verify (unknown address, active customer, concealed or not):
 * counted like a code's attempts, in the shared cache rather than a row
 * per address, so that the answers follow the same sequence as a pending
 * signup's (400 x MaxAttempts, then 429 until a new signup request); the
 * same HMAC work, a COMMIT that waits for a WAL flush as a counted
 * attempt's does. */
static int nobody(request_rec *r, const hs_dir_cfg *cfg, hs_db *db,
                  const hs_verify_req *req, const char *code_key)
{
    unsigned char given[HS_HMAC_LEN], stored[HS_HMAC_LEN];
    unsigned long count;
    long left;
    int over;

    if (hs_counter_hit(r, code_key, hs_cfg_pending_ttl(cfg), &count, &left)) {
        return finish(r, db, 0, HTTP_SERVICE_UNAVAILABLE, MSG_UNAVAILABLE, 5);
    }
    over = count > (unsigned long)hs_cfg_max_attempts(cfg);
    memset(stored, 0, sizeof(stored));
    if (!over && code_mac(r, cfg, NO_CUSTOMER, req->code, given) == 0) {
        (void)hs_ct_equal(given, stored, sizeof(given));
    }
    decoy_commit(r, db); /* the transaction is over: finish has no COMMIT */
    if (over) {
        return finish(r, db, 0, HTTP_TOO_MANY_REQUESTS, MSG_LOCKED,
                      hs_cfg_resend_interval(cfg));
    }
    return finish(r, db, 0, HTTP_BAD_REQUEST, MSG_INVALID, 0);
}

int hs_verify_handle(request_rec *r, const hs_dir_cfg *cfg)
{
    json_object *body;
    hs_errors *errs;
    hs_verify_req req;
    hs_db *db;
    hs_db_result res;
    hs_db_call call;
    const char *args[2], **row;
    const hs_jwt_key *key;
    unsigned char given[HS_HMAC_LEN], stored[HS_HMAC_LEN];
    int match, attempts, rc;
    const char *code_key = NULL;

    if (!(body = hs_limited_json(r, cfg, HS_RATE_VERIFY))) {
        return OK;
    }
    errs = hs_errors_make(r->pool);
    if (hs_verify_req_read(r->pool, body, &req, errs)) {
        return hs_send_errors(r, errs);
    }
    if (!hs_cfg_serves(cfg, req.tenant_slug)) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }
    if (!(key = hs_cfg_jwt_key(cfg))) {
        /* refuse before any attempt is counted or code compared */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(00702) "no JWT key was loaded for the "
                                     "algorithm, key file and kid in effect "
                                     "here: verify refused");
        return hs_send_internal_error(r);
    }
    if ((rc = day_cap(r, cfg, &req, &code_key)) != -1) {
        return rc;
    }
    /* BEGIN and count the attempt, in one round trip */
    args[0] = req.tenant_slug;
    args[1] = req.email;
    call.label = HS_Q_VERIFY_ATTEMPT;
    call.nargs = 2;
    call.args = args;
    call.res = &res;
    if (!(db = hs_db_acquire(r)) || hs_db_begin_with(db, &call, 1)) {
        return hs_send_retry(r, HTTP_SERVICE_UNAVAILABLE, MSG_UNAVAILABLE, 5);
    }
    if (res.nrows == 0) {
        return nobody(r, cfg, db, &req, code_key);
    }
    row = res.rows[0];
    attempts = (int)apr_atoi64(row[V_ATTEMPTS]);
    if (code_mac(r, cfg, row[V_CUSTOMER], req.code, given) ||
        hs_hex_decode(stored, sizeof(stored), row[V_MAC])) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(00401) "cannot compare the code of customer %s",
                      row[V_CUSTOMER]);
        return finish(r, db, 0, HTTP_SERVICE_UNAVAILABLE, MSG_UNAVAILABLE, 5);
    }
    if (hs_db_true(row[V_VOID]) || attempts > hs_cfg_max_attempts(cfg)) {
        /* locked out: no comparison; the code stays void until a new
         * signup request mails a new one */
        if (!hs_db_true(row[V_VOID])) {
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                          HSLOGNO(00402) "customer %s: %d failed verify "
                                         "attempts, code voided",
                          row[V_CUSTOMER], attempts - 1);
            if (hs_db_exec(db, HS_Q_VERIFY_VOID, NULL, 1, &row[V_CUSTOMER])) {
                return finish(r, db, 0, HTTP_SERVICE_UNAVAILABLE,
                              MSG_UNAVAILABLE, 5);
            }
        }
        return finish(r, db, 1, HTTP_TOO_MANY_REQUESTS, MSG_LOCKED,
                      hs_cfg_resend_interval(cfg));
    }
    match = hs_ct_equal(given, stored, sizeof(given));
    if (!match || hs_db_true(row[V_EXPIRED]) || hs_db_true(row[V_RELEASED])) {
        /* the attempt stays counted. A released slot means the code
         * expired (the reaper's clock ran ahead of this transaction's):
         * the same answer, and HS_Q_ACTIVATE refuses a customer without a
         * slot in any case */
        return finish(r, db, 1, HTTP_BAD_REQUEST, MSG_INVALID, 0);
    }

    return activate(r, cfg, db, key, row);
}
