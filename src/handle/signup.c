/* SPDX-License-Identifier: Apache-2.0 */
/*
 * signup.c - POST {location}: create a pending customer, place it on one of
 * the tenant's shared nodes, store a hashed code and queue the email.
 *
 * One transaction (DESIGN.md "POST signup"), in this order so that the node
 * row's lock - the throughput limit of a busy tenant - is held for one
 * statement and the COMMIT only. A new address:
 *
 *   BEGIN, address lock, context (tenant, plan, existing
 *   customer, mail counters)                                  1 round trip
 *   write the message to spool tmp/ and fsync it
 *   the customer on a node with room, its code (HMAC) and
 *   mail logs (hydra_signup_new_customer), COMMIT             1 round trip
 *   rename tmp/ -> new/, fsync new/
 *
 * A pending address gets a new code, and a slot again if its old one was
 * released; a label clash falls back to the same steps one statement at a
 * time (new_signup_stepwise).
 *
 * Any failure before COMMIT rolls back and removes the tmp/ file: nothing
 * half-written, no mail for a signup that does not exist.
 */
#include <string.h>

#include "httpd.h"
#include "http_log.h"
#include "http_protocol.h"

#include <apr_strings.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "hs_config.h"
#include "hs_crypto.h"
#include "hs_db.h"
#include "hs_endpoints.h"
#include "hs_http.h"
#include "hs_json.h"
#include "hs_metrics.h"
#include "hs_log.h"
#include "hs_mail.h"
#include "hs_ratelimit.h"
#include "hs_sitelabel.h"
#include "hs_spool.h"
#include "hs_validate.h"

APLOG_USE_MODULE(hydra_signup);

#define MSG_OK "Check your email to get started"
#define MSG_UNAVAILABLE "Service temporarily unavailable"
#define MSG_NO_CAPACITY "No shared hosting capacity available"
#define MSG_EXISTS "An account with this email address already exists"
#define MSG_RESEND "A verification code was sent recently; try again later"
#define MSG_MAIL_LIMIT                                                         \
    "Too many verification emails for this address; try again later"
#define MSG_TENANT_MAIL_LIMIT                                                  \
    "Too many verification emails right now; try again later"
#define MAX_LABEL_TRIES 200
#define SLOT_TRIES 3
#define NO_CAPACITY_RETRY 300
#define UNAVAILABLE_RETRY 5

/* columns of HS_Q_TENANT */
enum {
    C_TENANT_ID,
    C_DOMAIN,
    C_ENABLED,
    C_PLAN_OK,
    C_CUST_ID,
    C_CUST_STATUS,
    C_CUST_SITE,
    C_CODE_AGE,
    C_MAILS_HOUR,
    C_MAIL_WINDOW_LEFT,
    C_LAST_MAIL_AGE,
    C_TENANT_MAILS /* "count seconds-left" */
};

/* where a signup's time goes (LogLevel hydra_signup:trace1, HS00909) */
enum {
    P_START,
    P_ACQUIRED,
    P_BEGUN,
    P_LOCKED,
    P_CONTEXT,
    P_INSERTED,
    P_CODE,
    P_SPOOLED,
    P_SLOT,
    P_COMMITTED,
    P_PUBLISHED,
    P_N
};

typedef struct {
    request_rec *r;
    const hs_dir_cfg *cfg;
    apr_time_t at[P_N];
    hs_signup_req req;
    const char *mailbox; /* the budget's key: hs_email_mailbox */
    hs_db *db;
    hs_spool_msg *msg;
    const char **ctx;     /* the context row */
    const char *customer; /* id */
    const char *site_url;
} signup;

static void mark(signup *s, int phase)
{
    s->at[phase] = apr_time_now();
}

/* One trace line per committed signup: microseconds per phase. */
static void log_phases(signup *s)
{
    static const char *const names[P_N] = {
        "start", "acquire", "begin", "lock",   "context", "insert",
        "code",  "spool",   "slot",  "commit", "publish"};
    char buf[512];
    apr_size_t len = 0;
    apr_time_t prev = s->at[P_START];
    int i;

    if (!APLOGrtrace1(s->r)) {
        return;
    }
    buf[0] = '\0';
    for (i = 1; i < P_N && len < sizeof(buf); i++) {
        long us = s->at[i] ? (long)(s->at[i] - prev) : -1;
        len +=
            apr_snprintf(buf + len, sizeof(buf) - len, " %s=%ld", names[i], us);
        if (s->at[i]) {
            prev = s->at[i];
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, s->r,
                  HSLOGNO(00909) "signup phases (us):%s total=%ld", buf,
                  (long)(prev - s->at[P_START]));
}

static long num(const char *v, long dflt)
{
    return v ? (long)apr_atoi64(v) : dflt;
}

/* Rolls back, removes the queued message, and answers. */
static int fail(signup *s, int status, const char *text, long retry)
{
    if (!strcmp(text, MSG_RESEND)) {
        hs_metrics_add(HS_M_RL_RESEND, 1);
    }
    else if (!strcmp(text, MSG_MAIL_LIMIT)) {
        hs_metrics_add(HS_M_RL_MAIL_ADDRESS, 1);
    }
    else if (!strcmp(text, MSG_TENANT_MAIL_LIMIT)) {
        hs_metrics_add(HS_M_RL_MAIL_TENANT, 1);
    }
    if (s->db) {
        hs_db_end(s->db, 0);
    }
    if (s->msg) {
        hs_spool_discard(s->msg);
        s->msg = NULL;
    }
    return retry > 0 ? hs_send_retry(s->r, status, text, retry)
                     : hs_send_detail(s->r, status, text);
}

static int unavailable(signup *s)
{
    return fail(s, HTTP_SERVICE_UNAVAILABLE, MSG_UNAVAILABLE,
                UNAVAILABLE_RETRY);
}

/* The answer when s gets no slot: rc (from has_free_slot or take_slot)
 * below 0, the database failed; 0, every active shared node is full. */
static int no_slot(signup *s, int rc)
{
    if (rc < 0) {
        return unavailable(s);
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, s->r,
                  HSLOGNO(00303) "tenant %s has no free slot on any "
                                 "active shared node: signup refused",
                  s->req.tenant_slug);
    return fail(s, HTTP_SERVICE_UNAVAILABLE, MSG_NO_CAPACITY,
                NO_CAPACITY_RETRY);
}

/* A RFC 4122 v4 shaped id from an HMAC: the same for the same address, so
 * a concealed answer looks like a pending signup's (same id each time). */
static const char *conceal_id(signup *s)
{
    const char *msg = apr_pstrcat(s->r->pool, "conceal:", s->ctx[C_TENANT_ID],
                                  ":", s->req.email, NULL);
    const char *h =
        hs_hmac_sha256_hex(s->r->pool, hs_cfg_code_secret(s->cfg)->data,
                           hs_cfg_code_secret(s->cfg)->len, msg, strlen(msg));
    char *id;
    if (!h) {
        return NULL;
    }
    id = apr_psprintf(s->r->pool, "%.8s-%.4s-4%.3s-%c%.3s-%.12s", h, h + 8,
                      h + 13, "89ab"[h[16] % 4], h + 17, h + 20);
    return id;
}

/* Renders the mail of kind and writes it to the spool's tmp/ (fsync'd). */
static const char *queue_mail(signup *s, hs_mail_kind kind, const char *code)
{
    request_rec *r = s->r;
    hs_mail_vars v;
    const char *text, *err;
    size_t len;
    long ttl = hs_cfg_code_ttl(s->cfg);

    memset(&v, 0, sizeof(v));
    v.from = hs_cfg_mail_from(s->cfg);
    v.to = hs_email_ascii_domain(r->pool, s->req.email); /* SMTP needs ASCII */
    v.code = code;
    v.company = s->req.company_name;
    v.site_url = s->site_url;
    v.expiry_minutes = (int)((ttl + 59) / 60);
    v.hostname =
        r->server->server_hostname ? r->server->server_hostname : "localhost";
    v.now = (long long)apr_time_sec(r->request_time);
    if ((err = hs_mail_render(r->pool, hs_cfg_template(s->cfg, kind), &v, &text,
                              &len))) {
        return apr_pstrcat(r->pool, "rendering the mail failed: ", err, NULL);
    }
    mark(s, P_CODE);
    if ((err = hs_spool_write(r->pool, hs_cfg_spool_dir(s->cfg), text, len,
                              &s->msg))) {
        s->msg = NULL;
        hs_metrics_add(HS_M_SPOOL_FAILURES, 1);
        return apr_pstrcat(r->pool, "writing to the spool failed: ", err, NULL);
    }
    mark(s, P_SPOOLED);
    return NULL;
}

/* After COMMIT: publish the queued mail; answers 201. */
static int answer_committed(signup *s, const char *customer_id)
{
    request_rec *r = s->r;
    json_object *o;
    const char *err;

    mark(s, P_COMMITTED);
    hs_db_release(s->db); /* the rest needs neither it nor the gate */
    s->db = NULL;
    if (s->msg && (err = hs_spool_publish(s->msg))) {
        /* the signup exists; a new signup request mails a fresh code */
        hs_metrics_add(HS_M_SPOOL_FAILURES, 1);
        ap_log_rerror(APLOG_MARK, APLOG_CRIT, 0, r,
                      HSLOGNO(00501) "committed signup %s, but its mail "
                                     "could not be moved into new/: %s",
                      customer_id, err);
    }
    else if (s->msg) {
        hs_metrics_add(HS_M_MAILS_SPOOLED, 1);
    }
    s->msg = NULL;
    mark(s, P_PUBLISHED);
    log_phases(s);
    o = hs_json_pool_own(r->pool, json_object_new_object());
    json_object_object_add(o, "customer_id",
                           json_object_new_string(customer_id));
    json_object_object_add(o, "message", json_object_new_string(MSG_OK));
    json_object_object_add(o, "site_url", json_object_new_string(s->site_url));
    return hs_send_json(r, HTTP_CREATED, hs_json_to_string(r->pool, o));
}

/* COMMIT, then publish the queued mail; answers 201. */
static int commit_and_answer(signup *s, const char *customer_id)
{
    mark(s, P_SLOT);
    if (hs_db_end(s->db, 1)) {
        s->db = NULL; /* already ended */
        return unavailable(s);
    }
    return answer_committed(s, customer_id);
}

/* A fresh code for customer into code, and its HMAC (hex) into *mac.
 * NULL, or what failed. */
static const char *make_code(signup *s, const char *customer,
                             char code[HS_CODE_LEN + 1], const char **mac)
{
    request_rec *r = s->r;
    char *msg;

    if (hs_code_generate(code)) {
        return "the random number generator failed";
    }
    msg = apr_pstrcat(r->pool, customer, ":", code, NULL);
    *mac =
        hs_hmac_sha256_hex(r->pool, hs_cfg_code_secret(s->cfg)->data,
                           hs_cfg_code_secret(s->cfg)->len, msg, strlen(msg));
    OPENSSL_cleanse(msg, strlen(msg));
    if (!*mac) {
        OPENSSL_cleanse(code, HS_CODE_LEN + 1);
        return "HMAC failed";
    }
    return NULL;
}

/* Stores a new code for customer (voiding any old one) and queues its
 * mail. Returns NULL, or "resend" when a code went out too recently, or an
 * error text (logged by the caller). */
static const char *new_code(signup *s, const char *customer)
{
    request_rec *r = s->r;
    char code[HS_CODE_LEN + 1];
    const char *mac, *args[6], *err;
    hs_db_result res;

    if ((err = make_code(s, customer, code, &mac))) {
        return err;
    }
    args[0] = customer;
    args[1] = mac;
    args[2] = apr_ltoa(r->pool, hs_cfg_code_ttl(s->cfg));
    args[3] = apr_ltoa(r->pool, hs_cfg_resend_interval(s->cfg));
    args[4] = s->ctx[C_TENANT_ID]; /* the mail logs (HS_Q_UPSERT_CODE) */
    args[5] = s->mailbox;
    if (hs_db_select(s->db, HS_Q_UPSERT_CODE, &res, 6, args)) {
        err = "database";
    }
    else if (res.nrows == 0) {
        err = "resend";
    }
    else {
        err = queue_mail(s, HS_MAIL_VERIFY, code);
    }
    /* the code lives on only in the queued message */
    OPENSSL_cleanse(code, sizeof(code));
    return err;
}

static int code_failed(signup *s, const char *why)
{
    if (!strcmp(why, "resend")) {
        return fail(s, HTTP_TOO_MANY_REQUESTS, MSG_RESEND,
                    hs_cfg_resend_interval(s->cfg));
    }
    if (strcmp(why, "database")) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, s->r,
                      HSLOGNO(00301) "signup aborted: %s", why);
    }
    return unavailable(s);
}

static const char *site_url_for(signup *s, int n)
{
    return apr_pstrcat(s->r->pool, "https://",
                       hs_site_label(s->r->pool, s->req.company_name, n), ".",
                       s->ctx[C_DOMAIN], NULL);
}

/* After the plain label is taken: the next number of the company name's
 * labels, from its counter (one index probe, never a look at the tenant's
 * customers); -1 on error. */
static int label_next(signup *s)
{
    const char *args[2] = {s->ctx[C_TENANT_ID],
                           hs_site_label_base(s->r->pool, s->req.company_name)};
    hs_db_result res;
    apr_int64_t n;

    if (hs_db_select(s->db, HS_Q_LABEL_BUMP, &res, 2, args)) {
        return -1;
    }
    n = res.nrows == 1 && res.rows[0][0] ? apr_atoi64(res.rows[0][0]) : 0;
    if (n < 2 || n > 999999999) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, s->r,
                      HSLOGNO(01301) "the site label counter of %s in tenant "
                                     "%s is out of range (%" APR_INT64_T_FMT
                                     "): signup refused",
                      args[1], s->req.tenant_slug, n);
        return -1;
    }
    return (int)n;
}

/* The site_url a new signup with this company name would get now (the
 * first label not taken in the tenant by a customer or a decoy); NULL on
 * error. */
static const char *first_free_site_url(signup *s)
{
    const char *args[4];
    hs_db_result res;
    int n, tries;

    args[0] = args[2] = s->ctx[C_TENANT_ID];
    for (n = 1, tries = 0; tries < MAX_LABEL_TRIES; tries++) {
        args[1] = args[3] = site_url_for(s, n);
        if (hs_db_select(s->db, HS_Q_SITE_TAKEN, &res, 4, args)) {
            return NULL;
        }
        if (res.nrows == 0) {
            return args[1];
        }
        /* taken: a real signup would take the next number (a clash with a
         * row made by hand steps on) */
        if ((n = label_next(s)) < 0) {
            return NULL;
        }
    }
    return NULL;
}

static int reclaim(signup *s);

/* Is there a free slot a signup could take (after letting unusable codes'
 * slots go, as take_slot does)? 1 yes, 0 no, -1 error. */
static int has_free_slot(signup *s)
{
    const char *args[1] = {s->ctx[C_TENANT_ID]};
    hs_db_result res;

    if (hs_db_select(s->db, HS_Q_FREE_SLOT, &res, 1, args)) {
        return -1;
    }
    if (res.nrows > 0) {
        return 1;
    }
    if (reclaim(s) || hs_db_select(s->db, HS_Q_FREE_SLOT, &res, 1, args)) {
        return -1;
    }
    return res.nrows > 0;
}

/*
 * The address belongs to an active customer. Concealed, it is answered as
 * a pending signup of that address would be, from a decoy kept in the
 * module's own table (hydra_signup_decoys; the platform's tables are not
 * written): the first answer's site_url, kept on a re-signup under another
 * company name and taken for other signups; the resend interval counted
 * from the decoy's last "code"; 503 without a free slot whenever a real
 * signup would need one (no live code); verify counts its attempts in the
 * shared cache, restarted here as a new code restarts a pending one's.
 */
static int existing_active(signup *s)
{
    const char *id, *why, *args[3], *key;
    hs_db_result res;
    long resend = hs_cfg_resend_interval(s->cfg);
    int live = 0, slot;

    if (!hs_cfg_conceal(s->cfg)) {
        return fail(s, HTTP_CONFLICT, MSG_EXISTS, 0);
    }
    /* decoys go when a pending signup's row would (HydraSignupPendingTTL) */
    args[0] = s->ctx[C_TENANT_ID];
    args[1] = apr_ltoa(s->r->pool, hs_cfg_pending_ttl(s->cfg));
    if (hs_db_exec(s->db, HS_Q_DECOY_PRUNE, NULL, 2, args)) {
        return unavailable(s);
    }
    args[0] = apr_ltoa(s->r->pool, hs_cfg_code_ttl(s->cfg));
    args[1] = s->ctx[C_TENANT_ID];
    args[2] = s->req.email;
    if (hs_db_select(s->db, HS_Q_DECOY_GET, &res, 3, args)) {
        return unavailable(s);
    }
    if (res.nrows > 0) {
        long age = num(res.rows[0][1], -1);
        if (age >= 0 && age < resend) {
            return fail(s, HTTP_TOO_MANY_REQUESTS, MSG_RESEND, resend - age);
        }
        s->site_url = res.rows[0][0];
        live = hs_db_true(res.rows[0][2]);
    }
    else if (!(s->site_url = first_free_site_url(s))) {
        /* the site_url the visitor's own company name would get from a
         * real signup: the owner's would tell who the customer is */
        return unavailable(s);
    }
    if (!s->site_url) {
        return unavailable(s);
    }
    if (!live) {
        /* a new signup, or a pending one whose code expired, takes a slot */
        if ((slot = has_free_slot(s)) <= 0) {
            return no_slot(s, slot);
        }
    }
    if (!(id = conceal_id(s))) {
        return unavailable(s);
    }
    args[0] = s->ctx[C_TENANT_ID];
    args[1] = s->req.email;
    args[2] = s->site_url;
    if (hs_db_select(s->db, HS_Q_DECOY_PUT, &res, 3, args)) {
        return unavailable(s);
    }
    args[1] = s->mailbox;
    if (hs_db_exec(s->db, HS_Q_MAIL_LOG, NULL, 2, args)) {
        return unavailable(s);
    }
    if ((why = queue_mail(s, HS_MAIL_EXISTS, NULL))) {
        return code_failed(s, why);
    }
    /* as a pending signup's new code restarts its attempt count, so does
     * the decoy's (verify counts an active address in the shared cache) */
    if ((key = hs_attempt_key(s->r, s->cfg, "c", s->req.tenant_slug,
                              s->req.email))) {
        hs_counter_reset(s->r, key);
    }
    return commit_and_answer(s, id);
}

static int place_and_answer(signup *s);

/* The address has a pending signup: same customer, fresh code, and a slot
 * again if its old one was released. */
static int existing_pending(signup *s)
{
    const char *why;
    hs_db_result res;
    long age = num(s->ctx[C_CODE_AGE], -1);
    long resend = hs_cfg_resend_interval(s->cfg);

    if (age >= 0 && age < resend) {
        return fail(s, HTTP_TOO_MANY_REQUESTS, MSG_RESEND, resend - age);
    }
    s->customer = s->ctx[C_CUST_ID];
    s->site_url = s->ctx[C_CUST_SITE];
    if ((why = new_code(s, s->customer))) {
        return code_failed(s, why);
    }
    /* the new code is usable, so the signup must hold a slot: the old
     * code's was given back when it expired or went void. The code row
     * and the customer row are locked now, so no release runs between
     * this look and COMMIT. */
    if (hs_db_select(s->db, HS_Q_CUSTOMER_SLOT, &res, 1, &s->customer)) {
        return unavailable(s);
    }
    if (res.nrows != 1) {
        /* deleted (PendingTTL) since the context query */
        return unavailable(s);
    }
    if (hs_db_true(res.rows[0][0])) {
        return place_and_answer(s);
    }
    return commit_and_answer(s, s->customer);
}

/* Inserts the pending customer under the first free site label. Returns 0,
 * 1 when the address was taken meanwhile, -1 on error. */
static int insert_customer(signup *s)
{
    request_rec *r = s->r;
    char id[37];
    const char *args[8], *by_email[2];
    hs_db_result res;
    int n, tries;

    if (hs_uuid4(id)) {
        return -1;
    }
    s->customer = apr_pstrdup(r->pool, id);
    args[0] = s->customer;
    args[1] = s->ctx[C_TENANT_ID];
    args[2] = s->req.company_name;
    args[3] = s->req.email;
    args[4] = s->req.plan;
    for (n = 1, tries = 0; tries < MAX_LABEL_TRIES; tries++) {
        s->site_url = site_url_for(s, n);
        args[5] = s->site_url;
        args[6] = s->ctx[C_TENANT_ID];
        args[7] = s->site_url;
        if (hs_db_select(s->db, HS_Q_INSERT_CUSTOMER, &res, 8, args)) {
            return -1;
        }
        if (res.nrows == 1) {
            return 0;
        }
        /* a conflict: the address (a concurrent signup won) or the label
         * (a customer's or a decoy's) */
        by_email[0] = s->ctx[C_TENANT_ID];
        by_email[1] = s->req.email;
        if (hs_db_select(s->db, HS_Q_CUSTOMER_BY_EMAIL, &res, 2, by_email)) {
            return -1;
        }
        if (res.nrows > 0) {
            return 1;
        }
        /* the label: the name's next number (again after a clash with a
         * row made by hand: the counter moves past it) */
        if ((n = label_next(s)) < 0) {
            return -1;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  HSLOGNO(00302) "no free site label for a company name "
                                 "after %d tries",
                  MAX_LABEL_TRIES);
    return -1;
}

/* Gives back the tenant's slots held by codes that can no longer be used
 * and purges its signups past PendingTTL, inside this transaction (the
 * reaper does the same every few seconds; this is for a signup that finds
 * no room before it runs). 0, or -1 on error. */
static int reclaim(signup *s)
{
    const char *ttl = apr_ltoa(s->r->pool, hs_cfg_pending_ttl(s->cfg));
    const char *purge[3] = {s->ctx[C_TENANT_ID], ttl, ttl};

    if (hs_db_select(s->db, HS_Q_RELEASE_TENANT, NULL, 1,
                     &s->ctx[C_TENANT_ID]) ||
        hs_db_select(s->db, HS_Q_PURGE_TENANT, NULL, 3, purge)) {
        return -1;
    }
    return 0;
}

/* Takes one slot for s->customer (who holds none). 1 taken, 0 no
 * capacity, -1 error. */
static int take_slot(signup *s)
{
    const char *label = hs_cfg_placement(s->cfg) == HS_PLACE_FILL
                            ? HS_Q_TAKE_SLOT_FILL
                            : HS_Q_TAKE_SLOT_SPREAD;
    const char *args[2] = {s->ctx[C_TENANT_ID], s->customer};
    hs_db_result res;
    int i;

    for (i = 0; i < SLOT_TRIES; i++) {
        if (hs_db_select(s->db, label, &res, 2, args)) {
            hs_metrics_add(HS_M_PLACE_ERROR, 1);
            return -1;
        }
        if (res.nrows == 1) {
            hs_metrics_add(HS_M_PLACED, 1);
            return 1;
        }
        /* the chosen node filled up while we waited for it, or all are
         * full: let unusable codes' slots go, then look again */
        if (i == 0 && reclaim(s)) {
            hs_metrics_add(HS_M_PLACE_ERROR, 1);
            return -1;
        }
    }
    hs_metrics_add(HS_M_NO_CAPACITY, 1);
    return 0;
}

/* A slot for s->customer; answers (and returns) unless it got one. */
static int need_slot(signup *s, int *answered)
{
    int rc = take_slot(s);
    *answered = rc <= 0;
    return rc <= 0 ? no_slot(s, rc) : OK;
}

/* The slot statements' fill argument (HydraSignupPlacement). */
static const char *fill_arg(const signup *s)
{
    return hs_cfg_placement(s->cfg) == HS_PLACE_FILL ? "true" : "false";
}

/* A slot for s->customer (hydra_signup_take_slot, under a savepoint) and
 * COMMIT in one round trip (hs_db_commit_with), so that the node row is
 * held for the slot statement and the commit only; then the 201. When no
 * node has room: let unusable codes' slots go and look again (take_slot),
 * then COMMIT. */
static int place_and_answer(signup *s)
{
    const char *args[3] = {s->ctx[C_TENANT_ID], s->customer, fill_arg(s)};
    const char *state;
    hs_db_result res;
    hs_db_call call = {HS_Q_PLACE, 3, args, &res};
    int rc, answered;

    rc = hs_db_commit_with(s->db, &call, "HS", &state);
    if (rc == 0) {
        hs_metrics_add(HS_M_PLACED, 1);
        mark(s, P_SLOT); /* the slot and the COMMIT */
        return answer_committed(s, s->customer);
    }
    if (rc < 0) {
        hs_metrics_add(HS_M_PLACE_ERROR, 1);
        return unavailable(s);
    }
    rc = need_slot(s, &answered);
    if (answered) {
        return rc;
    }
    return commit_and_answer(s, s->customer);
}

/* A new address, the slow way: the customer under the first free label
 * (clashes looked into one by one), its code, then a slot and COMMIT. */
static int new_signup_stepwise(signup *s)
{
    const char *why;
    int rc;

    rc = insert_customer(s);
    if (rc < 0) {
        return unavailable(s);
    }
    mark(s, P_INSERTED);
    if (rc == 1) {
        /* a concurrent signup with this address just committed */
        return fail(s, HTTP_TOO_MANY_REQUESTS, MSG_RESEND,
                    hs_cfg_resend_interval(s->cfg));
    }
    if ((why = new_code(s, s->customer))) {
        return code_failed(s, why);
    }
    return place_and_answer(s);
}

/*
 * The customer, its code, its mail logs and its slot in one statement
 * (HS_Q_NEW_CUSTOMER) sent with its COMMIT (hs_db_commit_with), so the
 * node row is held for that round trip only. 0 committed; 1 the statement
 * failed with one of our SQLSTATEs (*state: HS503 no room, HS409 the
 * address or label taken), nothing of it written and the transaction open;
 * -1 an error (logged, rolled back).
 */
static int insert_placed(signup *s, const char *mac, const char **state)
{
    const char *args[10] = {s->customer,
                            s->ctx[C_TENANT_ID],
                            s->req.company_name,
                            s->req.email,
                            s->req.plan,
                            s->site_url,
                            mac,
                            apr_ltoa(s->r->pool, hs_cfg_code_ttl(s->cfg)),
                            s->mailbox,
                            fill_arg(s)};
    hs_db_result res;
    hs_db_call call = {HS_Q_NEW_CUSTOMER, 10, args, &res};

    return hs_db_commit_with(s->db, &call, "HS", state);
}

/*
 * A new address in one round trip after the context query: the message is
 * queued (fsync'd) first, then the customer under the company name's plain
 * label, on a node with room, with its code and mail logs, and COMMIT
 * (insert_placed). When no node had room (HS503) unusable codes' slots go
 * (reclaim) and it is tried once more; when the label or the address
 * clashed (HS409) the message goes and new_signup_stepwise takes over.
 */
static int new_signup(signup *s)
{
    request_rec *r = s->r;
    char id[37], code[HS_CODE_LEN + 1];
    const char *mac, *err, *state = NULL;
    int rc, tries;

    if (hs_uuid4(id)) {
        return unavailable(s);
    }
    s->customer = apr_pstrdup(r->pool, id);
    s->site_url = site_url_for(s, 1);
    if ((err = make_code(s, s->customer, code, &mac))) {
        return code_failed(s, err);
    }
    mark(s, P_INSERTED); /* sent with the slot and COMMIT: in "slot" */
    err = queue_mail(s, HS_MAIL_VERIFY, code);
    OPENSSL_cleanse(code, sizeof(code)); /* it lives on in the message */
    if (err) {
        return code_failed(s, err);
    }
    for (tries = 0; tries < 2; tries++) {
        rc = insert_placed(s, mac, &state);
        if (rc < 0) {
            hs_metrics_add(HS_M_PLACE_ERROR, 1);
            return unavailable(s);
        }
        if (rc == 0) {
            hs_metrics_add(HS_M_PLACED, 1);
            mark(s, P_SLOT); /* the slot and the COMMIT */
            return answer_committed(s, s->customer);
        }
        if (strcmp(state, "HS503")) {
            break;
        }
        /* every node is full: let unusable codes' slots go, look again */
        if (tries == 0 && reclaim(s) < 0) {
            hs_metrics_add(HS_M_PLACE_ERROR, 1);
            return unavailable(s);
        }
    }
    if (!strcmp(state, "HS503")) {
        hs_metrics_add(HS_M_NO_CAPACITY, 1);
        return no_slot(s, 0);
    }
    if (strcmp(state, "HS409")) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(00304) "placing new customer %s failed with "
                                     "SQLSTATE %s",
                      s->customer, state);
        return unavailable(s);
    }
    hs_spool_discard(s->msg);
    s->msg = NULL;
    return new_signup_stepwise(s);
}

int hs_signup_handle(request_rec *r, const hs_dir_cfg *cfg)
{
    signup s;
    json_object *body;
    hs_errors *errs;
    hs_db_result res;
    hs_db_call calls[2];
    const char *args[7], *lock_args[2];
    long limit_left;

    memset(&s, 0, sizeof(s));
    s.r = r;
    s.cfg = cfg;

    if (!(body = hs_limited_json(r, cfg, HS_RATE_SIGNUP))) {
        return OK;
    }
    errs = hs_errors_make(r->pool);
    if (hs_signup_req_read(r->pool, body, &s.req, errs)) {
        return hs_send_errors(r, errs);
    }
    if (!hs_cfg_serves(cfg, s.req.tenant_slug)) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }
    mark(&s, P_START);
    if (!(s.db = hs_db_acquire(r))) {
        return unavailable(&s);
    }
    mark(&s, P_ACQUIRED);
    /* BEGIN; serialise with other signups to this mailbox (mail budget);
     * then read the context - in one round trip */
    s.mailbox = hs_email_mailbox(r->pool, s.req.email);
    lock_args[0] = s.req.tenant_slug;
    lock_args[1] = s.mailbox;
    args[0] = s.req.plan;
    args[1] = args[2] = args[3] = s.mailbox;
    args[4] = s.req.email;
    args[5] = s.req.tenant_slug;
    calls[0].label = HS_Q_ADDRESS_LOCK;
    calls[0].nargs = 2;
    calls[0].args = lock_args;
    calls[0].res = NULL;
    calls[1].label = HS_Q_TENANT;
    calls[1].nargs = 6;
    calls[1].args = args;
    calls[1].res = &res;
    if (hs_db_begin_with(s.db, calls, 2)) {
        s.db = NULL;
        return unavailable(&s);
    }
    mark(&s, P_BEGUN);
    mark(&s, P_LOCKED);
    mark(&s, P_CONTEXT);
    if (res.nrows == 0 || !hs_db_true(res.rows[0][C_ENABLED])) {
        return fail(&s, HTTP_NOT_FOUND, "Tenant not found", 0);
    }
    s.ctx = res.rows[0];
    if (!hs_db_true(s.ctx[C_PLAN_OK])) {
        hs_errors_add(errs, "plan", "value_error",
                      apr_psprintf(r->pool,
                                   "Value error, plan '%s' is not offered "
                                   "by this tenant",
                                   s.req.plan));
        hs_db_end(s.db, 0);
        return hs_send_errors(r, errs);
    }
    /* the per-address mail budget (HydraSignupMailsPerHour) */
    if (num(s.ctx[C_MAILS_HOUR], 0) >= hs_cfg_mails_per_hour(cfg)) {
        limit_left = num(s.ctx[C_MAIL_WINDOW_LEFT], 3600);
        return fail(&s, HTTP_TOO_MANY_REQUESTS, MSG_MAIL_LIMIT,
                    limit_left > 0 ? limit_left : 1);
    }
    /* the tenant's budget (HydraSignupTenantMailsPerHour), the same for
     * every address */
    if (s.ctx[C_TENANT_MAILS] &&
        num(s.ctx[C_TENANT_MAILS], 0) >= hs_cfg_tenant_mails_per_hour(cfg)) {
        const char *sp = strchr(s.ctx[C_TENANT_MAILS], ' ');
        limit_left = sp ? num(sp + 1, 3600) : 3600;
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HSLOGNO(01208) "tenant %s mailed %d codes in the last "
                                     "hour (HydraSignupTenantMailsPerHour): "
                                     "signup refused",
                      s.req.tenant_slug, hs_cfg_tenant_mails_per_hour(cfg));
        return fail(&s, HTTP_TOO_MANY_REQUESTS, MSG_TENANT_MAIL_LIMIT,
                    limit_left > 0 ? limit_left : 1);
    }
    if (s.ctx[C_CUST_ID]) {
        return s.ctx[C_CUST_STATUS] && !strcmp(s.ctx[C_CUST_STATUS], "active")
                   ? existing_active(&s)
                   : existing_pending(&s);
    }
    return new_signup(&s);
}
