/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reaper.c - the slot reaper (see hs_reaper.h). It runs in one child's
 * watchdog thread at a time (mod_watchdog's singleton mutex), with a
 * connection from the main server's mod_dbd pool. The release and purge
 * statements are safe to run from several servers at once (FOR UPDATE ...
 * SKIP LOCKED): two httpd hosts on one database release each slot exactly
 * once. A third analyzes the module's tables that more than doubled since
 * their statistics were taken (sql/009_grown_stats.sql). A database outage
 * is logged once and retried at the next run; the reaper never stops
 * running.
 */
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "mod_watchdog.h"

#include <apr_optional.h>
#include <apr_strings.h>

#include "hs_config.h"
#include "hs_db.h"
#include "hs_http.h"
#include "hs_log.h"
#include "hs_metrics.h"
#include "hs_reaper.h"

APLOG_USE_MODULE(hydra_signup);

#define REAPER_WATCHDOG "_hydra_signup_reaper_"

typedef struct {
    server_rec *s;    /* the main server: its DBD pool */
    long pending_ttl; /* the longest PendingTTL configured anywhere */
    long interval;
    int down;       /* the last run failed (logged once) */
    int stats_down; /* the last analyze_grown failed (logged once) */
} reaper;

/* Logs the first failure of a series; later ones are quiet until a run
 * succeeds again. */
static void failed(reaper *rp, const char *what)
{
    if (!rp->down) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, rp->s,
                     HSLOGNO(00903) "reaper: %s; retrying every %ld s "
                                    "(logged once until it succeeds)",
                     what, rp->interval);
    }
    rp->down = 1;
}

/* Analyzes the module's tables that more than doubled since their
 * statistics were taken (sql/009_grown_stats.sql), so that sessions stop
 * running plans made for much smaller tables. A failure costs plans, not
 * slots: it is logged once and the run goes on. */
static void analyze_grown(reaper *rp, hs_db *db)
{
    hs_db_result res;
    int i;

    if (hs_db_select(db, HS_Q_ANALYZE_GROWN, &res, 0, NULL)) {
        if (!rp->stats_down) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, rp->s,
                         HSLOGNO(00913) "reaper: analyzing the tables that "
                                        "grew failed; tried again at every "
                                        "run (logged once until it "
                                        "succeeds)");
        }
        rp->stats_down = 1;
        return;
    }
    rp->stats_down = 0;
    for (i = 0; i < res.nrows; i++) {
        const char **row = res.rows[i];
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, rp->s,
                     HSLOGNO(00912) "reaper analyzed %s: %s live rows, %s "
                                    "when its statistics were taken",
                     row[0] ? row[0] : "?", row[1] ? row[1] : "?",
                     row[2] ? row[2] : "?");
    }
}

static void reap(reaper *rp, apr_pool_t *pool)
{
    hs_db *db = hs_db_open(rp->s, pool);
    hs_db_result res;
    const char *ttl, *args[2];
    char *detail = NULL;
    long total = 0;
    int i;

    if (!db) {
        failed(rp, "no database connection");
        return;
    }
    if (hs_db_select(db, HS_Q_RELEASE_ALL, &res, 0, NULL)) {
        hs_db_close(db);
        failed(rp, "releasing slots failed");
        return;
    }
    for (i = 0; i < res.nrows; i++) {
        const char **row = res.rows[i];
        long n = row[2] ? (long)apr_atoi64(row[2]) : 0;
        total += n;
        detail = apr_psprintf(pool, "%s%stenant %s node %s: %ld",
                              detail ? detail : "", detail ? ", " : "",
                              row[0] ? row[0] : "?", row[1] ? row[1] : "?", n);
    }
    if (total > 0) {
        hs_metrics_add(HS_M_REAPER_RELEASED, (apr_uint64_t)total);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, rp->s,
                     HSLOGNO(00901) "reaper released %ld slot(s) held by "
                                    "expired or void codes (%s)",
                     total, detail);
    }
    ttl = apr_ltoa(pool, rp->pending_ttl);
    args[0] = args[1] = ttl;
    if (hs_db_select(db, HS_Q_PURGE_ALL, &res, 2, args) || res.nrows != 1) {
        hs_db_close(db);
        failed(rp, "deleting old pending signups failed");
        return;
    }
    if (res.rows[0][0] && apr_atoi64(res.rows[0][0]) > 0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, rp->s,
                     HSLOGNO(00902) "reaper deleted %s pending signup(s) "
                                    "older than %ld s (%s slot(s) freed)",
                     res.rows[0][0], rp->pending_ttl,
                     res.rows[0][1] ? res.rows[0][1] : "0");
    }
    if (!hs_mpm_stopping()) {
        analyze_grown(rp, db); /* optional work: not while httpd stops */
    }
    hs_db_close(db);
    if (rp->down) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, rp->s,
                     HSLOGNO(00904) "reaper: the database is reachable "
                                    "again");
        rp->down = 0;
    }
}

static apr_status_t reaper_cb(int state, void *data, apr_pool_t *pool)
{
    reaper *rp = data;
    switch (state) {
        case AP_WATCHDOG_STATE_STARTING:
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, rp->s,
                         HSLOGNO(00905) "reaper started in process %ld (every "
                                        "%ld s, pending rows kept %ld s)",
                         (long)getpid(), rp->interval, rp->pending_ttl);
            break;
        case AP_WATCHDOG_STATE_RUNNING:
            reap(rp, pool);
            break;
        default:
            break;
    }
    /* anything else would stop mod_watchdog calling us */
    return APR_SUCCESS;
}

static long max_ttl(long a, const hs_dir_cfg *c)
{
    long t;
    if (!c) {
        return a;
    }
    t = hs_cfg_pending_ttl(c);
    return t > a ? t : a;
}

/* The longest PendingTTL of any server or <Location>: the reaper keeps a
 * pending row at least as long as any configuration that may serve its
 * tenant says (the signup path purges with the TTL in effect there). */
static long longest_pending_ttl(server_rec *s)
{
    long ttl = 0;
    server_rec *sp;
    for (sp = s; sp; sp = sp->next) {
        core_server_config *core = ap_get_core_module_config(sp->module_config);
        int i;
        ttl = max_ttl(ttl, ap_get_module_config(sp->lookup_defaults,
                                                &hydra_signup_module));
        for (i = 0; core->sec_url && i < core->sec_url->nelts; i++) {
            ap_conf_vector_t *v =
                APR_ARRAY_IDX(core->sec_url, i, ap_conf_vector_t *);
            const hs_dir_cfg *c = ap_get_module_config(v, &hydra_signup_module);
            if (c && c->pending_ttl != HS_UNSET) {
                ttl = max_ttl(ttl, c);
            }
        }
    }
    return ttl;
}

int hs_reaper_post_config(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) * get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) * register_cb;
    const hs_srv_cfg *sc =
        ap_get_module_config(s->module_config, &hydra_signup_module);
    ap_watchdog_t *wd = NULL;
    reaper *rp;
    apr_status_t rv;
    long interval = hs_srv_reap_interval(sc);

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG ||
        interval == 0) {
        return OK;
    }
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_cb = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_cb) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     HSLOGNO(00906) "mod_watchdog is not loaded: the slots "
                                    "of expired codes go back only when a "
                                    "signup finds no room (load "
                                    "mod_watchdog for the reaper)");
        return OK;
    }
    rv = get_instance(&wd, REAPER_WATCHDOG, 0, 1, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HSLOGNO(00907) "cannot create the reaper's watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rp = apr_pcalloc(pconf, sizeof(*rp));
    rp->s = s;
    rp->interval = interval;
    rp->pending_ttl = longest_pending_ttl(s);
    rv = register_cb(wd, apr_time_from_sec(interval), rp, reaper_cb);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HSLOGNO(00908) "cannot register the reaper with "
                                    "mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}
