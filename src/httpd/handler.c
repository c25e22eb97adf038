/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler.c - the "hydra-signup" content handler: finds the path below the
 * <Location> the handler is enabled in, and routes
 *
 *   POST   /                      signup
 *   GET    /plans/{tenant_slug}   plans
 *   POST   /verify                verify
 *   GET    /jwks.json             public keys
 *   GET    /openapi.json          the OpenAPI document
 *   GET    /metrics               Prometheus text (HydraSignupMetrics On)
 *   OPTIONS any of these          CORS preflight
 *   GET    /page/..., /widget.js  the hosted page and widget (page.c)
 *
 * A wrong method is 405 with Allow; anything else is a JSON 404.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include <apr_strings.h>

#include "hs_config.h"
#include "hs_endpoints.h"
#include "hs_http.h"
#include "hs_log.h"
#include "hs_metrics.h"
#include "hs_page.h"

APLOG_USE_MODULE(hydra_signup);

typedef enum {
    R_NONE,
    R_SIGNUP,
    R_PLANS,
    R_VERIFY,
    R_JWKS,
    R_OPENAPI,
    R_METRICS
} route;

/* the metrics' endpoint of each route */
static const hs_endpoint route_endpoint[] = {
    [R_NONE] = HS_EP_OTHER,     [R_SIGNUP] = HS_EP_SIGNUP,
    [R_PLANS] = HS_EP_PLANS,    [R_VERIFY] = HS_EP_VERIFY,
    [R_JWKS] = HS_EP_JWKS,      [R_OPENAPI] = HS_EP_OPENAPI,
    [R_METRICS] = HS_EP_METRICS};

/* The part of r->uri below the <Location> prefix (r->uri has been
 * normalised by httpd: no "..", no "//"). */
static const char *subpath(request_rec *r, const hs_dir_cfg *cfg)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const hs_tenants *t = hs_cfg_tenants(cfg);
    const char *loc = t && t->base ? t->base : d ? d->d : NULL;
    apr_size_t n;

    if (!loc || (!(t && t->base) && (d->d_is_fnmatch || d->r))) {
        /* a regex or wildcard Location: route on the last segments */
        const char *p = strstr(r->uri, "/plans/");
        if (p) {
            return p;
        }
        p = strrchr(r->uri, '/');
        return p && (!strcmp(p, "/verify") || !strcmp(p, "/jwks.json") ||
                     !strcmp(p, "/openapi.json") || !strcmp(p, "/metrics"))
                   ? p
                   : "";
    }
    n = strlen(loc);
    while (n > 0 && loc[n - 1] == '/') {
        n--;
    }
    if (strncmp(r->uri, loc, n)) {
        return NULL;
    }
    return r->uri + n;
}

static route match(const char *sub, const char **slug)
{
    *slug = NULL;
    if (!*sub || !strcmp(sub, "/")) {
        return R_SIGNUP;
    }
    if (!strcmp(sub, "/verify")) {
        return R_VERIFY;
    }
    if (!strcmp(sub, "/jwks.json")) {
        return R_JWKS;
    }
    if (!strcmp(sub, "/openapi.json")) {
        return R_OPENAPI;
    }
    if (!strcmp(sub, "/metrics")) {
        return R_METRICS;
    }
    if (!strncmp(sub, "/plans/", 7) && sub[7] && !strchr(sub + 7, '/')) {
        *slug = sub + 7;
        return R_PLANS;
    }
    return R_NONE;
}

/* the note hs_translate_name leaves for hs_map_to_storage */
#define NOTE_NO_FILE "hydra-signup-no-file"

int hs_translate_name(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *handler, *err = NULL;

    /* the location walk has run: d is what <Location> sections give; a
     * handler set in <Directory> or <Files> is not seen here, and such a
     * request is walked as usual */
    if (d && d->expr_handler) {
        handler = ap_expr_str_exec(r, d->expr_handler, &err);
        if (!err && handler && !strcmp(handler, "hydra-signup")) {
            apr_table_setn(r->notes, NOTE_NO_FILE, "1");
        }
    }
    return DECLINED;
}

int hs_map_to_storage(request_rec *r)
{
    return apr_table_get(r->notes, NOTE_NO_FILE) ? OK : DECLINED;
}

int hs_handler(request_rec *r)
{
    const hs_dir_cfg *cfg;
    const char *sub, *slug;
    route rt;
    int want;

    if (!r->handler || strcmp(r->handler, "hydra-signup")) {
        return DECLINED;
    }
    cfg = ap_get_module_config(r->per_dir_config, &hydra_signup_module);
    sub = subpath(r, cfg);
    if (hs_page_route(sub)) {
        /* the hosted page, its assets and widget.js (src/handle/page.c) */
        hs_metrics_route(r, HS_EP_PAGE);
        return hs_page_handle(r, cfg, sub);
    }
    rt = sub ? match(sub, &slug) : R_NONE;
    hs_metrics_route(r, route_endpoint[rt]);
    if (rt == R_NONE) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    }
    want = (rt == R_SIGNUP || rt == R_VERIFY) ? M_POST : M_GET;
    r->allowed = (AP_METHOD_BIT << want) | (AP_METHOD_BIT << M_OPTIONS);

    hs_cors_headers(r, cfg);
    if (r->method_number == M_OPTIONS) {
        /* preflight (or a plain OPTIONS): the Allow header says it all */
        apr_table_setn(r->headers_out, "Allow",
                       want == M_POST ? "POST, OPTIONS" : "GET, HEAD, OPTIONS");
        if (apr_table_get(r->headers_in, "Access-Control-Request-Method") &&
            apr_table_get(r->headers_out, "Access-Control-Allow-Origin")) {
            apr_table_setn(r->headers_out, "Access-Control-Allow-Methods",
                           want == M_POST ? "POST, OPTIONS" : "GET, OPTIONS");
            apr_table_setn(r->headers_out, "Access-Control-Allow-Headers",
                           "Content-Type");
            apr_table_setn(r->headers_out, "Access-Control-Max-Age", "600");
        }
        r->status = HTTP_NO_CONTENT;
        return OK;
    }
    if (r->method_number != want) {
        apr_table_setn(r->headers_out, "Allow",
                       want == M_POST ? "POST, OPTIONS" : "GET, HEAD, OPTIONS");
        return hs_send_detail(r, HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    }

    if ((rt == R_SIGNUP || rt == R_VERIFY) &&
        (!hs_cfg_code_secret(cfg) || !hs_cfg_code_secret(cfg)->len)) {
        /* fail closed: a context the configuration check did not see */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(01207) "no HydraSignupCodeSecretFile in effect "
                                     "for %s: request refused",
                      r->uri);
        return hs_send_internal_error(r);
    }
    switch (rt) {
        case R_SIGNUP:
            apr_table_setn(r->headers_out, "Cache-Control", "no-store");
            return hs_signup_handle(r, cfg);
        case R_VERIFY:
            apr_table_setn(r->headers_out, "Cache-Control", "no-store");
            return hs_verify_handle(r, cfg);
        case R_PLANS:
            return hs_plans_handle(r, cfg, slug);
        case R_JWKS:
            return hs_jwks_handle(r, cfg);
        case R_OPENAPI:
            return hs_openapi_handle(r, cfg);
        case R_METRICS:
            return hs_metrics_handle(r, cfg);
        default:
            return hs_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    }
}

void hs_cors_headers(request_rec *r, const hs_dir_cfg *cfg)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    if (!hs_cfg_cors_origins(cfg)) {
        return;
    }
    apr_table_mergen(r->headers_out, "Vary", "Origin");
    if (origin && hs_cfg_cors_allowed(cfg, origin)) {
        apr_table_setn(r->headers_out, "Access-Control-Allow-Origin",
                       apr_pstrdup(r->pool, origin));
        /* the signup page's script reads the wait of a 429 or 503 */
        apr_table_setn(r->headers_out, "Access-Control-Expose-Headers",
                       "Retry-After");
    }
}
