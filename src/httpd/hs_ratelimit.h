/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_ratelimit.h - per-client request limits (HydraSignupRateLimit), keyed
 * on r->useragent_ip (so mod_remoteip works behind a proxy), and the verify
 * attempt counters, counted without a server-wide lock: in a table in
 * shared memory (shmcb, the default) or in memcached with its atomic incr
 * across hosts (memcache:host:port): HydraSignupRateLimitCache. A store
 * that does not answer within 200 ms lets requests through (request
 * limits) and refuses verify attempts (attempt counters).
 */
#ifndef HS_RATELIMIT_H
#define HS_RATELIMIT_H

#include "httpd.h"

#include "hs_config.h"
#include "hs_http.h"

typedef enum {
    HS_RATE_SIGNUP = 0,
    HS_RATE_VERIFY = 1,
    HS_RATE_PLANS = 2
} hs_rate_kind;

/* NULL, or why arg is not a HydraSignupRateLimitCache value
 * (shmcb[:path(bytes)] or memcache:host:port[,host:port...]). */
const char *hs_ratelimit_check_spec(apr_pool_t *p, const char *arg);

/* pre_config: forgets the previous generation's store. */
int hs_ratelimit_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp);

/* post_config: makes (or keeps, on a graceful restart) the shared table,
 * or resolves the memcached servers. */
int hs_ratelimit_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s);

/* child_init: this process's memcached connection pools. */
void hs_ratelimit_child_init(apr_pool_t *p, server_rec *s);

/* Counts this request: 0 when it is under the limit; 1 when it is over
 * and the 429 answer (with Retry-After) has been sent. A store failure
 * (memcached not answering in time) lets the request through (fail open,
 * HS01405 at most every 10 s per process, a metric). */
int hs_ratelimit(request_rec *r, const hs_dir_cfg *cfg, hs_rate_kind kind);

/* The start of a POST endpoint: counts the request (hs_ratelimit), then
 * reads its JSON body (hs_read_json). The body, or NULL when the answer
 * (429, or the body's error) has been sent already. */
json_object *hs_limited_json(request_rec *r, const hs_dir_cfg *cfg,
                             hs_rate_kind kind);

/*
 * A counter in the same store, under an opaque key (callers pass an
 * HMAC, never an address): counts one hit in a fixed window of window
 * seconds that starts with the first hit. 0 with *count (this hit
 * included) and *left (seconds until the window ends); -1 when there is no
 * store or it failed (logged; bounded by the store's timeout): callers
 * that bound guessing fail closed.
 */
int hs_counter_hit(request_rec *r, const char *key, long window,
                   unsigned long *count, long *left);

/* Forgets the counter under key (a new code starts a new count). */
void hs_counter_reset(request_rec *r, const char *key);

#endif /* HS_RATELIMIT_H */
