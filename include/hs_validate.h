/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_validate.h - request validation with pydantic v2 semantics: string
 * members with code-point length limits, email addresses as pydantic's
 * EmailStr accepts them (hs_email.h: python's email-validator, no DNS),
 * and the request models of the signup and verify endpoints. Every failing
 * field is reported at once into an hs_errors list.
 *
 * httpd-free: APR and json-c only.
 */
#ifndef HS_VALIDATE_H
#define HS_VALIDATE_H

#include <stddef.h>

#include <apr_pools.h>
#include <json-c/json.h>

#include "hs_email.h"
#include "hs_json.h"
#include "hs_utf8.h"

/*
 * Reads member `name` of obj as a string of min..max code points.
 * Missing and required: "missing"; missing and optional: returns dflt.
 * Not a string: "string_type"; too short / too long: "string_too_short" /
 * "string_too_long" with pydantic's messages ("String should have at least
 * 1 character", "... at least 6 characters", "... at most 200 characters").
 * A NUL character inside the string is refused with a value_error.
 * Returns the value copied into p, or NULL when an error was added.
 */
const char *hs_validate_string(apr_pool_t *p, json_object *obj,
                               const char *name, size_t min, size_t max,
                               int required, const char *dflt, hs_errors *e);

/* Reads member `name` as an email address (a string first, then
 * hs_email_str_check); error type value_error, msg
 * "value is not a valid email address: <reason>". Returns the normalised
 * address or NULL when an error was added. */
const char *hs_validate_email(apr_pool_t *p, json_object *obj, const char *name,
                              hs_errors *e);

/* POST /v1/public/signup */
typedef struct {
    const char *company_name; /* 1..200 */
    const char *email;        /* normalised */
    const char *plan;         /* <= 50, default "starter" */
    const char *tenant_slug;  /* 1..100 */
} hs_signup_req;

/* POST /v1/public/signup/verify */
typedef struct {
    const char *code;        /* exactly 6 */
    const char *email;       /* normalised */
    const char *tenant_slug; /* 1..100 */
} hs_verify_req;

/* Validate a parsed body; return 0 when valid, else the number of errors
 * added to e. Fields are checked in the order listed above. */
int hs_signup_req_read(apr_pool_t *p, json_object *obj, hs_signup_req *out,
                       hs_errors *e);
int hs_verify_req_read(apr_pool_t *p, json_object *obj, hs_verify_req *out,
                       hs_errors *e);

#endif /* HS_VALIDATE_H */
