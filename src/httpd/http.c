/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - JSON responses and request bodies (see hs_http.h).
 */
#include <string.h>

#include "httpd.h"
#include "ap_mpm.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

#include <apr_strings.h>

#include "hs_http.h"
#include "hs_keepalive.h"
#include "hs_log.h"

APLOG_USE_MODULE(hydra_signup);

int hs_mpm_stopping(void)
{
    int state = AP_MPMQ_RUNNING;
    return ap_mpm_query(AP_MPMQ_MPM_STATE, &state) == APR_SUCCESS &&
           state == AP_MPMQ_STOPPING;
}

int hs_send_json(request_rec *r, int status, const char *body)
{
    apr_size_t len = strlen(body);
    r->status = status;
    if (status == HTTP_BAD_REQUEST) {
        hs_keepalive_after_400(r);
    }
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return OK;
}

int hs_send_detail(request_rec *r, int status, const char *text)
{
    return hs_send_json(r, status, hs_json_detail(r->pool, text));
}

int hs_send_internal_error(request_rec *r)
{
    return hs_send_detail(r, HTTP_INTERNAL_SERVER_ERROR,
                          "Internal Server Error");
}

int hs_send_retry(request_rec *r, int status, const char *text, long secs)
{
    apr_table_setn(r->headers_out, "Retry-After",
                   apr_ltoa(r->pool, secs > 0 ? secs : 1));
    return hs_send_detail(r, status, text);
}

int hs_send_errors(request_rec *r, const hs_errors *e)
{
    return hs_send_json(r, HTTP_UNPROCESSABLE_ENTITY,
                        hs_errors_render(e, r->pool));
}

/* application/json or application/<x>+json, parameters allowed. */
static int is_json_type(const char *ct)
{
    const char *semi;
    apr_size_t n;
    if (!ct) {
        return 0;
    }
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    semi = strchr(ct, ';');
    n = semi ? (apr_size_t)(semi - ct) : strlen(ct);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
        n--;
    }
    if (n == 16 && !strncasecmp(ct, "application/json", 16)) {
        return 1;
    }
    return n > 17 && !strncasecmp(ct, "application/", 12) &&
           !strncasecmp(ct + n - 5, "+json", 5) &&
           !memchr(ct + 12, '/', n - 12);
}

/* Reads at most cap bytes of the body into a buffer; 413 past cap. */
static int read_body(request_rec *r, apr_size_t cap, char **out,
                     apr_size_t *outlen)
{
    apr_bucket_brigade *bb =
        apr_brigade_create(r->pool, r->connection->bucket_alloc);
    char *buf = apr_palloc(r->pool, cap + 1);
    apr_size_t len = 0;
    int seen_eos = 0;

    do {
        apr_bucket *b;
        apr_status_t rv =
            ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                           APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            int st = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r,
                          HSLOGNO(00801) "reading the request body failed");
            apr_brigade_destroy(bb);
            return st;
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;
            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;
            }
            rv = apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                apr_brigade_destroy(bb);
                return HTTP_BAD_REQUEST;
            }
            if (n > cap - len) {
                apr_brigade_destroy(bb);
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            memcpy(buf + len, data, n);
            len += n;
        }
        apr_brigade_cleanup(bb);
    } while (!seen_eos);

    apr_brigade_destroy(bb);
    hs_keepalive_body_read(r);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return OK;
}

int hs_read_json(request_rec *r, const hs_dir_cfg *cfg, json_object **obj)
{
    apr_size_t cap = (apr_size_t)hs_cfg_max_body(cfg), len = 0;
    const char *clen = apr_table_get(r->headers_in, "Content-Length");
    hs_errors *errs;
    char *body = NULL;
    int rc;

    *obj = NULL;
    if (!is_json_type(apr_table_get(r->headers_in, "Content-Type"))) {
        hs_send_detail(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                       "Content-Type must be application/json");
        return OK;
    }
    if (clen) {
        char *end;
        apr_off_t n;
        if (apr_strtoff(&n, clen, &end, 10) == APR_SUCCESS && !*end &&
            n > (apr_off_t)cap) {
            /* refuse before reading; the connection is closed afterwards */
            r->connection->keepalive = AP_CONN_CLOSE;
            hs_send_detail(
                r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                apr_psprintf(r->pool,
                             "Request body is larger than %" APR_SIZE_T_FMT
                             " bytes",
                             cap));
            return OK;
        }
    }
    rc = read_body(r, cap, &body, &len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        r->connection->keepalive = AP_CONN_CLOSE;
        hs_send_detail(
            r, rc,
            apr_psprintf(
                r->pool,
                "Request body is larger than %" APR_SIZE_T_FMT " bytes", cap));
        return OK;
    }
    if (rc != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
        /* AP_FILTER_ERROR: httpd's input filter has answered already (a
         * broken chunk, say); a second answer would be lost, and its
         * status (-102) would be logged */
        if (rc != AP_FILTER_ERROR) {
            hs_send_detail(r, rc, "The request body could not be read");
        }
        return OK;
    }
    errs = hs_errors_make(r->pool);
    *obj = hs_json_parse_object(body, len, errs);
    if (!*obj) {
        hs_send_errors(r, errs);
        return OK;
    }
    hs_json_pool_own(r->pool, *obj);
    return OK;
}
