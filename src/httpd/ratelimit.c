/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit.c - fixed-window counters per client address in an httpd
 * socache (see hs_ratelimit.h). The provider is looked up in pre_config,
 * created in post_config, its global mutex re-attached in child_init; the
 * mutex is held across retrieve + store so that two processes cannot both
 * count from the same old value (providers without their own locking, such
 * as shmcb, need that).
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_main.h"
#include "http_core.h"
#include "http_protocol.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "util_mutex.h"

#include <apr_global_mutex.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#include "hs_config.h"
#include "hs_http.h"
#include "hs_metrics.h"
#include "hs_log.h"
#include "hs_ratelimit.h"

APLOG_USE_MODULE(hydra_signup);

#define RL_MUTEX "hydra-signup-ratelimit"
#define RL_NAMESPACE "hydra-signup-rl"
#define MSG_LIMIT "Too many requests; try again later"

/* configuration-time state: set in post_config, read by requests */
static const ap_socache_provider_t *rl_provider;
static ap_socache_instance_t *rl_cache;
static apr_global_mutex_t *rl_mutex;

typedef struct {
    apr_time_t start; /* window start */
    apr_uint32_t count;
} rl_entry;

int hs_ratelimit_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp)
{
    apr_status_t rv =
        ap_mutex_register(pconf, RL_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
    rl_provider = NULL;
    rl_cache = NULL;
    rl_mutex = NULL;
    if (rv != APR_SUCCESS) {
        ap_log_perror(APLOG_MARK, APLOG_EMERG, rv, plog,
                      HSLOGNO(00690) "cannot register the rate-limit mutex "
                                     "type " RL_MUTEX);
        return !OK;
    }
    return OK;
}

static apr_status_t rl_cleanup(void *data)
{
    if (rl_cache) {
        rl_provider->destroy(rl_cache, (server_rec *)data);
        rl_cache = NULL;
    }
    return APR_SUCCESS;
}

int hs_ratelimit_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    hs_srv_cfg *sc =
        ap_get_module_config(s->module_config, &hydra_signup_module);
    const char *spec = hs_srv_ratelimit_cache(sc);
    const char *sep = strchr(spec, ':');
    const char *name = sep ? apr_pstrmemdup(ptemp, spec, sep - spec) : spec;
    const char *args = sep ? sep + 1 : NULL;
    const char *err;
    struct ap_socache_hints hints = {64, sizeof(rl_entry), 3600};
    apr_status_t rv;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK; /* the first, dry-run pass */
    }
    rl_provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                     AP_SOCACHE_PROVIDER_VERSION);
    if (!rl_provider) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     HSLOGNO(00601) "HydraSignupRateLimitCache: unknown "
                                    "socache provider '%s' (is "
                                    "mod_socache_%s loaded?)",
                     name, name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((err = rl_provider->create(&rl_cache, args, ptemp, pconf))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     HSLOGNO(00602) "HydraSignupRateLimitCache %s: %s", spec,
                     err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ap_global_mutex_create(&rl_mutex, NULL, RL_MUTEX, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HSLOGNO(00603) "cannot create the rate-limit mutex");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = rl_provider->init(rl_cache, RL_NAMESPACE, &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HSLOGNO(00604) "cannot initialise the rate-limit cache "
                                    "%s",
                     spec);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, s, rl_cleanup, apr_pool_cleanup_null);
    return OK;
}

void hs_ratelimit_child_init(apr_pool_t *p, server_rec *s)
{
    if (rl_mutex) {
        apr_status_t rv = apr_global_mutex_child_init(
            &rl_mutex, apr_global_mutex_lockfile(rl_mutex), p);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         HSLOGNO(00605) "cannot attach the rate-limit mutex "
                                        "in this child");
        }
    }
}

/* Whom a counter belongs to: the client's address (r->useragent_ip, so
 * that mod_remoteip behind a proxy works), for IPv6 its /64 - one host
 * usually holds a whole /64 and could step through it, one address per
 * request. */
static const char *rl_client(request_rec *r)
{
#if APR_HAVE_IPV6
    const apr_sockaddr_t *sa = r->useragent_addr;
    if (sa && sa->family == APR_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&sa->sa.sin6.sin6_addr)) {
        const unsigned char *b = (const unsigned char *)&sa->sa.sin6.sin6_addr;
        return apr_psprintf(r->pool, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64",
                            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    }
#endif
    return r->useragent_ip ? r->useragent_ip : "-";
}

/* One hit on the counter under key, with rl_mutex held: a new window when
 * the stored entry is missing, stale or from the future; the count stops
 * at its largest value. Leaves the entry in *e and returns the status of
 * storing it back. */
static apr_status_t rl_count(request_rec *r, const char *key, apr_time_t now,
                             apr_time_t window, rl_entry *e)
{
    unsigned int len = sizeof(*e);
    apr_status_t rv;

    rv = rl_provider->retrieve(rl_cache, r->server, (const unsigned char *)key,
                               (unsigned int)strlen(key), (unsigned char *)e,
                               &len, r->pool);
    if (rv != APR_SUCCESS || len != sizeof(*e) || now - e->start >= window ||
        e->start > now) {
        /* whole entry zeroed: its padding goes to the cache (memcached)
         * as well, and must not carry stale stack bytes */
        memset(e, 0, sizeof(*e));
        e->start = now;
    }
    if (e->count < 0xFFFFFFFFu) {
        e->count++;
    }
    return rl_provider->store(rl_cache, r->server, (const unsigned char *)key,
                              (unsigned int)strlen(key), e->start + window,
                              (unsigned char *)e, sizeof(*e), r->pool);
}

int hs_ratelimit(request_rec *r, const hs_dir_cfg *cfg, hs_rate_kind kind)
{
    hs_rate rate = *(kind == HS_RATE_SIGNUP  ? hs_cfg_rate_signup(cfg)
                     : kind == HS_RATE_PLANS ? hs_cfg_rate_plans(cfg)
                                             : hs_cfg_rate_verify(cfg));
    static const char kind_char[] = {'s', 'v', 'p'};
    static const char *const kind_name[] = {"signup", "verify", "plans"};
    static const hs_counter kind_metric[] = {HS_M_RL_SIGNUP, HS_M_RL_VERIFY,
                                             HS_M_RL_PLANS};
    const char *key;
    rl_entry e;
    apr_time_t now = apr_time_now();
    apr_time_t window = apr_time_from_sec(rate.window);
    apr_status_t rv;
    int over;

    if (!rl_cache || !rl_mutex) {
        return 0;
    }
    /* one counter per client, virtual host and limit: a vhost's budget is
     * its own (the main server with a high limit and a public vhost with a
     * low one see the same clients); the same on every host that shares a
     * memcache, as the key holds the ServerName, not this host */
    key = apr_psprintf(
        r->pool, "%c|%s:%u|%d/%d|%s", kind_char[kind],
        r->server->server_hostname ? r->server->server_hostname : "-",
        (unsigned)r->server->port, rate.limit, rate.window, rl_client(r));
    if ((rv = apr_global_mutex_lock(rl_mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      HSLOGNO(00606) "rate-limit mutex lock failed");
        return 0;
    }
    rv = rl_count(r, key, now, window, &e);
    over = e.count > (apr_uint32_t)rate.limit;
    apr_global_mutex_unlock(rl_mutex);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r,
                      HSLOGNO(00607) "rate-limit cache store failed");
    }
    if (over) {
        long left = (long)apr_time_sec(e.start + window - now) + 1;
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      HSLOGNO(00608) "%s rate limit (%d per %d s) exceeded "
                                     "by %s",
                      kind_name[kind], rate.limit, rate.window,
                      r->useragent_ip);
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        hs_metrics_add(kind_metric[kind], 1);
        hs_send_retry(r, HTTP_TOO_MANY_REQUESTS, MSG_LIMIT, left);
        return 1;
    }
    return 0;
}

json_object *hs_limited_json(request_rec *r, const hs_dir_cfg *cfg,
                             hs_rate_kind kind)
{
    json_object *body = NULL;

    if (hs_ratelimit(r, cfg, kind)) {
        return NULL;
    }
    hs_read_json(r, cfg, &body);
    return body;
}

/* ---- counters under opaque keys (verify attempts) ---------------------- */

int hs_counter_hit(request_rec *r, const char *key, long window_secs,
                   unsigned long *count, long *left)
{
    rl_entry e;
    apr_time_t now = apr_time_now();
    apr_time_t window = apr_time_from_sec(window_secs);
    apr_status_t rv;

    if (!rl_cache || !rl_mutex) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(01201) "no shared cache for the verify attempt "
                                     "counters");
        return -1;
    }
    if ((rv = apr_global_mutex_lock(rl_mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      HSLOGNO(01202) "attempt counter mutex lock failed");
        return -1;
    }
    rv = rl_count(r, key, now, window, &e);
    apr_global_mutex_unlock(rl_mutex);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      HSLOGNO(01203) "attempt counter store failed");
        return -1;
    }
    *count = e.count;
    *left = (long)apr_time_sec(e.start + window - now) + 1;
    return 0;
}

void hs_counter_reset(request_rec *r, const char *key)
{
    apr_status_t rv;
    if (!rl_cache || !rl_mutex) {
        return;
    }
    if (apr_global_mutex_lock(rl_mutex) != APR_SUCCESS) {
        return;
    }
    rv = rl_provider->remove(rl_cache, r->server, (const unsigned char *)key,
                             (unsigned int)strlen(key), r->pool);
    apr_global_mutex_unlock(rl_mutex);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_NOTFOUND(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r,
                      HSLOGNO(01204) "attempt counter reset failed");
    }
}
