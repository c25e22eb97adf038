/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keepalive.c - the connection stays open after the module's own 400
 * answers (see hs_keepalive.h).
 *
 * httpd decides in its HTTP_HEADER filter (ap_set_keepalive) and writes
 * "Connection: close" into the head it serialises; no hook runs in
 * between. So the decision is taken again here, before the answer is sent,
 * with every condition of ap_set_keepalive except the status; and a filter
 * right after HTTP_HEADER takes that one line out of the head and marks the
 * connection to be kept. Anything unexpected in the head (another
 * Connection token, an HTTP/1.0 status line, a head split by metadata)
 * leaves it as httpd wrote it: the connection closes, as before.
 */
#include <string.h>

#include "httpd.h"
#include "http_log.h"
#include "http_protocol.h"
#include "util_filter.h"

#include "hs_http.h"
#include "hs_keepalive.h"
#include "hs_log.h"

APLOG_USE_MODULE(hydra_signup);

#define FILTER_NAME "HYDRA_SIGNUP_KEEPALIVE"
#define BODY_READ "hydra-signup-body-read"
/* what ap_set_keepalive adds to the head, after the line before it */
#define CLOSE_LINE "\r\nConnection: close\r\n"
#define STATUS_400 "HTTP/1.1 400 "
/* a longer head is not one of ours: left alone */
#define MAX_HEAD 16384

static ap_filter_rec_t *keep_filter;

void hs_keepalive_body_read(request_rec *r)
{
    apr_table_setn(r->notes, BODY_READ, "1");
}

/* ap_set_keepalive's conditions (httpd 2.4), but for the status and the
 * body (which httpd would read to its end before the next request). */
int hs_keepalive_possible(request_rec *r)
{
    conn_rec *c = r->connection;
    server_rec *s = r->server;
    const char *conn = apr_table_get(r->headers_in, "Connection");

    return r->proto_num == HTTP_VERSION(1, 1) && !r->main &&
           !r->expecting_100 && !c->aborted && c->keepalive != AP_CONN_CLOSE &&
           s->keep_alive && s->keep_alive_timeout > 0 &&
           (s->keep_alive_max == 0 || s->keep_alive_max > c->keepalives) &&
           !ap_find_token(r->pool, conn, "close") &&
           (!apr_table_get(r->subprocess_env, "nokeepalive") ||
            apr_table_get(r->headers_in, "Via")) &&
           !hs_mpm_stopping();
}

void hs_keepalive_after_400(request_rec *r)
{
    /* a 400 keeps the connection only for a body read whole: what is
     * left of one httpd could not tell from the next request */
    if (keep_filter && apr_table_get(r->notes, BODY_READ) &&
        hs_keepalive_possible(r)) {
        ap_add_output_filter_handle(keep_filter, NULL, r, r->connection);
    }
}

/* The first brigade after HTTP_HEADER is the head alone: the status line,
 * the fields and the blank line, in data buckets. */
static apr_status_t keep_filter_out(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    conn_rec *c = r->connection;
    apr_size_t cut = sizeof(CLOSE_LINE) - 3; /* "Connection: close\r\n" */
    apr_off_t total;
    apr_size_t len;
    apr_bucket *e;
    char *head, *at;

    ap_remove_output_filter(f); /* whatever comes next is the body */
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
         e = APR_BUCKET_NEXT(e)) {
        if (APR_BUCKET_IS_METADATA(e)) {
            return ap_pass_brigade(f->next, bb);
        }
    }
    /* the head as one string, then without that line, in place */
    if (c->keepalive != AP_CONN_CLOSE ||
        apr_brigade_length(bb, 1, &total) != APR_SUCCESS || total <= 0 ||
        total > MAX_HEAD) {
        return ap_pass_brigade(f->next, bb);
    }
    len = (apr_size_t)total;
    head = apr_palloc(r->pool, len + 1);
    if (apr_brigade_flatten(bb, head, &len) != APR_SUCCESS) {
        return ap_pass_brigade(f->next, bb);
    }
    head[len] = '\0';
    at = strstr(head, CLOSE_LINE);
    /* one Connection field, httpd's "close", and a whole head */
    if (len < sizeof(STATUS_400) + 4 ||
        strncmp(head, STATUS_400, sizeof(STATUS_400) - 1) || !at ||
        ap_strcasestr(head, "\r\nConnection:") != at ||
        ap_strcasestr(at + 2, "\r\nConnection:") ||
        strcmp(head + len - 4, "\r\n\r\n")) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      HSLOGNO(00802) "the 400 answer's head is not the one "
                                     "expected: the connection closes");
        return ap_pass_brigade(f->next, bb);
    }
    memmove(at + 2, at + 2 + cut, len - (apr_size_t)(at - head) - 2 - cut);
    apr_brigade_cleanup(bb);
    APR_BRIGADE_INSERT_TAIL(
        bb, apr_bucket_pool_create(head, len - cut, r->pool, c->bucket_alloc));
    /* what ap_set_keepalive does when it keeps a connection */
    c->keepalive = AP_CONN_KEEPALIVE;
    c->keepalives++;
    return ap_pass_brigade(f->next, bb);
}

void hs_keepalive_register(void)
{
    /* after HTTP_HEADER (AP_FTYPE_PROTOCOL), before CHUNK (TRANSCODE) and
     * the connection filters (TLS among them) */
    keep_filter = ap_register_output_filter(FILTER_NAME, keep_filter_out, NULL,
                                            AP_FTYPE_PROTOCOL + 5);
}
