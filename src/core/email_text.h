/* SPDX-License-Identifier: Apache-2.0 */
/*
 * email_text.h - what the email-validator port (email.c) builds on: strings
 * as Unicode code points, email-validator's character classes, and its
 * messages that list characters or lengths. Private to src/core/email*.c.
 *
 * httpd-free: APR and libunistring only.
 */
#ifndef HS_EMAIL_TEXT_H
#define HS_EMAIL_TEXT_H

#include <stddef.h>

#include <apr_pools.h>
#include <unitypes.h>

/* A string as Unicode code points, in a pool. */
typedef struct {
    ucs4_t *c;
    size_t n;
} ustr;

/* s[0..len) as code points in p; -1 when s is not valid UTF-8. */
int em_ustr_from_utf8(apr_pool_t *p, const char *s, size_t len, ustr *out);

/* NUL-terminated UTF-8 copy of c[0..n) in p (*len gets its byte length). */
char *em_utf8_from_cps(apr_pool_t *p, const ucs4_t *c, size_t n, size_t *len);

/* ASCII letters and digits */
int em_is_ascii_alnum(ucs4_t c);

/* RFC 5322 atext */
int em_is_atext(ucs4_t c);

/* RFC 6531 atext: plus U+0080..U+10FFFF */
int em_is_atext_intl(ucs4_t c);

/* RFC 6531 atext or '.' */
int em_is_atext_intl_dot(ucs4_t c);

/* ATEXT_HOSTNAME_INTL */
int em_is_hostname_intl(ucs4_t c);

/* QTEXT_INTL */
int em_is_qtext_intl(ucs4_t c);

/* DOMAIN_LITERAL_CHARS: U+0021..U+00FA */
int em_is_domain_literal_char(ucs4_t c);

/* str.isspace() / the \s of Python's re on str */
int em_py_isspace(ucs4_t c);

/* The Unicode general category of c, e.g. "Lu" */
const char *em_category_of(ucs4_t c);

/* dot-atom: atoms of pred characters joined by single periods */
int em_is_dot_atom(const ucs4_t *c, size_t n, int (*pred)(ucs4_t));

/* DOT_ATOM_TEXT_HOSTNAME: LDH labels that neither start nor end with '-' */
int em_is_ascii_hostname(const ucs4_t *c, size_t n);

/* prefix + the sorted displays of the characters failing ok(), or NULL
 * when every character passes. */
const char *em_bad_chars_reason(apr_pool_t *p, const ustr *s, int (*ok)(ucs4_t),
                                const char *prefix);

/* check_unsafe_chars: letters, numbers, punctuation and symbols are fine;
 * a mark only in first position is not; spaces (unless allowed), line and
 * paragraph separators, controls, format, private use and unassigned code
 * points are not. */
const char *em_unsafe_chars_reason(apr_pool_t *p, const ustr *s,
                                   int allow_space);

/* "(N character[s] too many)", with "at least " when asked */
const char *em_length_reason(apr_pool_t *p, size_t len, size_t limit,
                             int at_least);

/* check_dot_atom */
const char *em_dot_atom_reason(const ustr *s, int is_hostname);

#endif /* HS_EMAIL_TEXT_H */
