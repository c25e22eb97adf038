/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_http.h - HTTP plumbing shared by the endpoints: JSON responses,
 * FastAPI-shaped errors, reading a request body with a size cap (413) and a
 * Content-Type check (415).
 */
#ifndef HS_HTTP_H
#define HS_HTTP_H

#include "httpd.h"

#include <json-c/json.h>

#include "hs_config.h"
#include "hs_json.h"

/* Sends body (a JSON text) with status; returns OK for the handler. */
int hs_send_json(request_rec *r, int status, const char *body);

/* Sends {"detail": text} with status; returns OK. */
int hs_send_detail(request_rec *r, int status, const char *text);

/* Sends 500 {"detail": "Internal Server Error"}; returns OK. */
int hs_send_internal_error(request_rec *r);

/* Sends {"detail": text} with status and Retry-After: secs. */
int hs_send_retry(request_rec *r, int status, const char *text, long secs);

/* Sends the 422 error list; returns OK. */
int hs_send_errors(request_rec *r, const hs_errors *e);

/*
 * Reads the JSON request body (Content-Type application/json, at most the
 * configured HydraSignupMaxBody bytes, chunked or not) and parses it into an
 * object owned by r->pool. Returns OK with *obj set; otherwise the error
 * answer has already been sent and the return value is what the handler
 * returns (OK), with *obj NULL.
 */
int hs_read_json(request_rec *r, const hs_dir_cfg *cfg, json_object **obj);

/* Is httpd stopping or restarting this process (the MPM's state)? Then
 * nothing optional is started (the reaper's analyze) and no connection is
 * kept open (keepalive.c). */
int hs_mpm_stopping(void);

#endif /* HS_HTTP_H */
