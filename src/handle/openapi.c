/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openapi.c - GET {location}/openapi.json: the OpenAPI 3.1 document of the
 * endpoints (conf/openapi.json), with its paths under this <Location>.
 */
#include <string.h>

#include "httpd.h"
#include "http_core.h"
#include "http_protocol.h"

#include <apr_strings.h>

#include "hs_config.h"
#include "hs_endpoints.h"
#include "hs_http.h"

/* conf/openapi.json, embedded at build time (hs_openapi_json.c, made by
 * Makefile.am); its paths start with DOC_BASE, replaced by the Location */
extern const char hs_openapi_json[];

#define DOC_BASE "\"/v1/public/signup"
#define DOC_BASE_LEN (sizeof(DOC_BASE) - 1)

int hs_openapi_handle(request_rec *r, const hs_dir_cfg *cfg)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *base = d && d->d && !d->r ? d->d : "/v1/public/signup";
    apr_size_t blen = strlen(base);
    const char *p = hs_openapi_json, *q;
    struct iovec parts[32];
    int n = 0;
    char *out;

    while (blen > 1 && base[blen - 1] == '/') {
        blen--;
    }
    /* base is an operator's Location path: JSON-safe unless it holds a
     * quote or backslash */
    if (memchr(base, '"', blen) || memchr(base, '\\', blen)) {
        base = "/v1/public/signup";
        blen = strlen(base);
    }
    while ((q = strstr(p, DOC_BASE)) && n < 30) {
        parts[n].iov_base = (void *)p;
        parts[n++].iov_len = (apr_size_t)(q - p) + 1; /* the quote */
        parts[n].iov_base = (void *)base;
        parts[n++].iov_len = blen;
        p = q + DOC_BASE_LEN;
    }
    parts[n].iov_base = (void *)p;
    parts[n++].iov_len = strlen(p);
    out = apr_pstrcatv(r->pool, parts, n, NULL);
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=3600");
    return hs_send_json(r, HTTP_OK, out);
}
