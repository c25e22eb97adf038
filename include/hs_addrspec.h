/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_addrspec.h - is this one bare address local@domain, safe to put in a
 * header and an SMTP envelope? The one check of an address as it leaves
 * us: the mail builder (src/core/mail.c) applies it to the To address (and
 * its strict form to the operator's From), the sender (mailer/smtp.c) to
 * every address it reads from a message. What a
 * visitor may type is decided earlier, by the email-validator port
 * (hs_email.h), whose output always passes here.
 *
 * httpd-free, APR-free: the sender links it.
 */
#ifndef HS_ADDRSPEC_H
#define HS_ADDRSPEC_H

#include <stddef.h>

/* The longest address (RFC 5321 4.5.3.1.3 path limit less "<>"), in bytes */
#define HS_ADDRSPEC_MAX 254

typedef enum {
    HS_ADDRSPEC_OK = 0,
    HS_ADDRSPEC_EMPTY,    /* nothing at all */
    HS_ADDRSPEC_CONTROL,  /* a C0 control character or DEL */
    HS_ADDRSPEC_LONG,     /* over HS_ADDRSPEC_MAX bytes */
    HS_ADDRSPEC_NOT_UTF8, /* not well-formed UTF-8 (RFC 6532 allows UTF-8) */
    HS_ADDRSPEC_NOT_ONE   /* a space, a special (()<>[]:;,"\) or not
                           * exactly one '@' between two non-empty parts */
} hs_addrspec_status;

/* Checks the n bytes at s (no NUL needed). */
hs_addrspec_status hs_addrspec_check(const char *s, size_t n);

/* The stricter form an operator's From address must have: ASCII only, a
 * dot-atom local part of at most 64 characters and a host name domain
 * (labels of 1-63 letters, digits and inner hyphens). 1 when a[0..n) is
 * one. */
int hs_addrspec_strict(const char *a, size_t n);

/* Is c an RFC 5322 atext character (ASCII letters, digits and
 * !#$%&'*+-/=?^_`{|}~)? */
int hs_addrspec_atext(unsigned char c);

#endif /* HS_ADDRSPEC_H */
