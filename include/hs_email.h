/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_email.h - email address syntax: a port of python's email-validator
 * 2.1 with its default options (no DNS), behind pydantic's EmailStr front
 * end, used by request validation (hs_validate.h).
 *
 * httpd-free: APR, libidn2 and libunistring only.
 */
#ifndef HS_EMAIL_H
#define HS_EMAIL_H

#include <stddef.h>

#include <apr_pools.h>

/*
 * Checks an email address. Returns NULL when valid and sets *normalized (in
 * p) to the form we store: the local part as given, the domain lower-cased
 * (ASCII) / NFC as email-validator normalises it. Otherwise returns the
 * reason in email-validator's words, e.g.
 * "The email address is not valid. It must have exactly one @-sign."
 */
const char *hs_email_check(apr_pool_t *p, const char *s, size_t len,
                           const char **normalized);

/* pydantic's EmailStr: s may be "Name <addr>" (the address in angle
 * brackets is taken) and is stripped of white space, then checked as
 * hs_email_check does. */
const char *hs_email_str_check(apr_pool_t *p, const char *s, size_t len,
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

#endif /* HS_EMAIL_H */
