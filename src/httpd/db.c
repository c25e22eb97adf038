/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.c - every SQL statement of the module, prepared through mod_dbd, and
 * the helpers that run them (see hs_db.h). Parameters are text ("%s") and
 * cast in SQL; SQL is never built from input.
 */
#include <stdarg.h>
#include <string.h>

#include "httpd.h"
#include "http_log.h"

#include <apr_dbd.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <libpq-fe.h>

#include "hs_config.h"
#include "hs_db.h"
#include "hs_metrics.h"
#include "hs_dbgate.h"
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
    " WHERE customers.id = %s::uuid AND customers.node_id IS NULL"             \
    " RETURNING slot.id::text"

/* Releases the slots of pending signups whose code is expired or void
 * (CONTRACT section 1); cond narrows it to one tenant. A consumed code is a
 * verified customer's: never a candidate. (Looking each slot holder's code
 * up by key instead of this join was tried: with 130,000 holders it took
 * 885 ms, a third of it JIT compiling, against the join's 215 ms.) The
 * nodes are locked in id order, so that two releases never wait for each
 * other crosswise. */
#define RELEASE(cond)                                                          \
    "WITH rel AS (SELECT c.id, c.node_id FROM customers c"                     \
    "  JOIN hydra_signup_codes k ON k.customer_id = c.id"                      \
    "  WHERE c.status = 'pending' AND c.node_id IS NOT NULL"                   \
    "  AND k.consumed_at IS NULL AND (k.void OR k.expires_at <= now()) " cond  \
    "  FOR UPDATE OF c, k SKIP LOCKED),"                                       \
    " cu AS (UPDATE customers SET node_id = NULL FROM rel"                     \
    "  WHERE customers.id = rel.id RETURNING rel.node_id),"                    \
    " freed AS (SELECT node_id, count(*) AS n FROM cu GROUP BY node_id),"      \
    " lk AS (SELECT id FROM nodes WHERE id IN (SELECT node_id FROM freed)"     \
    "  ORDER BY id FOR UPDATE)"                                                \
    " UPDATE nodes SET used = used - freed.n FROM freed, lk"                   \
    " WHERE nodes.id = freed.node_id AND lk.id = nodes.id"                     \
    " RETURNING nodes.tenant_id::text, nodes.id::text, freed.n::text"

/* Deletes pending signups past the pending ttl (and frees any slot they
 * still hold); cond narrows it to one tenant (its parameter comes first). */
#define PURGE(cond)                                                            \
    "WITH old AS (SELECT c.id, c.node_id FROM customers c"                     \
    "  JOIN hydra_signup_codes k ON k.customer_id = c.id"                      \
    "  WHERE c.status = 'pending' " cond                                       \
    "  AND c.created_at < now() - %s::int * interval '1 second'"               \
    "  AND k.sent_at < now() - %s::int * interval '1 second'"                  \
    "  FOR UPDATE OF c, k SKIP LOCKED),"                                       \
    " del AS (DELETE FROM customers USING old WHERE customers.id = old.id"     \
    "  RETURNING old.node_id),"                                                \
    " freed AS (SELECT node_id, count(*) AS n FROM del"                        \
    "  WHERE node_id IS NOT NULL GROUP BY node_id),"                           \
    " lk AS (SELECT id FROM nodes WHERE id IN (SELECT node_id FROM freed)"     \
    "  ORDER BY id FOR UPDATE),"                                               \
    " upd AS (UPDATE nodes SET used = used - freed.n FROM freed, lk"           \
    "  WHERE nodes.id = freed.node_id AND lk.id = nodes.id"                    \
    "  RETURNING freed.n),"                                                    \
    " pruned AS (DELETE FROM hydra_signup_mail_log"                            \
    "  WHERE sent_at < now() - interval '1 day'),"                             \
    " pruned_counts AS (DELETE FROM hydra_signup_tenant_mails"                 \
    "  WHERE minute < now() - interval '2 hours')"                             \
    " SELECT (SELECT count(*) FROM del)::text,"                                \
    " (SELECT coalesce(sum(n), 0) FROM upd)::text"

/* A mail sent to a.mailbox of tenant a.tenant (a: a CTE of at most one
 * row): the per-address log (HydraSignupMailsPerHour) and the tenant's
 * count of this minute in this session's row (sql/005_placement.sql) */
#define MAIL_LOGGED                                                            \
    "ml AS (INSERT INTO hydra_signup_mail_log (tenant_id, email_lower)"        \
    "  SELECT a.tenant, lower(a.mailbox) FROM a),"                             \
    " tm AS (INSERT INTO hydra_signup_tenant_mails AS b"                       \
    "  (tenant_id, minute, backend, n)"                                        \
    "  SELECT a.tenant, date_trunc('minute', now()), pg_backend_pid(), 1"      \
    "  FROM a ON CONFLICT (tenant_id, minute, backend)"                        \
    "  DO UPDATE SET n = b.n + 1)"

static const hs_stmt stmts[] = {
    /* slug -> enabled, then one row per public plan (name NULL: none) */
    {HS_Q_PLANS,
     "SELECT t.signup_enabled::text, p.name, p.description, p.price,"
     " array_to_json(p.features)::text"
     " FROM tenants t LEFT JOIN plans p ON p.tenant_id = t.id AND p.public"
     " WHERE t.slug = %s ORDER BY p.position, p.name"},

    /* slug, mailbox: one signup per mailbox at a time (until COMMIT), so
     * that the mail budget and resend interval HS_Q_TENANT reads include
     * the signup that committed just before - without it parallel requests
     * for a concealed active address each mailed */
    {HS_Q_ADDRESS_LOCK, "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended("
                        "%s || '|' || lower(%s), 0))"},

    /* plan, mailbox, mailbox, mailbox, email, slug: everything the signup
     * decides on, in one round trip (the mail log counts mailboxes:
     * hs_email_mailbox) */
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
     "   WHERE m.tenant_id = t.id AND m.email_lower = lower(%s))::text,"
     /* the tenant's codes in the last hour (HydraSignupTenantMailsPerHour,
      * counted per minute: sql/005_placement.sql) and when the oldest
      * minute of them leaves the hour */
     " (SELECT coalesce(sum(b.n), 0)::text || ' ' || coalesce(least(3600,"
     "   ceil(extract(epoch FROM min(b.minute) + interval '61 minutes'"
     "   - now())))::bigint, 3600)"
     "   FROM hydra_signup_tenant_mails b WHERE b.tenant_id = t.id"
     "   AND b.minute > now() - interval '61 minutes')"
     " FROM tenants t"
     " LEFT JOIN customers c ON c.tenant_id = t.id AND lower(c.email) = "
     "lower(%s)"
     " LEFT JOIN hydra_signup_codes k ON k.customer_id = c.id"
     " WHERE t.slug = %s"},

    /* id, tenant, company, email, plan, site_url */
    /* ... tenant, site_url: not a label a concealed answer gave out
     * (hydra_signup_decoys) either */
    {HS_Q_INSERT_CUSTOMER,
     "INSERT INTO customers (id, tenant_id, company_name, email, plan,"
     " site_url, status, created_at)"
     " SELECT %s::uuid, %s::uuid, %s, %s, %s, %s, 'pending', now()"
     " WHERE NOT EXISTS (SELECT 1 FROM hydra_signup_decoys d"
     "  WHERE d.tenant_id = %s::uuid AND d.site_url = %s)"
     " ON CONFLICT DO NOTHING RETURNING id::text"},

    /* id, tenant, company, email, plan, site_url, hmac, code ttl, mailbox,
     * fill: a new customer on the node it takes a slot of, its first code
     * and the mail logs, in one statement (sql/007_new_signup.sql); HS503
     * no node has room, HS409 the address or the label is taken (nothing
     * written then) */
    {HS_Q_NEW_CUSTOMER,
     "SELECT hydra_signup_new_customer(%s::uuid, %s::uuid, %s, %s, %s, %s,"
     " %s, %s::int, %s, %s::boolean)"},

    /* tenant, site_url: is the label taken (the concealed answer) */
    {HS_Q_SITE_TAKEN,
     "SELECT 1 FROM customers WHERE tenant_id = %s::uuid AND site_url = %s"
     " UNION ALL SELECT 1 FROM hydra_signup_decoys"
     " WHERE tenant_id = %s::uuid AND site_url = %s"},

    /* tenant, base (hs_site_label_base): the next number of the company
     * name's labels, one index probe (sql/006_labels.sql); the row stays
     * locked until COMMIT, a rollback gives the number back */
    {HS_Q_LABEL_BUMP,
     "INSERT INTO hydra_signup_labels AS l (tenant_id, base, n)"
     " VALUES (%s::uuid, %s, 2) ON CONFLICT (tenant_id, base)"
     " DO UPDATE SET n = l.n + 1 RETURNING n::text"},

    /* tenant, email: is the address taken (after an insert conflict)? */
    {HS_Q_CUSTOMER_BY_EMAIL,
     "SELECT id::text FROM customers"
     " WHERE tenant_id = %s::uuid AND lower(email) = lower(%s)"},

    /* customer: its node (NULL: its slot was released), locked until
     * COMMIT so that no release runs between this and taking a slot */
    {HS_Q_CUSTOMER_SLOT, "SELECT (node_id IS NULL)::text FROM customers"
                         " WHERE id = %s::uuid FOR UPDATE"},

    /* tenant, customer, fill: one slot (sql/005_placement.sql), or
     * SQLSTATE HS503 when no node has room; sent with the COMMIT */
    {HS_Q_PLACE, "SELECT hydra_signup_take_slot(%s::uuid, %s::uuid,"
                 " %s::boolean)"},

    {HS_Q_TAKE_SLOT_SPREAD, TAKE_SLOT("used::float8 / capacity, id")},
    {HS_Q_TAKE_SLOT_FILL,
     TAKE_SLOT("used::float8 / capacity DESC, hostname, id")},

    /* customer, hmac, ttl, resend, tenant, mailbox: a fresh code voids the
     * old one, unless the old one was sent less than the resend interval
     * ago (no row); a code sent is logged (MAIL_LOGGED) */
    {HS_Q_UPSERT_CODE,
     "WITH k AS (INSERT INTO hydra_signup_codes"
     " (customer_id, code_hmac, expires_at, attempts, sent_at, void,"
     " consumed_at)"
     " VALUES (%s::uuid, %s, now() + %s::int * interval '1 second', 0, now(),"
     " false, NULL)"
     " ON CONFLICT (customer_id) DO UPDATE SET code_hmac = EXCLUDED.code_hmac,"
     " expires_at = EXCLUDED.expires_at, attempts = 0, sent_at = now(),"
     " void = false, consumed_at = NULL"
     " WHERE hydra_signup_codes.sent_at <= now() - %s::int * interval '1 "
     "second'"
     " RETURNING customer_id),"
     " a AS (SELECT %s::uuid AS tenant, %s::text AS mailbox FROM k),"
     " " MAIL_LOGGED " SELECT customer_id::text FROM k"},

    /* tenant, mailbox (hs_email_mailbox): a mail sent without a code */
    {HS_Q_MAIL_LOG, "WITH a AS (SELECT %s::uuid AS tenant, %s::text AS mailbox)"
                    ", " MAIL_LOGGED " SELECT 1"},

    /* tenant: the slots of the tenant's pending signups whose code can no
     * longer be used (expired or void) go back to their nodes; the rows
     * stay, node_id NULL, so that a re-signup keeps its customer_id.
     * Rows another transaction holds (a re-signup renewing the code, a
     * verify counting an attempt) are skipped, never waited for: the next
     * run takes them if they still qualify. FOR UPDATE re-checks the
     * condition on the newest row versions, so two servers running this at
     * once release each slot exactly once. Returns tenant, node, count. */
    {HS_Q_RELEASE_TENANT, RELEASE("AND c.tenant_id = %s::uuid")},
    /* the same for every tenant (the reaper) */
    {HS_Q_RELEASE_ALL, RELEASE("")},

    /* tenant, pending ttl, pending ttl: pending signups older than the ttl
     * (since the signup and since the last code mailed; a re-signup renews
     * it) are deleted, codes by ON DELETE CASCADE, with the slot of any
     * that still holds one (a PendingTTL shorter than the CodeTTL); the
     * mail log is pruned on the way. Returns rows deleted, slots freed. */
    {HS_Q_PURGE_TENANT, PURGE("AND c.tenant_id = %s::uuid")},
    /* pending ttl, pending ttl: the same for every tenant (the reaper) */
    {HS_Q_PURGE_ALL, PURGE("")},

    /* the module's tables that more than doubled since their statistics
     * were taken, analyzed so that every session plans again (the reaper;
     * sql/009_grown_stats.sql) */
    {HS_Q_ANALYZE_GROWN,
     "SELECT table_name, live_rows::text, analyzed_rows::text"
     " FROM hydra_signup_analyze_grown()"},

    /* slug, email: count the attempt first, under the row lock; a code
     * already consumed matches nothing */
    {HS_Q_VERIFY_ATTEMPT,
     "UPDATE hydra_signup_codes k SET attempts = k.attempts + 1"
     " FROM customers c JOIN tenants t ON t.id = c.tenant_id"
     " WHERE k.customer_id = c.id AND t.slug = %s"
     "  AND lower(c.email) = lower(%s) AND c.status = 'pending'"
     "  AND k.consumed_at IS NULL"
     " RETURNING c.id::text, t.id::text, k.code_hmac, k.attempts::text,"
     "  (k.expires_at < now())::text, k.void::text,"
     "  (c.node_id IS NULL)::text"},

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
     "  AND customers.status = 'pending' AND customers.node_id IS NOT NULL"
     "  RETURNING customers.id, customers.tenant_id)"
     " INSERT INTO hydra_signup_refresh_tokens (jti_hash, customer_id,"
     "  tenant_id, expires_at)"
     " SELECT %s, c.id, c.tenant_id, now() + %s::int * interval '1 second'"
     " FROM c RETURNING customer_id::text"},

    /* tenant, email, code ttl: a concealed address's decoy (locked), its
     * age and whether its last "code" would still be live */
    {HS_Q_DECOY_GET,
     "SELECT site_url, floor(extract(epoch FROM now() - sent_at))::bigint"
     "::text, (sent_at > now() - %s::int * interval '1 second')::text"
     " FROM hydra_signup_decoys WHERE tenant_id = %s::uuid"
     " AND email_lower = lower(%s) FOR UPDATE"},

    /* tenant, email, site_url: a new decoy, or a re-sent one */
    {HS_Q_DECOY_PUT,
     "INSERT INTO hydra_signup_decoys (tenant_id, email_lower, site_url)"
     " VALUES (%s::uuid, lower(%s), %s) ON CONFLICT (tenant_id, email_lower)"
     " DO UPDATE SET sent_at = now() RETURNING site_url"},

    /* tenant, pending ttl: decoys as old as an abandoned pending signup */
    {HS_Q_DECOY_PRUNE,
     "DELETE FROM hydra_signup_decoys WHERE tenant_id = %s::uuid"
     " AND sent_at < now() - %s::int * interval '1 second'"},

    /* tenant: would a signup find a free slot (not taken) */
    {HS_Q_FREE_SLOT,
     "SELECT 1 FROM nodes WHERE tenant_id = %s::uuid AND kind = 'shared'"
     " AND active AND used < capacity LIMIT 1"},
};

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) * dbd_prepare;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) * dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) * dbd_close;

#define NSTMTS (sizeof(stmts) / sizeof(stmts[0]))
#define PID_KEY "hydra_signup:backend_pid"

struct hs_db {
    request_rec *r; /* NULL outside a request (the reaper) */
    server_rec *s;
    apr_pool_t *pool; /* r->pool, or the caller's */
    ap_dbd_t *dbd;
    int tx;          /* inside BEGIN ... COMMIT/ROLLBACK */
    hs_dbgate *gate; /* the place r holds at the gate, or NULL */
};

/* Logs for a request, or for the server outside one. */
static void db_log(const hs_db *db, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void db_log(const hs_db *db, int level, const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    va_start(ap, fmt);
    msg = apr_pvsprintf(db->pool, fmt, ap);
    va_end(ap);
    if (db->r) {
        ap_log_rerror(APLOG_MARK, level, 0, db->r, "%s", msg);
    }
    else {
        ap_log_error(APLOG_MARK, level, 0, db->s, "%s", msg);
    }
}

int hs_db_init_functions(void)
{
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    return dbd_prepare && dbd_open && dbd_close ? 0 : -1;
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
            db_log(db, APLOG_ERR, HSLOGNO(00209) "preparing %s failed: %s",
                   stmts[i].label, apr_dbd_error(dbd->driver, dbd->handle, rv));
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
    db_log(db, APLOG_NOTICE,
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

static apr_status_t db_give_back(void *data)
{
    hs_db_close(data);
    return APR_SUCCESS;
}

void hs_db_release(hs_db *db)
{
    if (!db || !db->r) {
        return;
    }
    if (db->dbd) {
        apr_pool_cleanup_run(db->pool, db, db_give_back);
    }
    if (db->gate) {
        hs_dbgate_leave(db->gate, db->r);
        db->gate = NULL;
    }
}

hs_db *hs_db_acquire(request_rec *r)
{
    hs_db *db = apr_pcalloc(r->pool, sizeof(*db));
    const hs_srv_cfg *sc =
        ap_get_module_config(r->server->module_config, &hydra_signup_module);
    db->r = r;
    db->s = r->server;
    db->pool = r->pool;
    /* a place at the gate first (bounded wait), so that the pool's acquire
     * below, which has no time-out, finds a connection */
    if (hs_srv_db_gate(sc)) {
        if (hs_dbgate_enter(hs_srv_db_gate(sc), r)) {
            return NULL;
        }
        db->gate = hs_srv_db_gate(sc);
    }
    /* taken from mod_dbd's pool for this request, and given back by
     * hs_db_release (once the request's work is committed) or else when
     * r->pool is cleaned up */
    db->dbd = dbd_open(r->pool, r->server);
    if (!db->dbd) {
        /* mod_dbd drops a dead pooled connection; a second try opens a
         * fresh one once the database is back */
        db->dbd = dbd_open(r->pool, r->server);
    }
    if (db->dbd) {
        apr_pool_cleanup_register(r->pool, db, db_give_back,
                                  apr_pool_cleanup_null);
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

hs_db *hs_db_open(server_rec *s, apr_pool_t *pool)
{
    hs_db *db = apr_pcalloc(pool, sizeof(*db));
    db->s = s;
    db->pool = pool;
    db->dbd = dbd_open(pool, s);
    if (!db->dbd) {
        /* a dead pooled connection was dropped; a fresh one may work */
        db->dbd = dbd_open(pool, s);
    }
    if (!db->dbd) {
        return NULL;
    }
    if (ensure_prepared(db)) {
        hs_db_close(db);
        return NULL;
    }
    return db;
}

void hs_db_close(hs_db *db)
{
    if (db && db->dbd) {
        if (db->tx) {
            hs_db_end(db, 0);
        }
        dbd_close(db->s, db->dbd);
        db->dbd = NULL;
    }
}

static apr_dbd_prepared_t *stmt(hs_db *db, const char *label)
{
    apr_dbd_prepared_t *st =
        apr_hash_get(db->dbd->prepared, label, APR_HASH_KEY_STRING);
    if (!st) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        db_log(db, APLOG_ERR,
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
    apr_pool_t *pool = db->pool;
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
    rv = apr_dbd_pselect(dbd->driver, pool, dbd->handle, &results, st, 1, nargs,
                         args);
    if (rv) {
        *rv_out = rv;
        return -1;
    }
    ncols = apr_dbd_num_cols(dbd->driver, results);
    rows = apr_array_make(pool, 4, sizeof(const char **));
    while ((rv = apr_dbd_get_row(dbd->driver, pool, results, &row, -1)) == 0) {
        const char **vals = apr_pcalloc(pool, sizeof(char *) * (ncols + 1));
        int i;
        for (i = 0; i < ncols; i++) {
            /* the pgsql driver gives "" for SQL NULL; no statement of ours
             * returns an empty string where it matters, so "" is NULL.
             * Copied: the driver frees the result after the last row. */
            const char *v = apr_dbd_get_entry(dbd->driver, row, i);
            vals[i] = v && *v ? apr_pstrdup(pool, v) : NULL;
        }
        APR_ARRAY_PUSH(rows, const char **) = vals;
    }
    if (rv != -1) { /* -1: past the last row */
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        db_log(db, APLOG_ERR, HSLOGNO(00290) "reading row %d of %s failed: %s",
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
        db_log(db, APLOG_ERR, HSLOGNO(00203) "query %s failed: %s", label,
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
    rv = apr_dbd_pquery(db->dbd->driver, db->pool, db->dbd->handle, &n, st,
                        nargs, args);
    if (rv && recovered(db)) {
        rv = apr_dbd_pquery(db->dbd->driver, db->pool, db->dbd->handle, &n,
                            stmt(db, label), nargs, args);
    }
    if (rv) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        db_log(db, APLOG_ERR, HSLOGNO(00205) "statement %s failed: %s", label,
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

int hs_db_end(hs_db *db, int commit)
{
    const char *cmd = commit ? "COMMIT" : "ROLLBACK";
    if (!db->tx) {
        return commit ? -1 : 0;
    }
    db->tx = 0;
    if (tx_command(db, cmd, cmd)) {
        hs_metrics_add(HS_M_DB_ERRORS, 1);
        db_log(db, APLOG_ERR, HSLOGNO(00207) "%s failed: %s", cmd,
               conn_error(db, "the transaction was rolled back"));
        return -1;
    }
    return 0;
}

/* ---- several commands in one round trip (libpq pipeline mode) ---------- */

typedef struct {
    const char *label;   /* a prepared statement, or NULL for: */
    const char *command; /* a plain command (BEGIN, SAVEPOINT, COMMIT) */
    int nargs;
    const char *const *args;
    hs_db_result *res; /* a statement's rows, or NULL */
} pipe_step;

/* Copies a tuples result into res (NULL and "" become NULL, as
 * run_select does). */
static void pipe_rows(hs_db *db, PGresult *pr, hs_db_result *res)
{
    int nrows = PQntuples(pr), ncols = PQnfields(pr), i, j;
    const char ***rows = apr_pcalloc(db->pool, sizeof(*rows) * (nrows + 1));
    for (i = 0; i < nrows; i++) {
        rows[i] = apr_pcalloc(db->pool, sizeof(char *) * (ncols + 1));
        for (j = 0; j < ncols; j++) {
            const char *v = PQgetisnull(pr, i, j) ? NULL : PQgetvalue(pr, i, j);
            rows[i][j] = v && *v ? apr_pstrdup(db->pool, v) : NULL;
        }
    }
    res->nrows = nrows;
    res->ncols = ncols;
    res->rows = rows;
}

/* Is tag the command tag of command ("COMMIT" of "COMMIT", "SAVEPOINT" of
 * "SAVEPOINT name")? */
static int command_tag_is(const char *command, const char *tag)
{
    size_t len = strcspn(command, " ");
    return tag && strlen(tag) == len && !strncmp(command, tag, len);
}

/*
 * Sends steps in one pipeline and reads every answer. Returns n when every
 * step succeeded, the index of the first that failed (its SQLSTATE in
 * *state, its message in *msg; the steps after it were not run), or -1
 * when the connection failed. A failed step leaves an open transaction
 * aborted.
 */
static int pipe_run(hs_db *db, pipe_step *steps, int n, const char **state,
                    const char **msg)
{
    PGconn *conn = pgconn(db);
    PGresult *pr;
    int i, sent = 1, failed = n;

    *state = *msg = NULL;
    if (!conn || PQstatus(conn) != CONNECTION_OK ||
        !PQenterPipelineMode(conn)) {
        return -1;
    }
    for (i = 0; i < n && sent; i++) {
        sent = steps[i].label
                   ? PQsendQueryPrepared(conn, steps[i].label, steps[i].nargs,
                                         steps[i].args, NULL, NULL, 0)
                   : PQsendQueryParams(conn, steps[i].command, 0, NULL, NULL,
                                       NULL, NULL, 0);
    }
    sent = sent && PQpipelineSync(conn);
    for (i = 0; sent && i < n; i++) {
        /* a step's results end with NULL */
        while ((pr = PQgetResult(conn))) {
            ExecStatusType st = PQresultStatus(pr);
            /* an error; or a COMMIT that answered ROLLBACK */
            int bad = (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) ||
                      (steps[i].command &&
                       !command_tag_is(steps[i].command, PQcmdStatus(pr)));
            if (bad && failed == n) {
                const char *sqlstate = PQresultErrorField(pr, PG_DIAG_SQLSTATE);
                failed = i;
                *state = sqlstate ? apr_pstrdup(db->pool, sqlstate) : NULL;
                *msg = apr_pstrdup(db->pool, PQresultErrorMessage(pr));
            }
            else if (!bad && st == PGRES_TUPLES_OK && steps[i].res) {
                pipe_rows(db, pr, steps[i].res);
            }
            PQclear(pr);
        }
        if (PQstatus(conn) != CONNECTION_OK) {
            sent = 0;
        }
    }
    /* the sync point, then out of pipeline mode */
    while (sent && (pr = PQgetResult(conn))) {
        int sync = PQresultStatus(pr) == PGRES_PIPELINE_SYNC;
        PQclear(pr);
        if (sync) {
            break;
        }
    }
    if (!sent || !PQexitPipelineMode(conn)) {
        /* the connection broke: libpq (recovered) or mod_dbd
         * re-establishes it. One that still answers but is stuck in
         * pipeline mode would fail every later request: start it anew. */
        *msg = apr_pstrdup(db->pool, PQerrorMessage(conn));
        if (PQstatus(conn) == CONNECTION_OK &&
            PQpipelineStatus(conn) != PQ_PIPELINE_OFF) {
            PQreset(conn);
        }
        return -1;
    }
    return failed;
}

int hs_db_begin_with(hs_db *db, const hs_db_call *calls, int n)
{
    pipe_step steps[1 + HS_DB_MAX_CALLS];
    PGconn *conn = pgconn(db);
    const char *state, *msg;
    int i, rv, tries;

    if (n > HS_DB_MAX_CALLS) {
        return -1;
    }
    db->tx = 0;
    if (conn && PQstatus(conn) == CONNECTION_OK &&
        PQtransactionStatus(conn) != PQTRANS_IDLE) {
        (void)tx_command(db, "ROLLBACK", "ROLLBACK");
    }
    memset(steps, 0, sizeof(steps));
    steps[0].command = "BEGIN";
    for (i = 0; i < n; i++) {
        steps[i + 1].label = calls[i].label;
        steps[i + 1].nargs = calls[i].nargs;
        steps[i + 1].args = calls[i].args;
        steps[i + 1].res = calls[i].res;
    }
    for (tries = 0; tries < 2; tries++) {
        rv = pipe_run(db, steps, n + 1, &state, &msg);
        if (rv == n + 1) {
            db->tx = 1;
            return 0;
        }
        /* a connection the server closed (a restart): libpq gets it
         * back and the whole goes again */
        if (!recovered(db)) {
            break;
        }
    }
    hs_metrics_add(HS_M_DB_ERRORS, 1);
    db_log(db, APLOG_ERR,
           HSLOGNO(00210) "BEGIN with %d statement(s): %s failed: %s", n,
           rv > 0    ? steps[rv].label
           : rv == 0 ? "BEGIN"
                     : "the connection",
           msg && *msg ? msg : "no connection");
    if (rv >= 0) {
        (void)tx_command(db, "ROLLBACK", "ROLLBACK");
    }
    return -1;
}

int hs_db_commit_with(hs_db *db, const hs_db_call *call, const char *soft,
                      const char **state)
{
    pipe_step steps[3];
    const char *st, *msg;
    int rv, n = 0, at;

    *state = NULL;
    if (!db->tx) {
        return -1;
    }
    /* [SAVEPOINT,] call, COMMIT: the savepoint only when a soft failure is
     * to leave the transaction open */
    memset(steps, 0, sizeof(steps));
    if (soft) {
        steps[n++].command = "SAVEPOINT hydra_signup_commit_with";
    }
    at = n;
    steps[n].label = call->label;
    steps[n].nargs = call->nargs;
    steps[n].args = call->args;
    steps[n++].res = call->res;
    steps[n++].command = "COMMIT";
    rv = pipe_run(db, steps, n, &st, &msg);
    if (rv == n) {
        db->tx = 0;
        return 0;
    }
    if (rv == at && soft && st && !strncmp(st, soft, strlen(soft)) &&
        !tx_command(db, "ROLLBACK TO SAVEPOINT hydra_signup_commit_with",
                    "ROLLBACK")) {
        *state = st;
        return 1; /* the transaction goes on */
    }
    db->tx = 0;
    hs_metrics_add(HS_M_DB_ERRORS, 1);
    db_log(db, APLOG_ERR, HSLOGNO(00211) "%s with COMMIT failed: %s",
           call->label, msg && *msg ? msg : "no connection");
    if (rv >= 0) {
        (void)tx_command(db, "ROLLBACK", "ROLLBACK");
    }
    return -1;
}
