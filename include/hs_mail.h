/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_mail.h - the verification email as one complete RFC 5322 message:
 * CRLF lines, Date, Message-ID, MIME-Version, a UTF-8 body in
 * quoted-printable, RFC 2047 encoded words for non-ASCII header text, and no
 * way for any field (CR, LF, other controls) to add a header. Subject and
 * body come from templates with placeholders.
 *
 * httpd-free: APR only.
 */
#ifndef HS_MAIL_H
#define HS_MAIL_H

#include <stddef.h>

#include <apr_pools.h>

typedef enum {
    HS_MAIL_VERIFY = 0, /* the code for a new or pending signup */
    HS_MAIL_EXISTS      /* conceal mode: "you already have an account" */
} hs_mail_kind;

/*
 * A template: its first line is "Subject: <text>", then an empty line, then
 * the body. Placeholders in subject and body: {{code}}, {{company}},
 * {{site_url}}, {{expiry_minutes}}, {{email}}. The verification template
 * must contain {{code}} on a line of its own. {{company}} (text a visitor
 * typed) may not be in the Subject and at most once in the body (the
 * parser refuses other templates); its value is defused (hs_mail_defuse).
 */
typedef struct {
    const char *subject;
    const char *body;
} hs_mail_template;

/* Text a visitor typed, with everything a mail client would make a link
 * of defused: "://" -> "[://]", "@" -> "[@]", a dot before a letter or
 * digit -> "[.]". s must be valid UTF-8. */
const char *hs_mail_defuse(apr_pool_t *p, const char *s);

/* The built-in defaults for each kind. */
const hs_mail_template *hs_mail_default_template(hs_mail_kind kind);

/* Parses template text (as read from HydraSignupMailTemplate). Returns NULL
 * and sets *t, or an error message for the operator. */
const char *hs_mail_template_parse(apr_pool_t *p, const char *text, size_t len,
                                   hs_mail_kind kind, hs_mail_template **t);

typedef struct {
    const char *from;     /* "Name <addr>" as configured */
    const char *to;       /* the customer's address */
    const char *code;     /* 6 digits, or NULL for HS_MAIL_EXISTS */
    const char *company;  /* company name (any UTF-8) */
    const char *site_url; /* https://... */
    int expiry_minutes;   /* code lifetime */
    const char *hostname; /* right-hand side of Message-ID */
    long long now;        /* seconds since the epoch, for Date */
} hs_mail_vars;

/* Renders the complete message into p; *len receives its length. Returns
 * NULL on success or an error message (e.g. an address with a CR/LF). */
const char *hs_mail_render(apr_pool_t *p, const hs_mail_template *t,
                           const hs_mail_vars *v, const char **msg,
                           size_t *len);

/* As hs_mail_render, with the random part of the Message-ID given (a
 * dot-atom of at most 64 characters; NULL draws 16 random hex digits), so
 * that tests can compare a whole message. The Message-ID is
 * "<now.random@hostname>"; a NULL hostname means this host's name. */
const char *hs_mail_render_with_id(apr_pool_t *p, const hs_mail_template *t,
                                   const hs_mail_vars *v, const char *id_random,
                                   const char **msg, size_t *len);

/* Validates a From value as configured ("Name <addr@host>" or "addr@host"):
 * NULL when usable, else the reason. */
const char *hs_mail_check_from(apr_pool_t *p, const char *from);

#endif /* HS_MAIL_H */
