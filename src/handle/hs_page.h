/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_page.h - the hosted signup page and the embeddable widget (CONTRACT
 * section 1, "Beyond the seed"; issue 14):
 *
 *   GET <location>/page/{tenant_slug}      the page (HTML, strict CSP)
 *   GET <location>/page/assets/signup.js   the flow (plain JS)
 *   GET <location>/page/assets/signup.css  its style
 *   GET <location>/widget.js               the same flow for a provider's
 *                                          own page (CORS to the API)
 *
 * All of it only with `HydraSignupPage On`. The files in page/ are built
 * into the module (page/embed.sh writes hs_page_assets.c).
 */
#ifndef HS_PAGE_H
#define HS_PAGE_H

#include <stddef.h>

#include "httpd.h"

#include "hs_config.h"

/* The embedded files: bytes (NUL-terminated), length, short SHA-256. */
#define HS_ASSET_DECL(n)                                                       \
    extern const unsigned char hs_asset_##n[];                                 \
    extern const size_t hs_asset_##n##_len;                                    \
    extern const char hs_asset_##n##_hash[]
HS_ASSET_DECL(page_html);
HS_ASSET_DECL(error_html);
HS_ASSET_DECL(signup_js);
HS_ASSET_DECL(signup_css);

/* Is sub (the path below the <Location>) one of the page's routes? */
int hs_page_route(const char *sub);

/* Answers a page route (404 unless HydraSignupPage is On). */
int hs_page_handle(request_rec *r, const hs_dir_cfg *cfg, const char *sub);

/*
 * HydraSignupPortalURL: checks that url is an absolute http(s) URL with a
 * host, no user info and no fragment; sets *origin to its
 * scheme://host[:port] (for the page's CSP form-action). NULL when good,
 * else the reason.
 */
const char *hs_page_portal_check(apr_pool_t *p, const char *url,
                                 const char **origin);

#endif /* HS_PAGE_H */
