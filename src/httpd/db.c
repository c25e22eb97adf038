/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.c - every SQL statement of the module, prepared through mod_dbd, and
 * the helpers that run them (see hs_db.h). Parameters are text ("%s") and
 * cast in SQL; SQL is never built from input.
 */
#include <string.h>

#include "httpd.h"
#include "http_log.h"

#include <apr_dbd.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <libpq-fe.h>

#include "hs_db.h"
#include "hs_metrics.h"
#include "hs_log.h"

APLOG_USE_MODULE(hydra_signup);

typedef struct {
    const char *label;
    const char *sql;
} hs_stmt;

/* Placement: take one slot on the tenant's chosen active shared node.
 * The row lock taken by FOR UPDATE (without SKIP LOCKED, so a busy node is
 * waited for, not skipped) and the repeated `used < capacity` decide under
 * any concurrency; the node is assigned to the customer in the same
 * statement. */
#define TAKE_SLOT(order)                                                       \
    "WITH slot AS ("                                                           \
    " UPDATE nodes SET used = used + 1"                                        \
    " WHERE id = (SELECT id FROM nodes"                                        \
    "  WHERE tenant_id = %s::uuid AND kind = 'shared' AND active"              \
    "   AND used < capacity"                                                   \
    "  ORDER BY " order " LIMIT 1 FOR UPDATE)"                                 \
    " AND used < capacity RETURNING id)"                                       \
    " UPDATE customers SET node_id = slot.id FROM slot"                        \
    " WHERE customers.id = %s::uuid RETURNING slot.id::text"

static const hs_stmt stmts[] = {
    /* slug -> enabled, then one row per public plan (name NULL: none) */
    {HS_Q_PLANS,
     "SELECT t.signup_enabled::text, p.name, p.description, p.price,"
     " array_to_json(p.features)::text"
     " FROM tenants t LEFT JOIN plans p ON p.tenant_id = t.id AND p.public"
     " WHERE t.slug = %s ORDER BY p.position, p.name"},

    /* slug, email: one signup per address at a time (until COMMIT), so
     * that the mail budget and resend interval HS_Q_TENANT reads include
     * the signup that committed just before - without it parallel requests
     * for a concealed active address each mailed */
    {HS_Q_ADDRESS_LOCK, "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended("
                        "%s || '|' || lower(%s), 0))"},

    /* plan, email, email, email, email, slug: everything the signup
     * decides on, in one round trip */
    {HS_Q_TENANT,
     "SELECT t.id::text, t.site_domain, t.signup_enabled::text,"
     " EXISTS (SELECT 1 FROM plans p WHERE p.tenant_id = t.id"
     "  AND p.name = %s AND p.public)::text,"
     " c.id::text, c.status, c.site_url,"
     " floor(extract(epoch FROM now() - k.sent_at))::bigint::text,"
     " (SELECT count(*) FROM hydra_signup_mail_log m"
     "   WHERE m.tenant_id = t.id AND m.email_lower = lower(%s)"
     "   AND m.sent_at > now() - interval '1 hour')::text,"
     " (SELECT ceil(extract(epoch FROM min(m.sent_at) + interval '1 hour'"
     "   - now()))::bigint FROM hydra_signup_mail_log m"
     "   WHERE m.tenant_id = t.id AND m.email_lower = lower(%s)"
     "   AND m.sent_at > now() - interval '1 hour')::text,"
     " (SELECT floor(extract(epoch FROM now() - max(m.sent_at)))::bigint"
     "   FROM hydra_signup_mail_log m"
     "   WHERE m.tenant_id = t.id AND m.email_lower = lower(%s))::text"
     " FROM tenants t"
     " LEFT JOIN customers c ON c.tenant_id = t.id AND lower(c.email) = "
     "lower(%s)"
     " LEFT JOIN hydra_signup_codes k ON k.customer_id = c.id"
     " WHERE t.slug = %s"},

    /* id, tenant, company, email, plan, site_url */
    {HS_Q_INSERT_CUSTOMER,
     "INSERT INTO customers (id, tenant_id, company_name, email, plan,"
     " site_url, status, created_at)"
     " VALUES (%s::uuid, %s::uuid, %s, %s, %s, %s, 'pending', now())"
     " ON CONFLICT DO NOTHING RETURNING id::text"},

    /* tenant, site_url: is the label taken (the concealed answer) */
    {HS_Q_SITE_TAKEN,
     "SELECT 1 FROM customers WHERE tenant_id = %s::uuid AND site_url = %s"},

    /* prefix "https://<label>-", suffix ".<site_domain>", tenant: the
     * suffix after the highest numbered label in use, so that the 300th
     * "Acme" goes straight to acme-300 instead of probing every one */
    {HS_Q_LABEL_NEXT,
     "SELECT (coalesce(max(mid::int), 1) + 1)::text FROM ("
     " SELECT substr(site_url, length(%s::text) + 1,"
     "  length(site_url) - length(%s::text) - length(%s::text)) AS mid"
     " FROM customers WHERE tenant_id = %s::uuid"
     "  AND starts_with(site_url, %s::text)"
     "  AND right(site_url, length(%s::text)) = %s::text) x"
     " WHERE mid ~ '^[0-9]{1,9}$'"},

    /* tenant, email: is the address taken (after an insert conflict)? */
    {HS_Q_CUSTOMER_BY_EMAIL,
     "SELECT id::text FROM customers"
     " WHERE tenant_id = %s::uuid AND lower(email) = lower(%s)"},

    {HS_Q_TAKE_SLOT_SPREAD, TAKE_SLOT("used::float8 / capacity, id")},
    {HS_Q_TAKE_SLOT_FILL,
     TAKE_SLOT("used::float8 / capacity DESC, hostname, id")},

    /* customer, hmac, ttl, resend: a fresh code voids the old one, unless
     * the old one was sent less than the resend interval ago (no row) */
    {HS_Q_UPSERT_CODE,
     "INSERT INTO hydra_signup_codes (customer_id, code_hmac, expires_at,"
     " attempts, sent_at, void, consumed_at)"
     " VALUES (%s::uuid, %s, now() + %s::int * interval '1 second', 0, now(),"
     " false, NULL)"
     " ON CONFLICT (customer_id) DO UPDATE SET code_hmac = EXCLUDED.code_hmac,"
     " expires_at = EXCLUDED.expires_at, attempts = 0, sent_at = now(),"
     " void = false, consumed_at = NULL"
     " WHERE hydra_signup_codes.sent_at <= now() - %s::int * interval '1 "
     "second'"
     " RETURNING customer_id::text"},

    /* tenant, email */
    {HS_Q_MAIL_LOG, "INSERT INTO hydra_signup_mail_log (tenant_id, email_lower)"
                    " VALUES (%s::uuid, lower(%s))"},

    /* tenant, pending ttl, pending ttl: the tenant's unverified signups
     * give their slot back, in one statement (codes go with them by ON
     * DELETE CASCADE), once the ttl has passed since the signup and since
     * its last code was mailed (a re-signup renews it); old mail log rows
     * are pruned on the way. One tenant only: its node rows are the ones
     * this transaction locks anyway. */
    {HS_Q_RECLAIM,
     "WITH gone AS (DELETE FROM customers c WHERE c.status = 'pending'"
     "  AND c.tenant_id = %s::uuid"
     "  AND c.created_at < now() - %s::int * interval '1 second'"
     "  AND NOT EXISTS (SELECT 1 FROM hydra_signup_codes k"
     "   WHERE k.customer_id = c.id"
     "   AND k.sent_at >= now() - %s::int * interval '1 second')"
     "  RETURNING c.node_id),"
     " freed AS (SELECT node_id, count(*) AS n FROM gone"
     "  WHERE node_id IS NOT NULL GROUP BY node_id),"
     " pruned AS (DELETE FROM hydra_signup_mail_log"
     "  WHERE sent_at < now() - interval '1 day')"
     " UPDATE nodes SET used = used - freed.n FROM freed"
     " WHERE nodes.id = freed.node_id RETURNING nodes.id::text"},

    /* slug, email: count the attempt first, under the row lock; a code
     * already consumed matches nothing */
    {HS_Q_VERIFY_ATTEMPT,
     "UPDATE hydra_signup_codes k SET attempts = k.attempts + 1"
     " FROM customers c JOIN tenants t ON t.id = c.tenant_id"
     " WHERE k.customer_id = c.id AND t.slug = %s"
     "  AND lower(c.email) = lower(%s) AND c.status = 'pending'"
     "  AND k.consumed_at IS NULL"
     " RETURNING c.id::text, t.id::text, k.code_hmac, k.attempts::text,"
     "  (k.expires_at < now())::text, k.void::text"},

    /* customer: too many attempts, the code is void */
    {HS_Q_VERIFY_VOID,
     "UPDATE hydra_signup_codes SET void = true WHERE customer_id = %s::uuid"},

    /* nothing to verify (unknown address, active customer, used code): take
     * a transaction id, so that this COMMIT writes a commit record and waits
     * for the WAL flush as the COMMIT of a counted attempt does, and the
     * answer time does not tell a pending signup from none. Needs no
     * privilege and leaves nothing behind. */
    {HS_Q_VERIFY_DECOY, "SELECT pg_current_xact_id()::text"},

    /* customer, jti hash, refresh ttl: consume the code, activate the
     * customer, record the refresh token; one statement */
    {HS_Q_ACTIVATE,
     "WITH k AS (UPDATE hydra_signup_codes SET void = true,"
     "  consumed_at = now() WHERE customer_id = %s::uuid"
     "  AND consumed_at IS NULL AND NOT void RETURNING customer_id),"
     " c AS (UPDATE customers SET status = 'active', verified_at = now()"
     "  FROM k WHERE customers.id = k.customer_id"
     "  AND customers.status = 'pending'"
     "  RETURNING customers.id, customers.tenant_id)"
     " INSERT INTO hydra_signup_refresh_tokens (jti_hash, customer_id,"
     "  tenant_id, expires_at)"
     " SELECT %s, c.id, c.tenant_id, now() + %s::int * interval '1 second'"
     " FROM c RETURNING customer_id::text"},
};

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) * dbd_prepare;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) * dbd_acquire;

#define NSTMTS (sizeof(stmts) / sizeof(stmts[0]))
#define PID_KEY "hydra_signup:backend_pid"

struct hs_db {
    request_rec *r;
    ap_dbd_t *dbd;
    int tx; /* inside BEGIN ... COMMIT/ROLLBACK */
};

int hs_db_init_functions(void)
{
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    return dbd_prepare && dbd_acquire ? 0 : -1;
}

/* Registered with the main server, whose statements virtual hosts share;
 * a connection that lacks them anyway (a vhost with DBD settings of its
 * own) gets them from ensure_prepared(). */
void hs_db_register(server_rec *s)
{
    apr_size_t i;
    for (i = 0; i < NSTMTS; i++) {
        dbd_prepare(s, stmts[i].sql, stmts[i].label);
    }
}

int hs_db_true(const char *v)
{
    return v && (!strcmp(v, "t") || !strcmp(v, "true"));
}

static PGconn *pgconn(const hs_db *db)
{
    return apr_dbd_native_handle(db->dbd->driver, db->dbd->handle);
}

/* Prepares every statement on this connection. */
static int prepare_all(hs_db *db)
{
    ap_dbd_t *dbd = db->dbd;
    apr_size_t i;
    for (i = 0; i < NSTMTS; i++) {
        apr_dbd_prepared_t *st = NULL;
        int rv = apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle,
                                 stmts[i].sql, stmts[i].label, &st);
        if (rv) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r,
                          HSLOGNO(00209) "preparing %s failed: %s",
                          stmts[i].label,
                          apr_dbd_error(dbd->driver, dbd->handle, rv));
            return -1;
        }
        apr_hash_set(dbd->prepared, stmts[i].label, APR_HASH_KEY_STRING, st);
    }
    return 0;
}

/*
 * mod_dbd prepares our statements when it opens a connection. When libpq
 * later re-establishes that connection (PQreset after the server
 * restarted), the server side has forgotten them: we notice by the backend
 * PID, remembered in the connection's pool, and prepare them again.
 */
static int ensure_prepared(hs_db *db)
{
    ap_dbd_t *dbd = db->dbd;
    PGconn *conn = pgconn(db);
    int pid = conn ? PQbackendPID(conn) : 0;
    void *v = NULL;
    int *seen;

    apr_pool_userdata_get(&v, PID_KEY, dbd->pool);
    if (!v) {
        /* a connection as mod_dbd opened it */
        if (!apr_hash_get(dbd->prepared, stmts[0].label, APR_HASH_KEY_STRING) &&
            prepare_all(db)) {
            return -1;
        }
        seen = apr_palloc(dbd->pool, sizeof(*seen));
        *seen = pid;
        apr_pool_userdata_set(seen, PID_KEY, NULL, dbd->pool);
        return 0;
    }
    seen = v;
    if (*seen == pid) {
        return 0;
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, db->r,
                  HSLOGNO(00208) "database connection was re-established; "
                                 "preparing statements again");
    if (prepare_all(db)) {
        return -1;
    }
    *seen = pid;
    return 0;
}

/* After a failure outside a transaction: was the connection lost, and
 * could libpq get it back? Then the caller may try once more. */
static int recovered(hs_db *db)
{
    PGconn *conn = pgconn(db);
    if (db->tx || !conn || PQstatus(conn) == CONNECTION_OK) {
        return 0;
    }
    PQreset(conn);
    if (PQstatus(conn) != CONNECTION_OK) {
        return 0;
    }
    return ensure_prepared(db) == 0;
}

hs_db *hs_db_acquire(request_rec *r)
{
    hs_db *db = apr_pcalloc(r->pool, sizeof(*db));
    db->r = r;
    db->dbd = dbd_acquire(r);
    if (!db->dbd) {
        /* mod_dbd drops a dead pooled connection; a second try opens a
         * fresh one once the database is back */
        db->dbd = dbd_acquire(r);
    }
    if (!db->dbd) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(00201) "no database connection (mod_dbd could "
                                     "not open one: is PostgreSQL up and "
                                     "DBDParams right?)");
        return NULL;
    }
    if (ensure_prepared(db)) {
        return NULL;
    }
    return db;
}

static apr_dbd_prepared_t *stmt(hs_db *db, const char *label)
{
    apr_dbd_prepared_t *st =
        apr_hash_get(db->dbd->prepared, label, APR_HASH_KEY_STRING);
    if (!st) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r,
                      HSLOGNO(00202) "prepared statement %s is missing "
                                     "(did the database refuse it when the "
                                     "connection was opened?)",
                      label);
    }
    return st;
}

static int run_select(hs_db *db, const char *label, hs_db_result *res,
                      int nargs, const char **args, int *rv_out)
{
    request_rec *r = db->r;
    ap_dbd_t *dbd = db->dbd;
    apr_dbd_prepared_t *st = stmt(db, label);
    apr_dbd_results_t *results = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *rows;
    int rv, ncols;

    *rv_out = 0;
    if (!st) {
        return -1;
    }
    /* random access: the whole (small) result is fetched at once */
    rv = apr_dbd_pselect(dbd->driver, r->pool, dbd->handle, &results, st, 1,
                         nargs, args);
    if (rv) {
        *rv_out = rv;
        return -1;
    }
    ncols = apr_dbd_num_cols(dbd->driver, results);
    rows = apr_array_make(r->pool, 4, sizeof(const char **));
    while ((rv = apr_dbd_get_row(dbd->driver, r->pool, results, &row, -1)) ==
           0) {
        const char **vals = apr_pcalloc(r->pool, sizeof(char *) * (ncols + 1));
        int i;
        for (i = 0; i < ncols; i++) {
            /* the pgsql driver gives "" for SQL NULL; no statement of ours
             * returns an empty string where it matters, so "" is NULL.
             * Copied: the driver frees the result after the last row. */
            const char *v = apr_dbd_get_entry(dbd->driver, row, i);
            vals[i] = v && *v ? apr_pstrdup(r->pool, v) : NULL;
        }
        APR_ARRAY_PUSH(rows, const char **) = vals;
    }
    if (rv != -1) { /* -1: past the last row */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(00290) "reading row %d of %s failed: %s",
                      rows->nelts + 1, label,
                      apr_dbd_error(dbd->driver, dbd->handle, rv));
    }
    if (res) {
        res->nrows = rows->nelts;
        res->ncols = ncols;
        res->rows = (const char ***)rows->elts;
    }
    return 0;
}

int hs_db_select(hs_db *db, const char *label, hs_db_result *res, int nargs,
                 const char **args)
{
    int rv;
    if (run_select(db, label, res, nargs, args, &rv) == 0) {
        return 0;
    }
    if (rv && recovered(db) &&
        run_select(db, label, res, nargs, args, &rv) == 0) {
        return 0;
    }
    if (rv) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r,
                      HSLOGNO(00203) "query %s failed: %s", label,
                      apr_dbd_error(db->dbd->driver, db->dbd->handle, rv));
    }
    return -1;
}

int hs_db_exec(hs_db *db, const char *label, int *nrows, int nargs,
               const char **args)
{
    apr_dbd_prepared_t *st = stmt(db, label);
    int n = 0, rv;
    if (!st) {
        return -1;
    }
    rv = apr_dbd_pquery(db->dbd->driver, db->r->pool, db->dbd->handle, &n, st,
                        nargs, args);
    if (rv && recovered(db)) {
        rv = apr_dbd_pquery(db->dbd->driver, db->r->pool, db->dbd->handle, &n,
                            stmt(db, label), nargs, args);
    }
    if (rv) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r,
                      HSLOGNO(00205) "statement %s failed: %s", label,
                      apr_dbd_error(db->dbd->driver, db->dbd->handle, rv));
        return -1;
    }
    if (nrows) {
        *nrows = n;
    }
    return 0;
}

/*
 * Transactions run through libpq, not apr_dbd_transaction_start/end:
 * apr-util 1.6.3's pgsql driver dereferences a NULL transaction when BEGIN
 * comes back with an error result - a pooled connection the server has
 * closed, i.e. the first use of every connection after a database restart -
 * and the child process died with all its requests. Runs sql; 0 when it
 * succeeded with command tag want (a COMMIT of a failed transaction answers
 * "ROLLBACK": not committed).
 */
static int tx_command(hs_db *db, const char *sql, const char *want)
{
    PGconn *conn = pgconn(db);
    PGresult *res = conn ? PQexec(conn, sql) : NULL;
    int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK &&
             !strcmp(PQcmdStatus(res), want);
    PQclear(res);
    return ok ? 0 : -1;
}

static const char *conn_error(hs_db *db, const char *dflt)
{
    PGconn *conn = pgconn(db);
    const char *e = conn ? PQerrorMessage(conn) : NULL;
    return e && *e ? e : dflt;
}

int hs_db_begin(hs_db *db)
{
    PGconn *conn = pgconn(db);
    int rv;

    db->tx = 0;
    /* a connection handed back inside a transaction would make this
     * request part of that one */
    if (conn && PQstatus(conn) == CONNECTION_OK &&
        PQtransactionStatus(conn) != PQTRANS_IDLE) {
        (void)tx_command(db, "ROLLBACK", "ROLLBACK");
    }
    rv = tx_command(db, "BEGIN", "BEGIN");
    if (rv && recovered(db)) {
        rv = tx_command(db, "BEGIN", "BEGIN");
    }
    if (rv) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r,
                      HSLOGNO(00206) "BEGIN failed: %s",
                      conn_error(db, "no connection"));
        return -1;
    }
    db->tx = 1;
    return 0;
}

int hs_db_end(hs_db *db, int commit)
{
    const char *cmd = commit ? "COMMIT" : "ROLLBACK";
    if (!db->tx) {
        return commit ? -1 : 0;
    }
    db->tx = 0;
    if (tx_command(db, cmd, cmd)) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r,
                      HSLOGNO(00207) "%s failed: %s", cmd,
                      conn_error(db, "the transaction was rolled back"));
        return -1;
    }
    return 0;
}
