/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_db.h - the database through mod_dbd: every SQL statement the module
 * runs, registered as a prepared statement at configuration time under a
 * unique label, and small helpers that acquire a pooled connection, run a
 * statement with text parameters, and keep transactions paired.
 */
#ifndef HS_DB_H
#define HS_DB_H

#include "httpd.h"
#include <apr_dbd.h>

#include "mod_dbd.h"

/* statement labels */
#define HS_Q_PLANS "hydra_signup_plans"
#define HS_Q_TENANT "hydra_signup_tenant"
#define HS_Q_ADDRESS_LOCK "hydra_signup_address_lock"
#define HS_Q_PLAN_OK "hydra_signup_plan_ok"
#define HS_Q_CUSTOMER_BY_EMAIL "hydra_signup_customer_by_email"
#define HS_Q_SITE_TAKEN "hydra_signup_site_taken"
#define HS_Q_LABEL_BUMP "hydra_signup_label_bump"
#define HS_Q_PLACE "hydra_signup_place"
#define HS_Q_NEW_CUSTOMER "hydra_signup_new_customer"
#define HS_Q_TAKE_SLOT_SPREAD "hydra_signup_take_slot_spread"
#define HS_Q_TAKE_SLOT_FILL "hydra_signup_take_slot_fill"
#define HS_Q_INSERT_CUSTOMER "hydra_signup_insert_customer"
#define HS_Q_UPSERT_CODE "hydra_signup_upsert_code"
#define HS_Q_MAIL_COUNT "hydra_signup_mail_count"
#define HS_Q_MAIL_LOG "hydra_signup_mail_log"
#define HS_Q_CUSTOMER_SLOT "hydra_signup_customer_slot"
#define HS_Q_RELEASE_TENANT "hydra_signup_release_tenant"
#define HS_Q_RELEASE_ALL "hydra_signup_release_all"
#define HS_Q_PURGE_TENANT "hydra_signup_purge_tenant"
#define HS_Q_PURGE_ALL "hydra_signup_purge_all"
#define HS_Q_ANALYZE_GROWN "hydra_signup_analyze_grown"
#define HS_Q_VERIFY_LOCK "hydra_signup_verify_lock"
#define HS_Q_VERIFY_ATTEMPT "hydra_signup_verify_attempt"
#define HS_Q_VERIFY_VOID "hydra_signup_verify_void"
#define HS_Q_VERIFY_DECOY "hydra_signup_verify_decoy"
#define HS_Q_ACTIVATE "hydra_signup_activate"
#define HS_Q_INSERT_REFRESH "hydra_signup_insert_refresh"
#define HS_Q_DECOY_GET "hydra_signup_decoy_get"
#define HS_Q_DECOY_PUT "hydra_signup_decoy_put"
#define HS_Q_DECOY_PRUNE "hydra_signup_decoy_prune"
#define HS_Q_FREE_SLOT "hydra_signup_free_slot"

/* Registers every statement for every server (post_config, before
 * mod_dbd's own post_config). */
void hs_db_register(server_rec *s);

/* Looks up mod_dbd's optional functions; 0 when mod_dbd is loaded. */
int hs_db_init_functions(void);

/* A pooled connection held for one request (released with r->pool). */
typedef struct hs_db hs_db;

/*
 * Acquires a connection for r, or NULL with a log line. A connection that
 * libpq re-established since its statements were prepared (the database
 * restarted) gets them prepared again, so recovery needs no httpd restart.
 */
hs_db *hs_db_acquire(request_rec *r);

/* Gives a request's connection (rolled back if a transaction is open) and
 * its place at the gate back now, so that the rest of the request (mail,
 * answer) holds neither; db is not to be used after. Without it both go
 * back when r->pool is cleaned up. */
void hs_db_release(hs_db *db);

/*
 * Outside a request (the reaper): a connection of server s's pool, or NULL
 * (mod_dbd logged why). Statements as for hs_db_acquire; log lines go to
 * the server's error log. Give it back with hs_db_close (which rolls back
 * an open transaction); pool must outlive that.
 */
hs_db *hs_db_open(server_rec *s, apr_pool_t *pool);
void hs_db_close(hs_db *db);

/* A boolean column as PostgreSQL prints it ("t"/"true"); NULL is false. */
int hs_db_true(const char *v);

/* A result: rows of ncols text values (NULL for SQL NULL). */
typedef struct {
    int nrows;
    int ncols;
    const char ***rows;
} hs_db_result;

/*
 * Runs a statement returning rows (SELECT, ... RETURNING) with nargs text
 * parameters. Returns 0 and fills res (may be NULL), or -1 after logging
 * the database error; inside a transaction that error means rollback.
 * Outside a transaction a lost connection is re-established and the
 * statement tried once more.
 */
int hs_db_select(hs_db *db, const char *label, hs_db_result *res, int nargs,
                 const char **args);

/* Runs a statement returning no rows; *nrows receives the affected row
 * count (may be NULL). 0, or -1 after logging. */
int hs_db_exec(hs_db *db, const char *label, int *nrows, int nargs,
               const char **args);

/* COMMIT when commit is true, else ROLLBACK. Returns 0 when committed or
 * rolled back as asked, -1 when COMMIT failed (the work is rolled back). */
int hs_db_end(hs_db *db, int commit);

/* A prepared statement to run with others in one round trip. */
typedef struct {
    const char *label;
    int nargs;
    const char **args;
    hs_db_result *res; /* its rows, or NULL */
} hs_db_call;

#define HS_DB_MAX_CALLS 4

/* BEGIN and then calls[0..n-1] (n <= HS_DB_MAX_CALLS), in one round trip
 * (libpq pipeline mode): a statement runs after the one before it has
 * finished, with its own snapshot, as if each were sent alone. 0 with
 * every res filled, or -1 after logging (no transaction is open then). A
 * lost connection is re-established and the whole tried once more. */
int hs_db_begin_with(hs_db *db, const hs_db_call *calls, int n);

/*
 * Inside a transaction: call, then COMMIT, in one round trip, so that row
 * locks the statement takes are held for it and the commit only. 0:
 * committed, call->res filled. 1 (only with soft, not NULL: the statement
 * then runs under a savepoint): it failed with an SQLSTATE that begins
 * with soft (*state): nothing of it remains and the transaction goes on.
 * -1: an error, logged; the transaction is rolled back and over.
 */
int hs_db_commit_with(hs_db *db, const hs_db_call *call, const char *soft,
                      const char **state);

#endif /* HS_DB_H */
