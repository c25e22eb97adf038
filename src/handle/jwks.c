/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jwks.c - GET {location}/jwks.json: the public key the portal tokens are
 * signed with, as a JWK Set (RFC 7517), when the algorithm is asymmetric.
 * With HS256 there is nothing public to publish: 404.
 */
#include "httpd.h"
#include "http_protocol.h"

#include <apr_strings.h>

#include "hs_config.h"
#include "hs_endpoints.h"
#include "hs_http.h"
#include "hs_jwt.h"

int hs_jwks_handle(request_rec *r, const hs_dir_cfg *cfg)
{
    const hs_jwt_key *key = hs_cfg_jwt_key(cfg);
    const char *jwk = key ? hs_jwt_public_jwk(r->pool, key) : NULL;
    if (!jwk) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    }
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=300");
    return hs_send_json(r, HTTP_OK,
                        apr_pstrcat(r->pool, "{\"keys\":[", jwk, "]}", NULL));
}
