/*
 * plans.c - GET {location}/plans/{tenant_slug}: the tenant's public plans in
 * display order, cacheable (ETag over the body, 304 on If-None-Match).
 */
#include <string.h>

#include "httpd.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include <apr_strings.h>
#include <json-c/json.h>

#include "hs_crypto.h"
#include "hs_db.h"
#include "hs_endpoints.h"
#include "hs_http.h"
#include "hs_json.h"
#include "hs_log.h"
#include "hs_ratelimit.h"
#include "hs_validate.h"

APLOG_USE_MODULE(hydra_signup);

#define PLANS_CACHE_CONTROL "public, max-age=60"

int hs_plans_handle(request_rec *r, const hs_dir_cfg *cfg, const char *slug)
{
    hs_db_result res;
    hs_db *db;
    json_object *list;
    const char *body, *etag;
    int i, rc;
    long n;

    if (hs_ratelimit(r, cfg, HS_RATE_PLANS)) {
        return OK;
    }
    /* a slug that cannot name a tenant (not UTF-8, an overlong form such
     * as %c0%ae, a control character, longer than 100 code points) never
     * reaches the database: PostgreSQL would refuse it and that must not
     * become a 503 */
    n = hs_utf8_length(slug, strlen(slug));
    if (n < 1 || n > 100 ||
        strpbrk(slug, "\x01\x02\x03\x04\x05\x06\x07"
                      "\x08\t\n\x0b\x0c\r\x0e\x0f"
                      "\x10\x11\x12\x13\x14\x15\x16"
                      "\x17\x18\x19\x1a\x1b\x1c\x1d"
                      "\x1e\x1f\x7f")) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }
    if (!hs_cfg_serves(cfg, slug)) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }
    if (!(db = hs_db_acquire(r))) {
        return hs_send_retry(r, HTTP_SERVICE_UNAVAILABLE,
                             "Service temporarily unavailable", 5);
    }
    if (hs_db_select(db, HS_Q_PLANS, &res, 1, &slug)) {
        return hs_send_retry(r, HTTP_SERVICE_UNAVAILABLE,
                             "Service temporarily unavailable", 5);
    }
    if (res.nrows == 0 || !hs_db_true(res.rows[0][0])) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }

    list = hs_json_pool_own(r->pool, json_object_new_array());
    for (i = 0; i < res.nrows; i++) {
        const char **row = res.rows[i];
        json_object *plan, *features;
        if (!row[1]) {
            continue; /* the tenant has no public plan */
        }
        plan = json_object_new_object();
        json_object_object_add(plan, "name", json_object_new_string(row[1]));
        json_object_object_add(plan, "description",
                               json_object_new_string(row[2] ? row[2] : ""));
        json_object_object_add(plan, "price",
                               json_object_new_string(row[3] ? row[3] : ""));
        /* array_to_json output of our own database: trusted, but checked */
        features = row[4] ? json_tokener_parse(row[4]) : NULL;
        if (!features || !json_object_is_type(features, json_type_array)) {
            json_object_put(features);
            features = json_object_new_array();
        }
        json_object_object_add(plan, "features", features);
        json_object_array_add(list, plan);
    }
    body = hs_json_to_string(r->pool, list);

    etag = hs_sha256_hex(r->pool, body, strlen(body));
    if (!etag) {
        return hs_send_detail(r, HTTP_INTERNAL_SERVER_ERROR,
                              "Internal Server Error");
    }
    etag = apr_psprintf(r->pool, "\"%.32s\"", etag);
    apr_table_setn(r->headers_out, "ETag", etag);
    apr_table_setn(r->headers_out, "Cache-Control", PLANS_CACHE_CONTROL);
    rc = ap_meets_conditions(r);
    if (rc == HTTP_NOT_MODIFIED) {
        r->status = HTTP_NOT_MODIFIED;
        return OK;
    }
    return hs_send_json(r, HTTP_OK, body);
}
