/*
 * hs_validate.h - request validation with pydantic v2 semantics: string
 * members with code-point length limits, email addresses as python's
 * email-validator accepts them (no DNS), and the request models of the
 * signup and verify endpoints. Every failing field is reported at once
 * into an hs_errors list.
 *
 * httpd-free: APR and json-c only.
 */
#ifndef HS_VALIDATE_H
#define HS_VALIDATE_H

#include <stddef.h>

#include <apr_pools.h>
#include <json-c/json.h>

#include "hs_json.h"

/* Number of Unicode code points in s[0..len), or -1 when s is not valid
 * UTF-8 (overlongs, surrogates and values past U+10FFFF are invalid). */
long hs_utf8_length(const char *s, size_t len);

/*
 * Checks an email address. Returns NULL when valid and sets *normalized (in
 * p) to the form we store: the local part as given, the domain lower-cased
 * (ASCII) / NFC as email-validator normalises it. Otherwise returns the
 * reason in email-validator's words, e.g.
 * "The email address is not valid. It must have exactly one @-sign."
 */
const char *hs_email_check(apr_pool_t *p, const char *s, size_t len,
                           const char **normalized);

/* The address with its domain in ASCII (IDNA A-labels), as SMTP needs it
 * without SMTPUTF8: "x@bücher.de" -> "x@xn--bcher-kva.de". Returns email
 * itself when the domain is ASCII already or cannot be converted. */
const char *hs_email_ascii_domain(apr_pool_t *p, const char *email);

/* The mailbox an address reaches, for counting mails to it: ASCII letters
 * lower-cased and a "+tag" dropped from the local part, so that
 * "A+2@X.example" and "a+1@x.example" are one mailbox "a@x.example".
 * (A quoted local part is kept as it is, apart from case.) */
const char *hs_email_mailbox(apr_pool_t *p, const char *email);

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
 * hs_email_check); error type value_error, msg
 * "value is not a valid email address: <reason>". Returns the normalised
 * address or NULL when an error was added. */
const char *hs_validate_email(apr_pool_t *p, json_object *obj,
                              const char *name, hs_errors *e);

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
