/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_endpoints.h - the handler's routes and the endpoints behind them.
 * Each endpoint sends its whole answer and returns what the handler
 * returns.
 */
#ifndef HS_ENDPOINTS_H
#define HS_ENDPOINTS_H

#include "httpd.h"

#include "hs_config.h"

/* The "hydra-signup" content handler: routing relative to <Location>. */
int hs_handler(request_rec *r);

/* A request the module handles (SetHandler hydra-signup in its
 * <Location>) maps to no file, so core's directory walk (a stat and an
 * .htaccess lookup for every component of the path) is skipped, as
 * mod_proxy does for its URLs. translate_name (which sees the <Location>
 * configuration) marks such a request and declines; map_to_storage (which
 * runs on the server's defaults) answers OK for a marked one. */
int hs_translate_name(request_rec *r);
int hs_map_to_storage(request_rec *r);

/* GET {location}/plans/{tenant_slug} */
int hs_plans_handle(request_rec *r, const hs_dir_cfg *cfg, const char *slug);
/* child_init: the per-process plans cache */
void hs_plans_child_init(apr_pool_t *p);

/* POST {location} */
int hs_signup_handle(request_rec *r, const hs_dir_cfg *cfg);

/* POST {location}/verify */
int hs_verify_handle(request_rec *r, const hs_dir_cfg *cfg);

/* GET {location}/jwks.json */
int hs_jwks_handle(request_rec *r, const hs_dir_cfg *cfg);

/* GET {location}/openapi.json */
int hs_openapi_handle(request_rec *r, const hs_dir_cfg *cfg);

/* The shared-cache name of an address's verify attempt counter of kind
 * ("d" per day, "c" per code): an HMAC of tenant slug and lower-cased
 * address under the code secret; NULL when there is no secret. */
const char *hs_attempt_key(request_rec *r, const hs_dir_cfg *cfg,
                           const char *kind, const char *slug,
                           const char *email);

/* CORS: adds the headers for an allowed Origin (and Vary: Origin). */
void hs_cors_headers(request_rec *r, const hs_dir_cfg *cfg);

#endif /* HS_ENDPOINTS_H */
