/* SPDX-License-Identifier: Apache-2.0 */
/*
 * page.c - the hosted signup page and the widget (see hs_page.h).
 *
 * The page is page/page.html with a few values filled in (HTML-escaped):
 * the tenant slug, the API base (this <Location>), the portal URL and the
 * resend interval. It carries no inline script or style, so it is sent
 * with a strict Content-Security-Policy. The scripts and the style are
 * static files built into the module; every answer has an ETag and
 * Cache-Control and gets 304 on a matching If-None-Match, like the plans.
 */
#include <string.h>

#include "httpd.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>

#include "hs_config.h"
#include "hs_crypto.h"
#include "hs_db.h"
#include "hs_http.h"
#include "hs_log.h"
#include "hs_page.h"
#include "hs_utf8.h"

APLOG_USE_MODULE(hydra_signup);

#define PAGE_PREFIX "/page/"
#define ASSET_JS "/page/assets/signup.js"
#define ASSET_CSS "/page/assets/signup.css"
#define WIDGET "/widget.js"

/* the page: short, it names the tenant's live data (404 when it goes) */
#define PAGE_CACHE "public, max-age=60"
/* assets under the page are referenced with ?v=<hash>; widget.js is
 * referenced by providers under a fixed URL, so it is revalidated soon */
#define ASSET_CACHE "public, max-age=86400"
#define WIDGET_CACHE "public, max-age=300"

#define CSP                                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; "                \
    "connect-src 'self'; img-src 'self'; form-action %s; base-uri 'none'; "    \
    "frame-ancestors 'none'"

#define MAX_SLUG 100

enum { P_NONE, P_PAGE, P_JS, P_CSS, P_WIDGET };

static int which(const char *sub, const char **slug)
{
    *slug = NULL;
    if (!strcmp(sub, WIDGET)) {
        return P_WIDGET;
    }
    if (!strcmp(sub, ASSET_JS)) {
        return P_JS;
    }
    if (!strcmp(sub, ASSET_CSS)) {
        return P_CSS;
    }
    if (!strncmp(sub, PAGE_PREFIX, sizeof(PAGE_PREFIX) - 1)) {
        const char *s = sub + sizeof(PAGE_PREFIX) - 1;
        if (*s && !strchr(s, '/')) {
            *slug = s;
            return P_PAGE;
        }
    }
    return P_NONE;
}

int hs_page_route(const char *sub)
{
    const char *slug;
    return sub && which(sub, &slug) != P_NONE;
}

/* ---- the portal URL (configuration time) -------------------------------- */

static int host_ok(const char *h)
{
    if (!*h) {
        return 0;
    }
    for (; *h; h++) {
        if (!apr_isalnum(*h) && *h != '.' && *h != '-' && *h != ':') {
            return 0;
        }
    }
    return 1;
}

const char *hs_page_portal_check(apr_pool_t *p, const char *url,
                                 const char **origin)
{
    apr_uri_t u;
    const char *c, *host;
    char *lower;

    for (c = url; *c; c++) {
        /* what an attribute, a URL or a CSP source may not hold raw */
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f ||
            strchr("\"'<>\\`^{}|", *c)) {
            return "holds a space, a control character, a quote or a "
                   "character that must be percent-encoded";
        }
    }
    if (apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.scheme ||
        (strcasecmp(u.scheme, "http") && strcasecmp(u.scheme, "https"))) {
        return "is not an absolute http:// or https:// URL";
    }
    if (!u.hostname || !host_ok(u.hostname)) {
        return "names no valid host";
    }
    if (u.user || u.password) {
        return "must not carry a user name or password";
    }
    if (u.fragment) {
        return "must not have a #fragment";
    }
    host = strchr(u.hostname, ':') ? apr_pstrcat(p, "[", u.hostname, "]", NULL)
                                   : u.hostname;
    lower = apr_pstrcat(p, u.scheme, "://", host, u.port_str ? ":" : "",
                        u.port_str ? u.port_str : "", NULL);
    ap_str_tolower(lower);
    *origin = lower;
    return NULL;
}

/* ---- answers ------------------------------------------------------------ */

/* Sends body with an ETag (quoted hash), Cache-Control, 304 when the
 * client has it. */
static int send_cached(request_rec *r, int status, const char *type,
                       const char *body, apr_size_t len, const char *hash,
                       const char *cache)
{
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    if (hash) {
        apr_table_setn(r->headers_out, "ETag",
                       apr_psprintf(r->pool, "\"%.32s\"", hash));
    }
    apr_table_setn(r->headers_out, "Cache-Control", cache);
    ap_set_content_type(r, type);
    if (status == HTTP_OK && hash &&
        ap_meets_conditions(r) == HTTP_NOT_MODIFIED) {
        r->status = HTTP_NOT_MODIFIED;
        return OK;
    }
    r->status = status;
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return OK;
}

/* widget.js and the assets: public files any page may load */
static int send_asset(request_rec *r, const char *type,
                      const unsigned char *data, size_t len, const char *hash,
                      const char *cache)
{
    apr_table_setn(r->headers_out, "Access-Control-Allow-Origin", "*");
    apr_table_setn(r->headers_out, "Cross-Origin-Resource-Policy",
                   "cross-origin");
    return send_cached(r, HTTP_OK, type, (const char *)data, len, hash, cache);
}

typedef struct {
    const char *name;
    const char *value; /* raw: escaped when filled in */
} var;

/* The template with every {{name}} of vars replaced by its escaped value;
 * an unknown {{...}} is left as it is. */
static const char *render(apr_pool_t *p, const char *tpl, const var *vars,
                          int nvars)
{
    apr_array_header_t *out = apr_array_make(p, 32, sizeof(const char *));
    const char *s = tpl, *open;

    while ((open = strstr(s, "{{")) != NULL) {
        const char *close = strstr(open + 2, "}}");
        int i;
        if (!close) {
            break;
        }
        APR_ARRAY_PUSH(out, const char *) = apr_pstrmemdup(p, s, open - s);
        for (i = 0; i < nvars; i++) {
            apr_size_t k = strlen(vars[i].name);
            if ((apr_size_t)(close - open - 2) == k &&
                !strncmp(open + 2, vars[i].name, k)) {
                break;
            }
        }
        APR_ARRAY_PUSH(out, const char *) =
            i < nvars ? ap_escape_html2(p, vars[i].value, 0)
                      : apr_pstrmemdup(p, open, close + 2 - open);
        s = close + 2;
    }
    APR_ARRAY_PUSH(out, const char *) = s;
    return apr_array_pstrcat(p, out, 0);
}

static void page_headers(request_rec *r, const hs_dir_cfg *cfg)
{
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   apr_psprintf(r->pool, CSP,
                                hs_cfg_portal_origin(cfg)
                                    ? hs_cfg_portal_origin(cfg)
                                    : "'self'"));
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
}

/* An HTML error page (404, 503) in the page's look, no script. */
static int send_error_page(request_rec *r, const hs_dir_cfg *cfg,
                           const char *assets, int status, const char *title,
                           const char *message, long retry)
{
    var v[] = {{"assets", assets},
               {"css_v", hs_asset_signup_css_hash},
               {"title", title},
               {"message", message}};
    const char *body = render(r->pool, (const char *)hs_asset_error_html, v, 4);
    page_headers(r, cfg);
    if (retry > 0) {
        apr_table_setn(r->headers_out, "Retry-After", apr_ltoa(r->pool, retry));
    }
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_type(r, "text/html; charset=utf-8");
    r->status = status;
    ap_set_content_length(r, (apr_off_t)strlen(body));
    if (!r->header_only) {
        ap_rwrite(body, (int)strlen(body), r);
    }
    return OK;
}

/* A slug that can name a tenant: valid UTF-8 without controls, at most
 * 100 code points (anything else is a 404 before any database work). */
static int slug_ok(const char *slug)
{
    const unsigned char *s = (const unsigned char *)slug;
    size_t n = strlen(slug), i = 0, count = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = hs_utf8_decode(s + i, n - i, &cp);
        if (!k || cp < 0x20 || cp == 0x7f) {
            return 0;
        }
        i += k;
        if (++count > MAX_SLUG) {
            return 0;
        }
    }
    return count > 0;
}

static int send_page(request_rec *r, const hs_dir_cfg *cfg, const char *api,
                     const char *slug)
{
    const char *assets = apr_pstrcat(r->pool, api, "/page/assets", NULL);
    hs_db_result res;
    hs_db *db;
    const char *body, *hash;

    if (!slug_ok(slug) || !hs_cfg_serves(cfg, slug)) {
        return send_error_page(r, cfg, assets, HTTP_NOT_FOUND,
                               "Signup page not found",
                               "There is no signup page at this address.", 0);
    }
    if (!(db = hs_db_acquire(r)) ||
        hs_db_select(db, HS_Q_PLANS, &res, 1, &slug)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      HSLOGNO(01101) "signup page: the database is "
                                     "unavailable; answered 503");
        return send_error_page(r, cfg, assets, HTTP_SERVICE_UNAVAILABLE,
                               "Signup temporarily unavailable",
                               "Signup is temporarily unavailable. Please "
                               "try again in a few seconds.",
                               5);
    }
    if (res.nrows == 0 || !hs_db_true(res.rows[0][0])) {
        return send_error_page(r, cfg, assets, HTTP_NOT_FOUND,
                               "Signup page not found",
                               "There is no signup page at this address.", 0);
    }
    {
        var v[] = {
            {"tenant", slug},
            {"api", api},
            {"portal", hs_cfg_portal_url(cfg) ? hs_cfg_portal_url(cfg) : ""},
            {"resend", apr_ltoa(r->pool, hs_cfg_resend_interval(cfg))},
            {"assets", assets},
            {"js_v", hs_asset_signup_js_hash},
            {"css_v", hs_asset_signup_css_hash}};
        body = render(r->pool, (const char *)hs_asset_page_html, v,
                      (int)(sizeof(v) / sizeof(v[0])));
    }
    hash = hs_sha256_hex(r->pool, body, strlen(body));
    if (!hash) {
        return hs_send_internal_error(r);
    }
    page_headers(r, cfg);
    return send_cached(r, HTTP_OK, "text/html; charset=utf-8", body,
                       strlen(body), hash, PAGE_CACHE);
}

int hs_page_handle(request_rec *r, const hs_dir_cfg *cfg, const char *sub)
{
    const char *slug, *api;
    int what = which(sub, &slug);

    if (what == P_NONE || !hs_cfg_page(cfg)) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    }
    r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_OPTIONS);
    if (r->method_number == M_OPTIONS) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD, OPTIONS");
        if (what != P_PAGE) {
            apr_table_setn(r->headers_out, "Access-Control-Allow-Origin", "*");
        }
        r->status = HTTP_NO_CONTENT;
        return OK;
    }
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD, OPTIONS");
        return hs_send_detail(r, HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    switch (what) {
        case P_WIDGET:
            return send_asset(r, "text/javascript; charset=utf-8",
                              hs_asset_signup_js, hs_asset_signup_js_len,
                              hs_asset_signup_js_hash, WIDGET_CACHE);
        case P_JS:
            return send_asset(r, "text/javascript; charset=utf-8",
                              hs_asset_signup_js, hs_asset_signup_js_len,
                              hs_asset_signup_js_hash, ASSET_CACHE);
        case P_CSS:
            return send_asset(r, "text/css; charset=utf-8", hs_asset_signup_css,
                              hs_asset_signup_css_len, hs_asset_signup_css_hash,
                              ASSET_CACHE);
        default:
            /* the API base: r->uri up to the sub-path (sub points into it) */
            api = apr_pstrmemdup(r->pool, r->uri, sub - r->uri);
            return send_page(r, cfg, api, slug);
    }
}
