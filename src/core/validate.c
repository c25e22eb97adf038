/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate.c - request validation with pydantic v2 semantics: string
 * members with code-point length limits, email members through
 * hs_email_str_check (email.c), and the signup and verify request models
 * (see hs_validate.h).
 *
 * httpd-free: APR and json-c only.
 */
#include <string.h>

#include <apr_strings.h>

#include "hs_email.h"
#include "hs_utf8.h"
#include "hs_validate.h"

/* pydantic's own cap, checked before email-validator runs */
#define PYDANTIC_MAX_EMAIL_LENGTH 2048

#define EMAIL_ERR_PREFIX "value is not a valid email address: "

/* ------------------------------------------------------------------ */
/* Fields */

/* Looks member name up; returns 1 and *v (may be NULL for JSON null) when
 * present. */
static int get_member(json_object *obj, const char *name, json_object **v)
{
    *v = NULL;
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        return 0;
    }
    return json_object_object_get_ex(obj, name, v) ? 1 : 0;
}

/* The string value of member name, or NULL with an error added (missing,
 * string_type, string_unicode). *len and *cps get its sizes. */
static const char *read_string(json_object *obj, const char *name, int required,
                               int *missing, size_t *len, long *cps,
                               hs_errors *e)
{
    json_object *v;
    const char *s;

    *missing = 0;
    if (!get_member(obj, name, &v)) {
        *missing = 1;
        if (required) {
            hs_errors_add(e, name, "missing", "Field required");
        }
        return NULL;
    }
    if (v == NULL || !json_object_is_type(v, json_type_string)) {
        hs_errors_add(e, name, "string_type", "Input should be a valid string");
        return NULL;
    }
    s = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    *cps = hs_utf8_length(s, *len);
    if (*cps < 0) {
        hs_errors_add(e, name, "string_unicode",
                      "Input should be a valid string, unable to parse raw "
                      "data as a unicode string");
        return NULL;
    }
    return s;
}

const char *hs_validate_string(apr_pool_t *p, json_object *obj,
                               const char *name, size_t min, size_t max,
                               int required, const char *dflt, hs_errors *e)
{
    size_t len = 0;
    long cps = 0;
    int missing;
    const char *s = read_string(obj, name, required, &missing, &len, &cps, e);

    if (s == NULL) {
        return (missing && !required) ? dflt : NULL;
    }
    if ((size_t)cps < min) {
        hs_errors_add(
            e, name, "string_too_short",
            apr_psprintf(p,
                         "String should have at least %" APR_SIZE_T_FMT
                         " character%s",
                         min, min == 1 ? "" : "s"));
        return NULL;
    }
    if ((size_t)cps > max) {
        hs_errors_add(e, name, "string_too_long",
                      apr_psprintf(p,
                                   "String should have at most %" APR_SIZE_T_FMT
                                   " character%s",
                                   max, max == 1 ? "" : "s"));
        return NULL;
    }
    if (memchr(s, '\0', len) != NULL) {
        hs_errors_add(e, name, "value_error",
                      "Value error, String should not contain NUL characters");
        return NULL;
    }
    return apr_pstrmemdup(p, s, len);
}

const char *hs_validate_email(apr_pool_t *p, json_object *obj, const char *name,
                              hs_errors *e)
{
    size_t len = 0;
    long cps = 0;
    int missing;
    const char *s = read_string(obj, name, 1, &missing, &len, &cps, e);
    const char *why, *norm = NULL;

    if (s == NULL) {
        return NULL;
    }
    if (cps > PYDANTIC_MAX_EMAIL_LENGTH) {
        hs_errors_add(e, name, "value_error",
                      EMAIL_ERR_PREFIX
                      "Length must not exceed 2048 characters");
        return NULL;
    }
    why = hs_email_str_check(p, s, len, &norm);
    if (why) {
        hs_errors_add(e, name, "value_error",
                      apr_pstrcat(p, EMAIL_ERR_PREFIX, why, NULL));
        return NULL;
    }
    return norm;
}

int hs_signup_req_read(apr_pool_t *p, json_object *obj, hs_signup_req *out,
                       hs_errors *e)
{
    int before = hs_errors_count(e);

    memset(out, 0, sizeof(*out));
    out->company_name =
        hs_validate_string(p, obj, "company_name", 1, 200, 1, NULL, e);
    out->email = hs_validate_email(p, obj, "email", e);
    out->plan = hs_validate_string(p, obj, "plan", 0, 50, 0, "starter", e);
    out->tenant_slug =
        hs_validate_string(p, obj, "tenant_slug", 1, 100, 1, NULL, e);
    return hs_errors_count(e) - before;
}

int hs_verify_req_read(apr_pool_t *p, json_object *obj, hs_verify_req *out,
                       hs_errors *e)
{
    int before = hs_errors_count(e);

    memset(out, 0, sizeof(*out));
    out->code = hs_validate_string(p, obj, "code", 6, 6, 1, NULL, e);
    out->email = hs_validate_email(p, obj, "email", e);
    out->tenant_slug =
        hs_validate_string(p, obj, "tenant_slug", 1, 100, 1, NULL, e);
    return hs_errors_count(e) - before;
}
