/*
 * hs_metrics.h - figures an operator can scrape: counters in one shared
 * memory segment that every child of the server adds to, served as
 * Prometheus text (format 0.0.4) at <location>/metrics with
 * HydraSignupMetrics On, and as a section of mod_status's page.
 *
 * The segment belongs to the parent process: it survives a graceful
 * restart (children of the new generation keep counting) and starts from
 * zero when httpd is stopped and started.
 */
#ifndef HS_METRICS_H
#define HS_METRICS_H

#include "httpd.h"

#include <apr_pools.h>

#include "hs_config.h"

/* the endpoint a request was routed to */
typedef enum {
    HS_EP_SIGNUP,
    HS_EP_PLANS,
    HS_EP_VERIFY,
    HS_EP_JWKS,
    HS_EP_OPENAPI,
    HS_EP_PAGE,
    HS_EP_METRICS,
    HS_EP_OTHER, /* 404 below the Location, preflights of unknown paths */
    HS_EP_COUNT
} hs_endpoint;

/* plain counters; the label each one carries is in metrics.c's table */
typedef enum {
    HS_M_PLACED,          /* placements{outcome="placed"} */
    HS_M_NO_CAPACITY,     /* placements{outcome="no_capacity"} */
    HS_M_PLACE_ERROR,     /* placements{outcome="error"} */
    HS_M_REAPER_RELEASED, /* slots the reaper gave back */
    HS_M_DB_ERRORS,       /* failed statements, connections, COMMITs */
    HS_M_MAILS_SPOOLED,   /* messages published into new/ */
    HS_M_SPOOL_FAILURES,  /* a message that could not be written or moved */
    HS_M_RL_SIGNUP,       /* 429: per-client signup limit */
    HS_M_RL_VERIFY,       /* 429: per-client verify limit */
    HS_M_RL_PLANS,        /* 429: per-client plans limit */
    HS_M_RL_RESEND,       /* 429: a code went out too recently */
    HS_M_RL_MAIL_ADDRESS, /* 429: the address's mail budget is spent */
    HS_M_RL_MAIL_TENANT,  /* 429: the tenant's mail budget is spent */
    HS_M_RL_ATTEMPTS,     /* 429: too many wrong codes */
    HS_M_RL_STORE_ERRORS, /* the rate-limit counter store failed */
    HS_M_COUNT
} hs_counter;

/* post_config: finds or creates the segment (kept across generations). */
int hs_metrics_post_config(apr_pool_t *pconf, server_rec *s);

/* The handler names the endpoint; log_transaction then counts the
 * request with its final status and its time. */
void hs_metrics_route(request_rec *r, hs_endpoint ep);
int hs_metrics_log_transaction(request_rec *r);

/* Adds n to a counter (no-op before post_config). */
void hs_metrics_add(hs_counter c, apr_uint64_t n);

/* GET <location>/metrics (404 unless HydraSignupMetrics On). */
int hs_metrics_handle(request_rec *r, const hs_dir_cfg *cfg);

/* mod_status's status_hook: the same figures as a section of its page. */
int hs_metrics_status_hook(request_rec *r, int flags);

#endif /* HS_METRICS_H */
