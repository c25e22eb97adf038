/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_smtp.h - delivering one spooled message over SMTP with libcurl
 * (smtp:// with STARTTLS required/optional/off, or smtps://, AUTH), and
 * classifying the outcome: sent (250 after DATA), temporary (connection
 * refused/reset, timeouts, TLS or AUTH trouble, 4xx) or permanent (a 5xx
 * answer to MAIL, RCPT, DATA or the end of the data). Also the few message
 * helpers the sender needs: an unfolded header, the addresses in it.
 *
 * libcurl and libc only: no httpd, no APR.
 */
#ifndef HS_SMTP_H
#define HS_SMTP_H

#include <stddef.h>

/* RFC 5321 path limit (254 octets for the address itself). */
#define HS_ADDR_MAX 254
/* Most recipients taken from one To header. */
#define HS_RCPT_MAX 16

typedef enum {
    HS_SMTP_TLS_REQUIRED = 0, /* STARTTLS or fail (CURLUSESSL_ALL) */
    HS_SMTP_TLS_OPTIONAL,     /* STARTTLS when offered (CURLUSESSL_TRY) */
    HS_SMTP_TLS_OFF           /* never (CURLUSESSL_NONE) */
} hs_smtp_tls;

typedef struct {
    const char *url;      /* smtp://host[:port] or smtps://host[:port] */
    const char *user;     /* NULL: no AUTH */
    const char *password; /* with user */
    hs_smtp_tls tls;      /* for smtp:// (smtps:// is always TLS) */
    const char *ca_file;  /* NULL: the system store */
    int insecure;         /* 1: do not verify the server certificate */
    long connect_timeout; /* seconds */
    long timeout;         /* seconds, the whole transaction */
} hs_smtp_config;

typedef enum {
    HS_SMTP_SENT = 0, /* the server said 250 after the data */
    HS_SMTP_TEMPFAIL, /* try again later */
    HS_SMTP_PERMFAIL  /* the server refused this message for good */
} hs_smtp_status;

typedef struct {
    hs_smtp_status status;
    long code;       /* the last SMTP reply code seen, 0 when none */
    int unreachable; /* no SMTP conversation at all (resolve, connect) */
    char phase[16];  /* where it ended: CONNECT EHLO TLS AUTH MAIL RCPT ... */
    /* curl's error text and the server's last reply line, with the local
     * part of any address in it masked: safe for a log line */
    char detail[700];
    /* the server's last reply line, unmasked (for the .reason file) */
    char reply[300];
} hs_smtp_result;

typedef struct hs_smtp hs_smtp;

/* Sets up one libcurl handle, reused (and its connection kept up to 30 s)
 * across messages. NULL and err filled on failure, also when cfg has
 * credentials but no TLS (an smtp:// URL without STARTTLS required): AUTH
 * is never sent in clear. */
hs_smtp *hs_smtp_new(const hs_smtp_config *cfg, char *err, size_t errlen);
void hs_smtp_free(hs_smtp *s);

/* Called about once a second while a transfer runs (lease renewal). */
typedef void hs_smtp_tick_fn(void *arg);

/*
 * Sends data (the complete message, CRLF lines) with envelope sender from
 * and the one recipient rcpt (bare addresses): a message never goes to more
 * than one mailbox. libcurl does the dot stuffing and the final "." line.
 * The outcome goes to *res.
 */
void hs_smtp_send(hs_smtp *s, const char *from, const char *rcpt,
                  const char *data, size_t len, hs_smtp_tick_fn *tick,
                  void *arg, hs_smtp_result *res);

/*
 * The unfolded value of the first header field called name (any case) in
 * the header section of msg (up to the first empty line), leading and
 * trailing white space removed. 1 when found, 0 when absent, -1 when it
 * does not fit in out.
 */
int hs_msg_header(const char *msg, size_t len, const char *name, char *out,
                  size_t outlen);

/* How many header fields called name (any case) msg's header section holds
 * (a message may carry a field twice; RFC 5322 allows To once). */
size_t hs_msg_header_count(const char *msg, size_t len, const char *name);

/*
 * The addresses in an address-list header value: "Name <a@b>", "a@b",
 * "\"Last, First\" <a@b> (comment)", several separated by commas. Groups'
 * empty lists are skipped. 0 and *n >= 1 on success; -1 when an element is
 * not a usable address or there are more than max.
 */
int hs_msg_addresses(const char *value, char (*addrs)[HS_ADDR_MAX + 1],
                     size_t max, size_t *n);

/* The part after the last '@' ("" when none). */
const char *hs_addr_domain(const char *addr);

/* Replaces the local part of every "local@domain" in s by "*". */
void hs_mask_addresses(char *s);

/*
 * Reads SMTP credentials: one line "user:password" (split at the first
 * colon) or two lines "user" and "password". Trailing CR/LF trimmed.
 * 0 on success, -1 with err filled (never with the secret in it).
 */
int hs_smtp_read_auth(const char *path, char *user, size_t ulen, char *pass,
                      size_t plen, char *err, size_t errlen);

#endif /* HS_SMTP_H */
