/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mail.c - the verification email as one RFC 5322 message (see hs_mail.h).
 *
 * Every line ends in CRLF. Header text that is not plain ASCII goes out as
 * RFC 2047 "B" encoded words, folded so that no header line exceeds 78
 * characters; the body is UTF-8 in quoted-printable (RFC 2045). No value can
 * add a header: addresses with control characters are refused, and control
 * characters in substituted text become spaces before anything is encoded.
 *
 * httpd-free: APR only.
 */
#include "hs_mail.h"
#include "hs_addrspec.h"
#include "hs_util.h"
#include "hs_utf8.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <apr_encode.h>
#include <apr_general.h>
#include <apr_lib.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#define HS_MAIL_LINE_MAX 78       /* RFC 5322 2.1.1 "SHOULD" limit */
#define HS_MAIL_QP_MAX 76         /* RFC 2045 6.7 (5) */
#define HS_MAIL_EWORD_MAX 75      /* RFC 2047 2 */
#define HS_MAIL_EWORD_OVERHEAD 12 /* "=?UTF-8?B?" + "?=" */
#define HS_MAIL_NAME_MAX 40       /* longest placeholder name we scan for */

/* --- a growable buffer in a pool ------------------------------------- */

typedef struct {
    apr_pool_t *p;
    char *d;
    size_t len;
    size_t cap;
} hs_buf;

static void buf_init(hs_buf *b, apr_pool_t *p, size_t cap)
{
    b->p = p;
    b->cap = cap < 64 ? 64 : cap;
    b->d = apr_palloc(p, b->cap);
    b->len = 0;
    b->d[0] = '\0';
}

static void buf_add(hs_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap * 2;
        char *d;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        d = apr_palloc(b->p, cap);
        memcpy(d, b->d, b->len);
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = '\0';
}

static void buf_str(hs_buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* --- UTF-8 ------------------------------------------------------------ */

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* Copies s, turning every control character (C0, DEL, C1) into a space and
 * every byte that is not well-formed UTF-8 into U+FFFD. */
static char *clean_text(apr_pool_t *p, const char *s, size_t n)
{
    hs_buf b;
    size_t i = 0;

    buf_init(&b, p, n + 1);
    while (i < n) {
        uint32_t cp;
        size_t l = hs_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (l == 0) {
            buf_add(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
        else if (is_control(cp)) {
            buf_add(&b, " ", 1);
            i += l;
        }
        else {
            buf_add(&b, s + i, l);
            i += l;
        }
    }
    return b.d;
}

/*
 * Text a visitor typed (the company name), made safe to show in a mail:
 * nothing a mail client turns into a link or an address. Following the
 * usual "defanging" convention, in visible ASCII brackets:
 *   "://"                           -> "[://]"  (any scheme)
 *   "@" (and fullwidth U+FF20)      -> "[@]"    (addresses, user@host URLs)
 *   a dot followed by a letter or digit ("www.", "evil.com"; also the
 *   ideographic and fullwidth dots U+3002, U+FF0E, U+FF61)  -> "[.]"
 * A dot at the end of a word ("Acme Inc.") stays as it is. s is cleaned
 * text (valid UTF-8, no control characters).
 */
const char *hs_mail_defuse(apr_pool_t *p, const char *s)
{
    hs_buf b;
    size_t n = strlen(s), i = 0;

    buf_init(&b, p, n + 16);
    while (i < n) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t dot = 0, at = 0;

        if (u[0] == '.') {
            dot = 1;
        }
        else if (n - i >= 3 &&
                 ((u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x82) ||
                  (u[0] == 0xEF && u[1] == 0xBC && u[2] == 0x8E) ||
                  (u[0] == 0xEF && u[1] == 0xBD && u[2] == 0xA1))) {
            dot = 3;
        }
        else if (u[0] == '@') {
            at = 1;
        }
        else if (n - i >= 3 && u[0] == 0xEF && u[1] == 0xBC && u[2] == 0xA0) {
            at = 3;
        }
        if (n - i >= 3 && !memcmp(u, "://", 3)) {
            buf_str(&b, "[://]");
            i += 3;
        }
        else if (at) {
            buf_str(&b, "[@]");
            i += at;
        }
        else if (dot && i + dot < n &&
                 (apr_isalnum(s[i + dot]) ||
                  (unsigned char)s[i + dot] >= 0x80)) {
            buf_str(&b, "[.]");
            i += dot;
        }
        else {
            buf_add(&b, s + i, 1);
            i++;
        }
    }
    return b.d;
}

static int has_control_byte(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (; *u; u++) {
        if (*u < 0x20 || *u == 0x7F) {
            return 1;
        }
    }
    return 0;
}

static int is_ascii_printable(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E) {
            return 0;
        }
    }
    return 1;
}

/* --- placeholders ------------------------------------------------------ */

enum { PH_CODE, PH_COMPANY, PH_SITE_URL, PH_EXPIRY, PH_EMAIL, PH_COUNT };

static const char *const ph_names[PH_COUNT] = {"code", "company", "site_url",
                                               "expiry_minutes", "email"};

/* s[0..1] is "{{". Sets *idx and *plen (the whole "{{name}}") or returns
 * why this is not a placeholder. */
static const char *scan_placeholder(apr_pool_t *p, const char *s, size_t n,
                                    int *idx, size_t *plen)
{
    size_t k;
    int i;

    for (k = 2; k + 1 < n && k < 2 + HS_MAIL_NAME_MAX; k++) {
        if (s[k] == '\r' || s[k] == '\n') {
            break;
        }
        if (s[k] == '}' && s[k + 1] == '}') {
            for (i = 0; i < PH_COUNT; i++) {
                if (strlen(ph_names[i]) == k - 2 &&
                    memcmp(ph_names[i], s + 2, k - 2) == 0) {
                    *idx = i;
                    *plen = k + 2;
                    return NULL;
                }
            }
            return apr_psprintf(
                p,
                "unknown placeholder {{%s}} (known: {{code}}, "
                "{{company}}, {{site_url}}, {{expiry_minutes}}, {{email}})",
                clean_text(p, s + 2, k - 2));
        }
    }
    return apr_psprintf(p, "unterminated placeholder \"%s\"",
                        clean_text(p, s, k));
}

/* Replaces the placeholders of tmpl with the (already cleaned) values. */
static const char *expand(apr_pool_t *p, const char *tmpl,
                          const char *const *values, const char **out)
{
    hs_buf b;
    size_t n = strlen(tmpl), i = 0;

    buf_init(&b, p, n + 256);
    while (i < n) {
        const char *brace = strstr(tmpl + i, "{{");
        const char *err;
        size_t plen;
        int idx;

        if (brace == NULL) {
            buf_add(&b, tmpl + i, n - i);
            break;
        }
        buf_add(&b, tmpl + i, (size_t)(brace - (tmpl + i)));
        i = (size_t)(brace - tmpl);
        err = scan_placeholder(p, tmpl + i, n - i, &idx, &plen);
        if (err) {
            return err;
        }
        if (values[idx] == NULL) {
            return apr_psprintf(p,
                                "the template uses {{%s}} but there is "
                                "no value for it",
                                ph_names[idx]);
        }
        buf_str(&b, values[idx]);
        i += plen;
    }
    *out = b.d;
    return NULL;
}

/* --- templates --------------------------------------------------------- */

static const hs_mail_template default_verify = {
    "Your verification code",
    "Hello,\r\n"
    "\r\n"
    "Your verification code for {{company}} is:\r\n"
    "\r\n"
    "{{code}}\r\n"
    "\r\n"
    "This code expires in {{expiry_minutes}} minutes.\r\n"
    "\r\n"
    "Once you have verified your email address, your site will be at:\r\n"
    "{{site_url}}\r\n"
    "\r\n"
    "If you did not sign up, you can ignore this email: nothing happens\r\n"
    "without the code.\r\n"};

static const hs_mail_template default_exists = {
    "Your account",
    "Hello,\r\n"
    "\r\n"
    "Someone, perhaps you, tried to sign up {{company}} with the email\r\n"
    "address {{email}}. An account already exists for this address, so no\r\n"
    "new account was created.\r\n"
    "\r\n"
    "To use your existing account, sign in with this email address and\r\n"
    "your password. If you have forgotten your password, use the password\r\n"
    "reset link on the sign-in page.\r\n"
    "\r\n"
    "If you did not try to sign up, you can ignore this email: nothing has\r\n"
    "been changed.\r\n"};

const hs_mail_template *hs_mail_default_template(hs_mail_kind kind)
{
    return kind == HS_MAIL_EXISTS ? &default_exists : &default_verify;
}

/* The length of the line s[0..n) without a final CR. */
static size_t strip_cr(const char *s, size_t n)
{
    return (n > 0 && s[n - 1] == '\r') ? n - 1 : n;
}

static int is_blank(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t') {
            return 0;
        }
    }
    return 1;
}

/* Checks the placeholders of one template line; *has_code is set when the
 * line uses {{code}}, *code_alone when the line is exactly {{code}}. */
static const char *check_line(apr_pool_t *p, const char *s, size_t n,
                              int lineno, int *has_code, int *code_alone,
                              int *companies)
{
    size_t i;

    for (i = 0; i + 1 < n; i++) {
        if (s[i] == '{' && s[i + 1] == '{') {
            size_t plen;
            int idx;
            const char *err = scan_placeholder(p, s + i, n - i, &idx, &plen);
            if (err) {
                return apr_psprintf(p, "line %d: %s", lineno, err);
            }
            if (idx == PH_COMPANY) {
                (*companies)++;
            }
            if (idx == PH_CODE) {
                *has_code = 1;
                if (is_blank(s, i) && is_blank(s + i + plen, n - i - plen)) {
                    *code_alone = 1;
                }
            }
            i += plen - 1;
        }
    }
    return NULL;
}

/* Why line lineno of a template cannot be used (not UTF-8, a control
 * character other than TAB), or NULL. */
static const char *line_chars_reason(apr_pool_t *p, const char *line, size_t n,
                                     int lineno)
{
    size_t j;

    if (hs_utf8_length(line, n) < 0) {
        return apr_psprintf(p, "line %d is not valid UTF-8", lineno);
    }
    for (j = 0; j < n; j++) {
        unsigned char c = (unsigned char)line[j];
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            return apr_psprintf(p, "line %d contains a control character",
                                lineno);
        }
    }
    return NULL;
}

/* The text after "Subject:" without surrounding blanks, in p; NULL when
 * nothing is left. */
static const char *subject_text(apr_pool_t *p, const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    return n > 0 ? apr_pstrmemdup(p, s, n) : NULL;
}

const char *hs_mail_template_parse(apr_pool_t *p, const char *text, size_t len,
                                   hs_mail_kind kind, hs_mail_template **t)
{
    hs_buf body;
    const char *subject = NULL;
    size_t i = 0, nonblank = 0;
    int lineno = 0, has_code = 0, code_alone = 0, companies = 0;
    hs_mail_template *tp;

    *t = NULL;
    if (text == NULL || len == 0) {
        return "the template is empty";
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        i = 3; /* a UTF-8 byte order mark */
    }
    if (memchr(text, '\0', len) != NULL) {
        return "the template contains a NUL byte";
    }
    buf_init(&body, p, len + 64);
    while (i < len) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        const char *err;

        i += n + (nl ? 1 : 0);
        lineno++;
        n = strip_cr(line, n);
        if ((err = line_chars_reason(p, line, n, lineno))) {
            return err;
        }
        if (lineno == 1 && (n < 8 || strncasecmp(line, "Subject:", 8) != 0)) {
            return "the first line must be \"Subject: ...\"";
        }
        err =
            check_line(p, line, n, lineno, &has_code, &code_alone, &companies);
        if (err) {
            return err;
        }
        if (lineno == 1 && companies) {
            /* visitor-typed text never goes into a Subject */
            return "the Subject cannot use {{company}} (text a visitor "
                   "typed); use it in the body, at most once";
        }
        if (lineno == 1) {
            if (!(subject = subject_text(p, line + 8, n - 8))) {
                return "the Subject line is empty";
            }
            continue;
        }
        if (lineno == 2) {
            if (!is_blank(line, n)) {
                return "the Subject line must be followed by an empty line";
            }
            continue;
        }
        if (!is_blank(line, n)) {
            nonblank++;
        }
        buf_add(&body, line, n);
        buf_add(&body, "\r\n", 2);
    }
    if (lineno < 2) {
        return "the Subject line must be followed by an empty line and the "
               "body";
    }
    if (nonblank == 0) {
        return "the template has no body";
    }
    if (companies > 1) {
        return "the body uses {{company}} more than once (text a visitor "
               "typed appears at most once)";
    }
    if (kind == HS_MAIL_VERIFY && !code_alone) {
        return "the verification template needs {{code}} on a line of its own";
    }
    if (kind == HS_MAIL_EXISTS && has_code) {
        return "the account-exists template cannot use {{code}}: that mail "
               "carries no code";
    }
    tp = apr_palloc(p, sizeof(*tp));
    tp->subject = subject;
    tp->body = body.d;
    *t = tp;
    return NULL;
}

/* --- addresses --------------------------------------------------------- */

typedef struct {
    const char *name; /* the display name, unquoted; NULL when none */
    const char *addr;
} hs_from;

static const char *parse_from(apr_pool_t *p, const char *from, hs_from *f)
{
    size_t n;
    const char *s = from;

    f->name = NULL;
    f->addr = NULL;
    if (from == NULL || *from == '\0') {
        return "the From value is empty";
    }
    if (has_control_byte(from)) {
        return "the From value contains a control character";
    }
    n = strlen(from);
    if (hs_utf8_length(from, n) < 0) {
        return "the From value is not valid UTF-8";
    }
    while (*s == ' ') {
        s++;
        n--;
    }
    while (n > 0 && s[n - 1] == ' ') {
        n--;
    }
    if (n > 0 && s[n - 1] == '>') {
        const char *lt = NULL, *q;
        size_t nl;
        for (q = s; q < s + n; q++) {
            if (*q == '<') {
                lt = q;
            }
        }
        if (lt == NULL) {
            return apr_psprintf(p, "\"%s\" has a '>' without '<'", from);
        }
        f->addr = apr_pstrmemdup(p, lt + 1, (size_t)(s + n - 1 - (lt + 1)));
        nl = (size_t)(lt - s);
        while (nl > 0 && s[nl - 1] == ' ') {
            nl--;
        }
        if (nl >= 2 && s[0] == '"' && s[nl - 1] == '"') {
            hs_buf b;
            size_t i;
            buf_init(&b, p, nl);
            for (i = 1; i + 1 < nl; i++) {
                if (s[i] == '\\' && i + 2 < nl) {
                    i++;
                }
                else if (s[i] == '"' || s[i] == '\\') {
                    return apr_psprintf(
                        p, "the display name of \"%s\" is badly quoted", from);
                }
                buf_add(&b, s + i, 1);
            }
            f->name = b.d;
        }
        else if (nl > 0) {
            f->name = apr_pstrmemdup(p, s, nl);
            if (strpbrk(f->name, "\"<>") != NULL) {
                return apr_psprintf(
                    p, "the display name of \"%s\" needs quotes", from);
            }
        }
        if (f->name != NULL && strspn(f->name, " ") == strlen(f->name)) {
            f->name = NULL;
        }
    }
    else {
        f->addr = apr_pstrmemdup(p, s, n);
    }
    if (!hs_addrspec_strict(f->addr, strlen(f->addr))) {
        return apr_psprintf(p,
                            "\"%s\" is not an address of the form "
                            "local@domain (or \"Name <local@domain>\")",
                            f->addr);
    }
    return NULL;
}

const char *hs_mail_check_from(apr_pool_t *p, const char *from)
{
    hs_from f;
    return parse_from(p, from, &f);
}

/* The recipient: one addr-spec, UTF-8 allowed (RFC 6532), nothing that
 * could start another header, another address or a comment. */
static const char *check_to(apr_pool_t *p, const char *to)
{
    switch (hs_addrspec_check(to, to != NULL ? strlen(to) : 0)) {
        case HS_ADDRSPEC_OK:
            return NULL;
        case HS_ADDRSPEC_EMPTY:
            return "the To address is empty";
        case HS_ADDRSPEC_CONTROL:
            return "the To address contains a control character";
        case HS_ADDRSPEC_LONG:
        case HS_ADDRSPEC_NOT_UTF8:
            return "the To address is too long or not valid UTF-8";
        default:
            return apr_psprintf(
                p, "\"%s\" is not a single address local@domain", to);
    }
}

/* --- header encoding ---------------------------------------------------- */

static void put_base64(hs_buf *b, const unsigned char *s, size_t n)
{
    apr_size_t len = 0;
    const char *enc = n > 0 ? apr_pencode_base64_binary(b->p, s, (apr_ssize_t)n,
                                                        APR_ENCODE_NONE, &len)
                            : NULL;

    if (enc != NULL) {
        buf_add(b, enc, len);
    }
}

/* Appends s (clean UTF-8) as encoded words, each preceded by a space or a
 * fold, split on character boundaries; *col is the current column. */
static void put_encoded_words(hs_buf *b, size_t *col, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t room, max, take = 0;

        /* a word must hold at least one 4-byte character (8 base64) */
        if (*col + 1 + HS_MAIL_EWORD_OVERHEAD + 8 > HS_MAIL_LINE_MAX) {
            buf_add(b, "\r\n", 2);
            *col = 0;
        }
        buf_add(b, " ", 1);
        *col += 1;
        room = HS_MAIL_LINE_MAX - *col;
        if (room > HS_MAIL_EWORD_MAX) {
            room = HS_MAIL_EWORD_MAX;
        }
        max = (room - HS_MAIL_EWORD_OVERHEAD) / 4 * 3;
        while (i + take < n) {
            uint32_t cp;
            size_t l = hs_utf8_decode((const unsigned char *)s + i + take,
                                      n - i - take, &cp);
            if (l == 0) {
                l = 1; /* cannot happen: s is clean */
            }
            if (take + l > max) {
                break;
            }
            take += l;
        }
        buf_str(b, "=?UTF-8?B?");
        put_base64(b, (const unsigned char *)s + i, take);
        buf_str(b, "?=");
        *col += HS_MAIL_EWORD_OVERHEAD + (take + 2) / 3 * 4;
        i += take;
    }
}

/* Appends space-separated ASCII words, each preceded by a space or a fold. */
static void put_plain_words(hs_buf *b, size_t *col, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        const char *sp = memchr(s + i, ' ', n - i);
        size_t w = sp ? (size_t)(sp - (s + i)) : n - i;
        if (*col + 1 + w > HS_MAIL_LINE_MAX) {
            buf_add(b, "\r\n", 2);
            *col = 0;
        }
        buf_add(b, " ", 1);
        buf_add(b, s + i, w);
        *col += 1 + w;
        i += w + 1;
    }
}

/* Collapses runs of spaces into one and trims both ends, in place. */
static size_t squeeze_spaces(char *s)
{
    char *r = s, *w = s;

    while (*r == ' ') {
        r++;
    }
    while (*r) {
        if (*r == ' ' && (r[1] == ' ' || r[1] == '\0')) {
            r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* Whether s (squeezed) can go out as plain words: printable ASCII, nothing
 * that reads as an encoded word, every word short enough for one line. */
static int plain_ok(const char *s, size_t n, size_t first_col)
{
    size_t i = 0, w = 0;

    if (!is_ascii_printable(s, n) || strstr(s, "=?") != NULL) {
        return 0;
    }
    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == ' ') {
            if (first_col + 1 + w > HS_MAIL_LINE_MAX) {
                return 0;
            }
            w = 0;
        }
        else {
            w++;
        }
    }
    return 1;
}

static void put_subject(hs_buf *b, char *subject)
{
    size_t n = squeeze_spaces(subject);
    size_t col = sizeof("Subject:") - 1;

    buf_str(b, "Subject:");
    if (n == 0) {
        buf_str(b, " ");
    }
    else if (plain_ok(subject, n, col)) {
        put_plain_words(b, &col, subject, n);
    }
    else {
        put_encoded_words(b, &col, subject, n);
    }
    buf_str(b, "\r\n");
}

static void put_from(apr_pool_t *p, hs_buf *b, const hs_from *f)
{
    size_t col = sizeof("From:") - 1, alen = strlen(f->addr);

    buf_str(b, "From:");
    if (f->name == NULL) {
        buf_str(b, " ");
        buf_str(b, f->addr);
        buf_str(b, "\r\n");
        return;
    }
    {
        char *name = clean_text(p, f->name, strlen(f->name));
        size_t n = squeeze_spaces(name), i;
        int atoms = 1;

        if (n == 0) {
            /* only C1 controls and spaces: no display name at all, rather
             * than a "From:" line folded before the bare <addr> */
            buf_str(b, " ");
            buf_str(b, f->addr);
            buf_str(b, "\r\n");
            return;
        }
        for (i = 0; i < n; i++) {
            if (name[i] != ' ' && !hs_addrspec_atext((unsigned char)name[i])) {
                atoms = 0;
            }
        }
        if (atoms && plain_ok(name, n, col)) {
            put_plain_words(b, &col, name, n);
        }
        else if (is_ascii_printable(name, n) && strstr(name, "=?") == NULL &&
                 col + 3 + 2 * n + 3 + alen <= HS_MAIL_LINE_MAX) {
            /* a quoted-string that surely fits on the line */
            buf_str(b, " \"");
            for (i = 0; i < n; i++) {
                if (name[i] == '"' || name[i] == '\\') {
                    buf_add(b, "\\", 1);
                    col++;
                }
                buf_add(b, name + i, 1);
            }
            buf_str(b, "\"");
            col += 3 + n;
        }
        else {
            put_encoded_words(b, &col, name, n);
        }
    }
    if (col + 3 + alen > HS_MAIL_LINE_MAX) {
        buf_str(b, "\r\n");
    }
    buf_str(b, " <");
    buf_str(b, f->addr);
    buf_str(b, ">\r\n");
}

/* --- body ----------------------------------------------------------------- */

/* One body line in quoted-printable, soft breaks keeping every output line
 * at most 76 characters, then the CRLF hard break. */
static void put_qp_line(hs_buf *b, const unsigned char *s, size_t n)
{
    size_t i, col = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        int last = (i + 1 == n);
        char tok[3];
        size_t tl;

        if ((c >= 33 && c <= 126 && c != '=') ||
            ((c == ' ' || c == '\t') && !last)) {
            tok[0] = (char)c;
            tl = 1;
        }
        else {
            tok[0] = '=';
            tok[1] = hs_hex_digit(c >> 4, 1);
            tok[2] = hs_hex_digit(c, 1);
            tl = 3;
        }
        /* room for the soft break's '=' unless this ends the line */
        if (col + tl > (last ? HS_MAIL_QP_MAX : HS_MAIL_QP_MAX - 1)) {
            buf_add(b, "=\r\n", 3);
            col = 0;
        }
        buf_add(b, tok, tl);
        col += tl;
    }
    buf_add(b, "\r\n", 2);
}

static void put_qp_body(hs_buf *b, const char *body)
{
    size_t n = strlen(body), i = 0;

    while (i < n) {
        const char *nl = memchr(body + i, '\n', n - i);
        size_t l = nl ? (size_t)(nl - (body + i)) : n - i;
        size_t next = i + l + (nl ? 1 : 0);
        if (nl) {
            l = strip_cr(body + i, l);
        }
        put_qp_line(b, (const unsigned char *)body + i, l);
        i = next;
    }
}

/* --- the message ---------------------------------------------------------- */

static const char *rfc5322_date(apr_pool_t *p, long long now, const char **out)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)now;
    struct tm tm;

    if ((long long)t != now || now < 0 || gmtime_r(&t, &tm) == NULL ||
        tm.tm_year + 1900 > 9999) {
        return "the time is out of range for a Date header";
    }
    *out = apr_psprintf(p, "%s, %d %s %04d %02d:%02d:%02d +0000",
                        wd[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon],
                        tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return NULL;
}

/* A dot-atom (the random part of a Message-ID). */
static int is_id_text(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    if (*u == '\0' || strlen(s) > 253) {
        return 0;
    }
    for (; *u; u++) {
        if (*u != '.' && !hs_addrspec_atext(*u)) {
            return 0;
        }
    }
    return s[0] != '.' && s[strlen(s) - 1] != '.' && strstr(s, "..") == NULL;
}

/* The right-hand side of the Message-ID: host as a dot-atom, any other
 * character (an IPv6 address's ':', say) as '-'; "localhost" if empty. */
static const char *id_host(apr_pool_t *p, const char *host)
{
    size_t n = strlen(host), i;
    char *h;

    if (n > 253) {
        n = 253;
    }
    h = apr_pstrmemdup(p, host, n);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
              (c == '.' && i > 0 && i + 1 < n && h[i + 1] != '.'))) {
            h[i] = '-';
        }
    }
    return n ? h : "localhost";
}

const char *hs_mail_render_with_id(apr_pool_t *p, const hs_mail_template *t,
                                   const hs_mail_vars *v, const char *id_random,
                                   const char **msg, size_t *len)
{
    const char *values[PH_COUNT];
    const char *date, *subject, *body, *host, *err;
    hs_from from;
    hs_buf b;

    *msg = NULL;
    *len = 0;
    if (t == NULL || t->subject == NULL || t->body == NULL || v == NULL) {
        return "no template or values to render";
    }
    if ((err = parse_from(p, v->from, &from)) != NULL) {
        return err;
    }
    if ((err = check_to(p, v->to)) != NULL) {
        return err;
    }
    if (v->code != NULL) {
        size_t n = strlen(v->code);
        if (n == 0 || n > 32 ||
            strspn(v->code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "abcdefghijklmnopqrstuvwxyz") != n) {
            return "the code must be 1 to 32 letters or digits";
        }
    }
    if ((err = rfc5322_date(p, v->now, &date)) != NULL) {
        return err;
    }
    host = v->hostname;
    if (host == NULL) {
        char *h = apr_palloc(p, 256);
        host = apr_gethostname(h, 256, p) == APR_SUCCESS ? h : "localhost";
    }
    if (has_control_byte(host)) {
        return "the host name contains a control character";
    }
    host = id_host(p, host);
    if (id_random == NULL) {
        unsigned char r[8];
        if (apr_generate_random_bytes(r, sizeof(r)) != APR_SUCCESS) {
            return "cannot get random bytes for the Message-ID";
        }
        id_random = apr_psprintf(p, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0],
                                 r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    }
    else if (!is_id_text(id_random) || strlen(id_random) > 64) {
        return "the Message-ID part is not a dot-atom";
    }

    values[PH_CODE] = v->code;
    values[PH_COMPANY] =
        v->company
            ? hs_mail_defuse(p, clean_text(p, v->company, strlen(v->company)))
            : "";
    values[PH_SITE_URL] =
        v->site_url ? clean_text(p, v->site_url, strlen(v->site_url)) : "";
    values[PH_EXPIRY] = apr_itoa(p, v->expiry_minutes);
    values[PH_EMAIL] = clean_text(p, v->to, strlen(v->to));

    if ((err = expand(p, t->subject, values, &subject)) != NULL ||
        (err = expand(p, t->body, values, &body)) != NULL) {
        return err;
    }

    buf_init(&b, p, strlen(body) * 3 / 2 + 1024);
    buf_str(&b, "Date: ");
    buf_str(&b, date);
    buf_str(&b, "\r\n");
    put_from(p, &b, &from);
    buf_str(&b, "To: ");
    buf_str(&b, v->to);
    buf_str(&b, "\r\n");
    /* control characters (from the company name, or a hand-made template)
     * become spaces before the subject is encoded */
    put_subject(&b, clean_text(p, subject, strlen(subject)));
    buf_str(&b, apr_psprintf(p, "Message-ID: <%" APR_INT64_T_FMT ".%s@%s>\r\n",
                             (apr_int64_t)v->now, id_random, host));
    buf_str(&b, "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=UTF-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n"
                "Auto-Submitted: auto-generated\r\n"
                "\r\n");
    put_qp_body(&b, body);
    *msg = b.d;
    *len = b.len;
    return NULL;
}

const char *hs_mail_render(apr_pool_t *p, const hs_mail_template *t,
                           const hs_mail_vars *v, const char **msg, size_t *len)
{
    return hs_mail_render_with_id(p, t, v, NULL, msg, len);
}
