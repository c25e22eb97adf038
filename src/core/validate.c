/*
 * validate.c - request validation with pydantic v2 semantics, and email
 * address syntax as python email-validator 2.1 checks it with its default
 * options (check_deliverability=False, no quoted local parts, no domain
 * literals, SMTPUTF8 allowed, globally deliverable names only).
 *
 * Unicode data (general categories, character names, NFC, case folding)
 * comes from libunistring, IDNA 2008 / UTS #46 from libidn2.
 *
 * httpd-free: APR, json-c, libidn2 and libunistring only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include <idn2.h>
#include <unicase.h>
#include <unictype.h>
#include <uniname.h>
#include <uninorm.h>

#include "hs_utf8.h"
#include "hs_validate.h"

#define EMAIL_MAX_LENGTH 254
#define LOCAL_PART_MAX_LENGTH 64
#define DNS_LABEL_LENGTH_LIMIT 63
#define DOMAIN_MAX_LENGTH 255
/* pydantic's own cap, checked before email-validator runs */
#define PYDANTIC_MAX_EMAIL_LENGTH 2048

#define EMAIL_ERR_PREFIX "value is not a valid email address: "

/* A string as Unicode code points, in a pool. */
typedef struct {
    ucs4_t *c;
    size_t n;
} ustr;

/* ------------------------------------------------------------------ */
/* UTF-8 */

long hs_utf8_length(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    long count = 0;

    while (i < len) {
        ucs4_t cp;
        size_t n = hs_utf8_decode(u + i, len - i, &cp);

        if (n == 0) {
            return -1;
        }
        i += n;
        count++;
    }
    return count;
}

static int ustr_from_utf8(apr_pool_t *p, const char *s, size_t len, ustr *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    out->c = apr_palloc(p, (len + 1) * sizeof(ucs4_t));
    out->n = 0;
    while (i < len) {
        size_t n = hs_utf8_decode(u + i, len - i, &out->c[out->n]);

        if (n == 0) {
            return -1;
        }
        i += n;
        out->n++;
    }
    return 0;
}

static size_t utf8_encode(ucs4_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* NUL-terminated UTF-8 copy of c[0..n) in p (*len gets its byte length). */
static char *utf8_from_cps(apr_pool_t *p, const ucs4_t *c, size_t n,
                           size_t *len)
{
    char *out = apr_palloc(p, n * 4 + 1);
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        o += utf8_encode(c[i], out + o);
    }
    out[o] = '\0';
    if (len) {
        *len = o;
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Character classes (email-validator's rfc_constants) */

static int is_ascii_alnum(ucs4_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* RFC 5322 atext */
static int is_atext(ucs4_t c)
{
    return is_ascii_alnum(c) ||
           (c < 0x80 && c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", (int)c));
}

/* RFC 6531 atext: plus U+0080..U+10FFFF */
static int is_atext_intl(ucs4_t c)
{
    return is_atext(c) || c >= 0x80;
}

static int is_atext_intl_dot(ucs4_t c)
{
    return is_atext_intl(c) || c == '.';
}

/* ATEXT_HOSTNAME_INTL */
static int is_hostname_intl(ucs4_t c)
{
    return is_ascii_alnum(c) || c == '-' || c == '.' || c >= 0x80;
}

/* QTEXT_INTL */
static int is_qtext_intl(ucs4_t c)
{
    return (c >= 0x20 && c <= 0x7E) || c >= 0x80;
}

/* DOMAIN_LITERAL_CHARS: U+0021..U+00FA */
static int is_domain_literal_char(ucs4_t c)
{
    return c >= 0x21 && c <= 0xFA;
}

/* str.isspace() / the \s of Python's re on str */
static int py_isspace(ucs4_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static const char *category_of(ucs4_t c)
{
    return uc_general_category_name(uc_general_category(c));
}

/* dot-atom: atoms of pred characters joined by single periods */
static int is_dot_atom(const ucs4_t *c, size_t n, int (*pred)(ucs4_t))
{
    size_t i;
    int atom_len = 0;

    if (n == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (c[i] == '.') {
            if (atom_len == 0) {
                return 0;
            }
            atom_len = 0;
        }
        else if (pred(c[i])) {
            atom_len++;
        }
        else {
            return 0;
        }
    }
    return atom_len > 0;
}

/* DOT_ATOM_TEXT_HOSTNAME: LDH labels that neither start nor end with '-' */
static int is_ascii_hostname(const ucs4_t *c, size_t n)
{
    size_t i, start = 0;

    if (n == 0) {
        return 0;
    }
    for (i = 0; i <= n; i++) {
        if (i == n || c[i] == '.') {
            if (i == start || c[start] == '-' || c[i - 1] == '-') {
                return 0;
            }
            start = i + 1;
        }
        else if (!is_ascii_alnum(c[i]) && c[i] != '-') {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Messages listing characters (email-validator's safe_character_display) */

static const char *char_display(apr_pool_t *p, ucs4_t c)
{
    const char *cat = category_of(c);
    char buf[UNINAME_MAX];

    if (c == '\\') {
        return "\"\\\"";
    }
    if (cat[0] == 'L' || cat[0] == 'N' || cat[0] == 'P' || cat[0] == 'S') {
        /* Python's repr() of a printable character */
        char u[5];
        size_t n = utf8_encode(c, u);

        u[n] = '\0';
        return c == '\'' ? "\"'\"" : apr_pstrcat(p, "'", u, "'", NULL);
    }
    if (unicode_character_name(c, buf) != NULL) {
        return apr_pstrdup(p, buf);
    }
    return c < 0xFFFF ? apr_psprintf(p, "U+%04X", (unsigned)c)
                      : apr_psprintf(p, "U+%08X", (unsigned)c);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_ucs4(const void *a, const void *b)
{
    ucs4_t x = *(const ucs4_t *)a, y = *(const ucs4_t *)b;

    return x < y ? -1 : x > y ? 1 : 0;
}

/* ", ".join(sorted(set(displays))) + "." */
static const char *join_sorted_displays(apr_pool_t *p,
                                        apr_array_header_t *displays)
{
    const char **d = (const char **)displays->elts;
    apr_array_header_t *out =
        apr_array_make(p, displays->nelts * 2 + 1, sizeof(const char *));
    int i;

    qsort(d, (size_t)displays->nelts, sizeof(*d), cmp_cstr);
    for (i = 0; i < displays->nelts; i++) {
        if (i > 0 && strcmp(d[i], d[i - 1]) == 0) {
            continue;
        }
        if (out->nelts > 0) {
            APR_ARRAY_PUSH(out, const char *) = ", ";
        }
        APR_ARRAY_PUSH(out, const char *) = d[i];
    }
    APR_ARRAY_PUSH(out, const char *) = ".";
    return apr_array_pstrcat(p, out, '\0');
}

/* prefix + the sorted displays of the characters failing ok(), or NULL
 * when every character passes. */
static const char *bad_chars_reason(apr_pool_t *p, const ustr *s,
                                    int (*ok)(ucs4_t), const char *prefix)
{
    apr_array_header_t *d = NULL;
    size_t i;

    for (i = 0; i < s->n; i++) {
        if (!ok(s->c[i])) {
            if (d == NULL) {
                d = apr_array_make(p, 4, sizeof(const char *));
            }
            APR_ARRAY_PUSH(d, const char *) = char_display(p, s->c[i]);
        }
    }
    return d ? apr_pstrcat(p, prefix, join_sorted_displays(p, d), NULL) : NULL;
}

/* check_unsafe_chars: letters, numbers, punctuation and symbols are fine;
 * a mark only in first position is not; spaces (unless allowed), line and
 * paragraph separators, controls, format, private use and unassigned code
 * points are not. */
static const char *unsafe_chars_reason(apr_pool_t *p, const ustr *s,
                                       int allow_space)
{
    ucs4_t *bad = NULL;
    size_t i, nbad = 0;
    apr_array_header_t *out;

    for (i = 0; i < s->n; i++) {
        const char *cat = category_of(s->c[i]);
        int unsafe;

        switch (cat[0]) {
            case 'L':
            case 'N':
            case 'P':
            case 'S':
                unsafe = 0;
                break;
            case 'M':
                unsafe = (i == 0);
                break;
            case 'Z':
                unsafe = !(cat[1] == 's' && allow_space);
                break;
            default:
                unsafe = 1;
                break;
        }
        if (unsafe) {
            if (bad == NULL) {
                bad = apr_palloc(p, s->n * sizeof(ucs4_t));
            }
            bad[nbad++] = s->c[i];
        }
    }
    if (nbad == 0) {
        return NULL;
    }
    /* here Python sorts the characters, not their displays */
    qsort(bad, nbad, sizeof(*bad), cmp_ucs4);
    out = apr_array_make(p, (int)nbad * 2 + 2, sizeof(const char *));
    APR_ARRAY_PUSH(out, const char *) =
        "The email address contains unsafe characters: ";
    for (i = 0; i < nbad; i++) {
        if (i > 0 && bad[i] == bad[i - 1]) {
            continue;
        }
        if (i > 0) {
            APR_ARRAY_PUSH(out, const char *) = ", ";
        }
        APR_ARRAY_PUSH(out, const char *) = char_display(p, bad[i]);
    }
    APR_ARRAY_PUSH(out, const char *) = ".";
    return apr_array_pstrcat(p, out, '\0');
}

/* "(N character[s] too many)", with "at least " when asked */
static const char *length_reason(apr_pool_t *p, size_t len, size_t limit,
                                 int at_least)
{
    size_t diff = len - limit;

    return apr_psprintf(p, "(%s%" APR_SIZE_T_FMT " character%s too many)",
                        at_least ? "at least " : "", diff, diff > 1 ? "s" : "");
}

/* check_dot_atom */
static const char *dot_atom_reason(const ustr *s, int is_hostname)
{
    size_t i;

    if (s->c[s->n - 1] == '.') {
        return is_hostname ? "An email address cannot end with a period."
                           : "An email address cannot have a period "
                             "immediately before the @-sign.";
    }
    if (s->c[0] == '.') {
        return is_hostname ? "An email address cannot have a period "
                             "immediately after the @-sign."
                           : "An email address cannot start with a period.";
    }
    for (i = 1; i < s->n; i++) {
        if (s->c[i] == '.' && s->c[i - 1] == '.') {
            return "An email address cannot have two periods in a row.";
        }
    }
    if (!is_hostname) {
        return NULL;
    }
    if (s->c[s->n - 1] == '-') {
        return "An email address cannot end with a hyphen.";
    }
    if (s->c[0] == '-') {
        return "An email address cannot have a hyphen immediately after the "
               "@-sign.";
    }
    for (i = 1; i < s->n; i++) {
        if ((s->c[i] == '-' && s->c[i - 1] == '.') ||
            (s->c[i] == '.' && s->c[i - 1] == '-')) {
            return "An email address cannot have a period and a hyphen next "
                   "to each other.";
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Local part */

static const char *const case_insensitive_mailboxes[] = {
    "info", "marketing", "sales",      "support",    "abuse",
    "noc",  "security",  "postmaster", "hostmaster", "usenet",
    "news", "webmaster", "www",        "uucp",       "ftp",
};

static ucs4_t ascii_lower(ucs4_t c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static void lower_role_mailbox(ustr *local)
{
    size_t i, k;

    for (k = 0; k < sizeof(case_insensitive_mailboxes) /
                        sizeof(case_insensitive_mailboxes[0]);
         k++) {
        const char *name = case_insensitive_mailboxes[k];

        if (strlen(name) != local->n) {
            continue;
        }
        for (i = 0; i < local->n; i++) {
            if (ascii_lower(local->c[i]) != (ucs4_t)name[i]) {
                break;
            }
        }
        if (i == local->n) {
            for (i = 0; i < local->n; i++) {
                local->c[i] = ascii_lower(local->c[i]);
            }
            return;
        }
    }
}

/* Replaces s by its NFC form. */
static void nfc_in_place(apr_pool_t *p, ustr *s)
{
    size_t n = 0;
    ucs4_t *r = u32_normalize(UNINORM_NFC, s->c, s->n, NULL, &n);

    if (r != NULL) {
        s->c = apr_pmemdup(p, r, (n ? n : 1) * sizeof(ucs4_t));
        s->n = n;
        free(r);
    }
}

/* validate_email_local_part; *smtputf8 is set when the part is not ASCII.
 * The local part may be NFC-normalised in place. */
static const char *check_local_part(apr_pool_t *p, ustr *local, int quoted,
                                    int *smtputf8)
{
    const char *why;
    int valid_intl = 0;

    *smtputf8 = 0;
    if (local->n == 0) {
        return "There must be something before the @-sign.";
    }
    if (local->n > LOCAL_PART_MAX_LENGTH) {
        return apr_pstrcat(
            p, "The email address is too long before the @-sign ",
            length_reason(p, local->n, LOCAL_PART_MAX_LENGTH, 0), ".", NULL);
    }
    if (is_dot_atom(local->c, local->n, is_atext)) {
        return NULL;
    }
    if (is_dot_atom(local->c, local->n, is_atext_intl)) {
        valid_intl = 1;
        *smtputf8 = 1;
    }
    else if (quoted) {
        size_t i;

        why = bad_chars_reason(p, local, is_qtext_intl,
                               "The email address contains invalid "
                               "characters in quotes before the @-sign: ");
        if (why) {
            return why;
        }
        for (i = 0; i < local->n; i++) {
            if (local->c[i] < 32 || local->c[i] > 126) {
                *smtputf8 = 1;
            }
        }
        valid_intl = 1;
    }
    if (valid_intl) {
        ustr orig = *local;

        nfc_in_place(p, local);
        why = unsafe_chars_reason(p, local, quoted);
        if (why) {
            return why;
        }
        /* email-validator 2.2: the NFC form is what is stored and mailed,
         * so it must be valid too (U+037E becomes ';', U+212A 'K'); an
         * all-ASCII form no longer needs SMTPUTF8. */
        if (local->n != orig.n ||
            memcmp(local->c, orig.c, orig.n * sizeof(ucs4_t)) != 0) {
            why = check_local_part(p, local, quoted, smtputf8);
            if (why) {
                return apr_pstrcat(p, "After Unicode normalization: ", why,
                                   NULL);
            }
        }
        return NULL;
    }
    why = bad_chars_reason(p, local, is_atext_intl_dot,
                           "The email address contains invalid characters "
                           "before the @-sign: ");
    if (why) {
        return why;
    }
    why = dot_atom_reason(local, 0);
    if (why) {
        return why;
    }
    return "The email address contains invalid characters before the "
           "@-sign.";
}

/* ------------------------------------------------------------------ */
/* Domain part */

static int has_non_ascii(const ustr *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        if (s->c[i] >= 0x80) {
            return 1;
        }
    }
    return 0;
}

/* An approximation of idna.uts46_remap(std3_rules=False,
 * transitional=False): ASCII is lower-cased; otherwise NFKC case folding,
 * keeping the deviation characters sharp s and final sigma as they are
 * (non-transitional), and the ideographic full stops mapped to '.'.
 * libidn2 applies the exact UTS #46 mapping again when it encodes. */
static void uts46_remap(apr_pool_t *p, ustr *d)
{
    /* private-use stand-ins: private use characters were refused as
     * unsafe before this runs, so they cannot clash */
    static const ucs4_t keep[][2] = {{0x00DF, 0xF8F0}, {0x03C2, 0xF8F1}};
    size_t i;

    if (has_non_ascii(d)) {
        size_t n = 0, k;
        ucs4_t *r;

        for (i = 0; i < d->n; i++) {
            for (k = 0; k < 2; k++) {
                if (d->c[i] == keep[k][0]) {
                    d->c[i] = keep[k][1];
                }
            }
        }
        r = u32_casefold(d->c, d->n, NULL, UNINORM_NFKC, NULL, &n);
        if (r != NULL) {
            d->c = apr_pmemdup(p, r, (n ? n : 1) * sizeof(ucs4_t));
            d->n = n;
            free(r);
        }
        for (i = 0; i < d->n; i++) {
            for (k = 0; k < 2; k++) {
                if (d->c[i] == keep[k][1]) {
                    d->c[i] = keep[k][0];
                }
            }
        }
    }
    for (i = 0; i < d->n; i++) {
        if (d->c[i] == 0x3002 || d->c[i] == 0xFF0E || d->c[i] == 0xFF61) {
            d->c[i] = '.';
        }
        else {
            d->c[i] = ascii_lower(d->c[i]);
        }
    }
}

/* Python's repr() of a str without quotes or backslashes in it */
static const char *py_repr(apr_pool_t *p, const ucs4_t *c, size_t n)
{
    apr_array_header_t *out = apr_array_make(p, (int)n + 2, sizeof(char *));
    size_t i;

    APR_ARRAY_PUSH(out, const char *) = "'";
    for (i = 0; i < n; i++) {
        const char *cat = category_of(c[i]);
        int printable = c[i] == ' ' || !(cat[0] == 'C' || cat[0] == 'Z');

        if (printable) {
            APR_ARRAY_PUSH(out, const char *) =
                utf8_from_cps(p, c + i, 1, NULL);
        }
        else if (c[i] < 0x100) {
            APR_ARRAY_PUSH(out, const char *) =
                apr_psprintf(p, "\\x%02x", (unsigned)c[i]);
        }
        else if (c[i] < 0x10000) {
            APR_ARRAY_PUSH(out, const char *) =
                apr_psprintf(p, "\\u%04x", (unsigned)c[i]);
        }
        else {
            APR_ARRAY_PUSH(out, const char *) =
                apr_psprintf(p, "\\U%08x", (unsigned)c[i]);
        }
    }
    APR_ARRAY_PUSH(out, const char *) = "'";
    return apr_array_pstrcat(p, out, '\0');
}

/* The first code point of the labels of name that IDNA 2008 does not
 * permit, in the python idna package's words, or NULL. */
static const char *idna_codepoint_detail(apr_pool_t *p, const char *name)
{
    ustr u;
    size_t i, start = 0;

    if (ustr_from_utf8(p, name, strlen(name), &u) != 0) {
        return NULL;
    }
    for (i = 0; i < u.n; i++) {
        uint8_t *out = NULL;
        int rc;

        if (u.c[i] == '.') {
            start = i + 1;
            continue;
        }
        rc = idn2_lookup_u8((const uint8_t *)utf8_from_cps(p, u.c + i, 1, NULL),
                            &out, IDN2_NO_TR46);
        idn2_free(out);
        if (rc == IDN2_DISALLOWED || rc == IDN2_UNASSIGNED) {
            size_t end = i;

            while (end < u.n && u.c[end] != '.') {
                end++;
            }
            return apr_psprintf(p,
                                "Codepoint U+%04X at position %" APR_SIZE_T_FMT
                                " of %s not allowed",
                                (unsigned)u.c[i], i - start + 1,
                                py_repr(p, u.c + start, end - start));
        }
    }
    return NULL;
}

/* prefix + "(" + the reason libidn2 refused name + ")." */
static const char *idn2_reason(apr_pool_t *p, const char *prefix, int rc,
                               const char *name)
{
    const char *detail = NULL;

    if (rc == IDN2_TOO_BIG_LABEL || rc == IDN2_PUNYCODE_BIG_OUTPUT) {
        detail = "Label too long";
    }
    else if (rc == IDN2_LEADING_COMBINING) {
        detail = "Label begins with an illegal combining character";
    }
    else if (rc == IDN2_NOT_NFC) {
        detail = "Label must be in Normalization Form C";
    }
    else if (rc == IDN2_DISALLOWED || rc == IDN2_UNASSIGNED) {
        detail = idna_codepoint_detail(p, name);
    }
    return apr_pstrcat(p, prefix, "(", detail ? detail : idn2_strerror(rc),
                       ").", NULL);
}

/* validate_email_domain_name: sets *ascii and *i18n (UTF-8, in p). */
static const char *check_domain_name(apr_pool_t *p, ustr *domain,
                                     const char **ascii, const char **i18n)
{
    const char *why;
    ustr a;
    size_t i, start, alen;
    char *abuf;
    int has_xn = 0;

    why = bad_chars_reason(p, domain, is_hostname_intl,
                           "The part after the @-sign contains invalid "
                           "characters: ");
    if (why) {
        return why;
    }
    why = unsafe_chars_reason(p, domain, 0);
    if (why) {
        return why;
    }
    uts46_remap(p, domain);
    if (domain->n == 0) {
        return "There must be something after the @-sign.";
    }
    why = bad_chars_reason(p, domain, is_hostname_intl,
                           "The part after the @-sign contains invalid "
                           "characters after Unicode normalization: ");
    if (why) {
        return why;
    }
    why = dot_atom_reason(domain, 1);
    if (why) {
        return why;
    }
    /* RFC 5890 R-LDH labels: "??--" other than "xn--" */
    for (start = 0, i = 0; i <= domain->n; i++) {
        if (i == domain->n || domain->c[i] == '.') {
            const ucs4_t *l = domain->c + start;

            if (i - start >= 4 && l[2] == '-' && l[3] == '-' &&
                !(ascii_lower(l[0]) == 'x' && ascii_lower(l[1]) == 'n')) {
                return "An email address cannot have two letters followed "
                       "by two dashes immediately after the @-sign or after "
                       "a period, except Punycode.";
            }
            start = i + 1;
        }
    }

    if (is_ascii_hostname(domain->c, domain->n)) {
        abuf = utf8_from_cps(p, domain->c, domain->n, &alen);
    }
    else {
        uint8_t *out = NULL;
        const char *u = utf8_from_cps(p, domain->c, domain->n, NULL);
        int rc;

        /* idna's check_label: an internationalised label with "--" in
         * 3rd and 4th position (the ASCII ones were refused above) */
        for (start = 0, i = 0; i <= domain->n; i++) {
            if (i == domain->n || domain->c[i] == '.') {
                ustr l;

                l.c = domain->c + start;
                l.n = i - start;
                if (l.n >= 4 && l.c[2] == '-' && l.c[3] == '-' &&
                    has_non_ascii(&l)) {
                    return "The part after the @-sign contains invalid "
                           "characters (Label has disallowed hyphens in 3rd "
                           "and 4th position).";
                }
                start = i + 1;
            }
        }
        rc = idn2_lookup_u8((const uint8_t *)u, &out, IDN2_NONTRANSITIONAL);

        if (rc != IDN2_OK) {
            idn2_free(out);
            if (rc == IDN2_TOO_BIG_DOMAIN) {
                return "The email address is too long after the @-sign.";
            }
            return idn2_reason(
                p, "The part after the @-sign contains invalid characters ", rc,
                u);
        }
        abuf = apr_pstrdup(p, (const char *)out);
        idn2_free(out);
        alen = strlen(abuf);
        if (ustr_from_utf8(p, abuf, alen, &a) != 0 ||
            !is_ascii_hostname(a.c, a.n)) {
            return "The email address contains invalid characters after the "
                   "@-sign after IDNA encoding.";
        }
    }

    if (alen > DOMAIN_MAX_LENGTH) {
        return apr_pstrcat(p, "The email address is too long after the @-sign ",
                           length_reason(p, alen, DOMAIN_MAX_LENGTH, 0), ".",
                           NULL);
    }
    for (start = 0, i = 0; i <= alen; i++) {
        if (i == alen || abuf[i] == '.') {
            if (i - start > DNS_LABEL_LENGTH_LIMIT) {
                return apr_pstrcat(
                    p,
                    "After the @-sign, periods cannot be separated by so many "
                    "characters ",
                    length_reason(p, i - start, DNS_LABEL_LENGTH_LIMIT, 0), ".",
                    NULL);
            }
            if (i - start >= 4 && strncmp(abuf + start, "xn--", 4) == 0) {
                has_xn = 1;
            }
            start = i + 1;
        }
    }
    if (strchr(abuf, '.') == NULL) {
        return "The part after the @-sign is not valid. It should have a "
               "period.";
    }
    if (!((abuf[alen - 1] >= 'a' && abuf[alen - 1] <= 'z') ||
          (abuf[alen - 1] >= 'A' && abuf[alen - 1] <= 'Z'))) {
        return "The part after the @-sign is not valid. It is not within a "
               "valid top-level domain.";
    }
    {
        /* email-validator's SPECIAL_USE_DOMAIN_NAMES (example.com & co.
         * are deliberately not in it) */
        static const char *const special[] = {"arpa",      "invalid", "local",
                                              "localhost", "onion",   "test"};
        size_t k;

        for (k = 0; k < sizeof(special) / sizeof(special[0]); k++) {
            size_t sl = strlen(special[k]);

            if (strcmp(abuf, special[k]) == 0 ||
                (alen > sl && abuf[alen - sl - 1] == '.' &&
                 strcmp(abuf + alen - sl, special[k]) == 0)) {
                return "The part after the @-sign is a special-use or "
                       "reserved name that cannot be used with email.";
            }
        }
    }

    /* the canonical internationalised form, checking that A-labels are
     * real IDNA (they round-trip) */
    *ascii = abuf;
    *i18n = abuf;
    if (has_xn) {
        char *u = NULL;
        uint8_t *back = NULL;
        int rc = idn2_to_unicode_8z8z(abuf, &u, 0);
        int round_trip = 0;
        const char *ulabel = abuf;

        if (rc == IDN2_OK) {
            ulabel = apr_pstrdup(p, u);
            rc =
                idn2_lookup_u8((const uint8_t *)u, &back, IDN2_NONTRANSITIONAL);
            round_trip = rc == IDN2_OK && strcmp((const char *)back, abuf) == 0;
        }
        if (round_trip) {
            *i18n = apr_pstrdup(p, u);
        }
        idn2_free(u);
        idn2_free(back);
        if (!round_trip) {
            return rc == IDN2_OK
                       ? "The part after the @-sign is not valid IDNA "
                         "(the A-label does not round-trip)."
                       : idn2_reason(p,
                                     "The part after the @-sign is not valid "
                                     "IDNA ",
                                     rc, ulabel);
        }
    }
    return unsafe_chars_reason(p, domain, 0);
}

/* Why Python's ipaddress.IPv4Address refuses txt (digits and dots), or
 * NULL when it is an address. */
static const char *ipv4_error(apr_pool_t *p, const char *txt)
{
    const char *o[4], *s = txt;
    size_t ol[4];
    int n = 0, i;

    for (;;) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);

        if (n == 4) {
            return apr_psprintf(p, "Expected 4 octets in '%s'", txt);
        }
        o[n] = s;
        ol[n++] = l;
        if (!dot) {
            break;
        }
        s = dot + 1;
    }
    if (n != 4) {
        return apr_psprintf(p, "Expected 4 octets in '%s'", txt);
    }
    for (i = 0; i < 4; i++) {
        const char *os = apr_pstrmemdup(p, o[i], ol[i]);

        if (ol[i] == 0) {
            return apr_psprintf(p, "Empty octet not permitted in '%s'", txt);
        }
        if (ol[i] > 3) {
            return apr_psprintf(
                p, "At most 3 characters permitted in '%s' in '%s'", os, txt);
        }
        if (ol[i] > 1 && os[0] == '0') {
            return apr_psprintf(
                p, "Leading zeros are not permitted in '%s' in '%s'", os, txt);
        }
        if (atoi(os) > 255) {
            return apr_psprintf(p, "Octet %d (> 255) not permitted in '%s'",
                                atoi(os), txt);
        }
    }
    return NULL;
}

/* validate_email_domain_literal, then the "not allowed" verdict */
static const char *check_domain_literal(apr_pool_t *p, const ustr *inner)
{
    size_t i;
    int all_ipv4_chars = inner->n > 0;
    char *txt;

    for (i = 0; i < inner->n; i++) {
        if (!((inner->c[i] >= '0' && inner->c[i] <= '9') ||
              inner->c[i] == '.')) {
            all_ipv4_chars = 0;
        }
    }
    txt = utf8_from_cps(p, inner->c, inner->n, NULL);
    if (all_ipv4_chars) {
        const char *e = ipv4_error(p, txt);

        if (e) {
            return apr_pstrcat(p,
                               "The address in brackets after the @-sign is "
                               "not valid: It is not an IPv4 address (",
                               e, ") or is missing an address literal tag.",
                               NULL);
        }
        return "A bracketed IP address after the @-sign is not allowed here.";
    }
    if (strncmp(txt, "IPv6:", 5) == 0) {
        unsigned char addr[16];

        if (inet_pton(AF_INET6, txt + 5, addr) != 1) {
            return "The IPv6 address in brackets after the @-sign is not "
                   "valid.";
        }
        return "A bracketed IP address after the @-sign is not allowed here.";
    }
    if (strchr(txt, ':') == NULL) {
        return "The part after the @-sign in brackets is not an IPv4 address "
               "and has no address literal tag.";
    }
    {
        const char *why = bad_chars_reason(
            p, inner, is_domain_literal_char,
            "The part after the @-sign contains invalid characters in "
            "brackets: ");

        if (why) {
            return why;
        }
    }
    return "The part after the @-sign contains an invalid address literal "
           "tag in brackets.";
}

/* split_email: the quoted form ^"((?:[^"\\]|\\.)*)"@(.*) first, else the
 * one and only @-sign. Returns a reason or NULL. */
static const char *split_email(apr_pool_t *p, const ustr *s, ustr *local,
                               ustr *domain, int *quoted)
{
    size_t i, at = 0, count = 0;

    *quoted = 0;
    if (s->n > 0 && s->c[0] == '"') {
        int matched = 0;

        for (i = 1; i < s->n; i++) {
            if (s->c[i] == '\\') {
                if (i + 1 < s->n && s->c[i + 1] != '\n') {
                    i++;
                    continue;
                }
                break;
            }
            if (s->c[i] == '"') {
                matched = (i + 1 < s->n && s->c[i + 1] == '@');
                break;
            }
        }
        if (matched) {
            size_t j, end = i;

            *quoted = 1;
            local->c = apr_palloc(p, (end + 1) * sizeof(ucs4_t));
            local->n = 0;
            for (j = 1; j < end; j++) {
                if (s->c[j] == '\\') {
                    j++;
                }
                local->c[local->n++] = s->c[j];
            }
            domain->c = s->c + end + 2;
            domain->n = 0;
            while (end + 2 + domain->n < s->n && domain->c[domain->n] != '\n') {
                domain->n++;
            }
            return NULL;
        }
    }
    for (i = 0; i < s->n; i++) {
        if (s->c[i] == '@') {
            if (count++ == 0) {
                at = i;
            }
        }
    }
    if (count != 1) {
        return "The email address is not valid. It must have exactly one "
               "@-sign.";
    }
    local->c = s->c;
    local->n = at;
    domain->c = s->c + at + 1;
    domain->n = s->n - at - 1;
    return NULL;
}

static const char *check_email_cps(apr_pool_t *p, const ustr *s,
                                   const char **normalized)
{
    ustr local, domain;
    int quoted, smtputf8;
    const char *why, *ascii_domain = NULL, *i18n_domain = NULL;
    const char *local8, *norm, *ascii_email = NULL;
    size_t local8_len, norm_cps, norm_bytes;
    long cps;

    why = split_email(p, s, &local, &domain, &quoted);
    if (why) {
        return why;
    }
    why = check_local_part(p, &local, quoted, &smtputf8);
    if (why) {
        return why;
    }
    if (quoted) {
        return "Quoting the part before the @-sign is not allowed here.";
    }
    if (!smtputf8) {
        lower_role_mailbox(&local);
    }
    if (domain.n == 0) {
        return "There must be something after the @-sign.";
    }
    if (domain.c[0] == '[' && domain.c[domain.n - 1] == ']') {
        ustr inner;

        inner.c = domain.c + 1;
        inner.n = domain.n >= 2 ? domain.n - 2 : 0;
        return check_domain_literal(p, &inner);
    }
    {
        /* work on a copy: the remapping rewrites it */
        ustr d;

        d.n = domain.n;
        d.c = apr_pmemdup(p, domain.c, domain.n * sizeof(ucs4_t));
        why = check_domain_name(p, &d, &ascii_domain, &i18n_domain);
        if (why) {
            return why;
        }
    }

    /* validate_email_length */
    local8 = utf8_from_cps(p, local.c, local.n, &local8_len);
    norm = apr_pstrcat(p, local8, "@", i18n_domain, NULL);
    norm_bytes = strlen(norm);
    cps = hs_utf8_length(norm, norm_bytes);
    norm_cps = cps < 0 ? norm_bytes : (size_t)cps;
    if (!smtputf8) {
        ascii_email = apr_pstrcat(p, local8, "@", ascii_domain, NULL);
    }
    if (ascii_email && strlen(ascii_email) > EMAIL_MAX_LENGTH) {
        const char *reason;

        if (strcmp(ascii_email, norm) == 0) {
            reason = length_reason(p, strlen(ascii_email), EMAIL_MAX_LENGTH, 0);
        }
        else if (norm_cps > EMAIL_MAX_LENGTH) {
            reason = length_reason(p, norm_cps, EMAIL_MAX_LENGTH, 1);
        }
        else {
            reason = "(when converted to IDNA ASCII)";
        }
        return apr_pstrcat(p, "The email address is too long ", reason, ".",
                           NULL);
    }
    if (norm_bytes > EMAIL_MAX_LENGTH) {
        const char *reason =
            norm_cps > EMAIL_MAX_LENGTH
                ? length_reason(p, norm_cps, EMAIL_MAX_LENGTH, 1)
                : "(when encoded in bytes)";

        return apr_pstrcat(p, "The email address is too long ", reason, ".",
                           NULL);
    }
    *normalized = norm;
    return NULL;
}

const char *hs_email_check(apr_pool_t *p, const char *s, size_t len,
                           const char **normalized)
{
    ustr u;
    const char *dummy = NULL;

    if (normalized == NULL) {
        normalized = &dummy;
    }
    *normalized = NULL;
    if (s == NULL || ustr_from_utf8(p, s, len, &u) != 0) {
        return "The email address contains an invalid character.";
    }
    return check_email_cps(p, &u, normalized);
}

/* ------------------------------------------------------------------ */
/* pydantic's EmailStr front end */

static int is_name_char(ucs4_t c)
{
    const char *cat;

    if (c < 0x80) {
        return is_ascii_alnum(c) ||
               (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", (int)c));
    }
    cat = category_of(c);
    return cat[0] == 'L' || cat[0] == 'N'; /* Python's \w */
}

/* the address inside the group <(.+)> spanning from..to, if it is one */
static int email_group(const ustr *s, size_t lt, size_t end, ustr *out)
{
    size_t i;

    /* s->c[lt] is '<', s->c[end - 1] is the closing '>' */
    if (lt >= s->n || s->c[lt] != '<' || end < lt + 3 || s->c[end - 1] != '>') {
        return 0;
    }
    for (i = lt + 1; i < end - 1; i++) {
        if (s->c[i] == '\n') {
            return 0;
        }
    }
    out->c = s->c + lt + 1;
    out->n = end - 1 - (lt + 1);
    return 1;
}

/* pydantic's pretty_email_regex, fullmatch:
 *   \s*(?:(unquoted name)|"(quoted name)")?\s*<(.+)>\s*
 * On a match *addr is the part in angle brackets. */
static int pretty_email(const ustr *s, ustr *addr)
{
    size_t a = 0, end = s->n, b;

    while (end > 0 && py_isspace(s->c[end - 1])) {
        end--;
    }
    while (a < end && py_isspace(s->c[a])) {
        a++;
    }
    if (a >= end) {
        return 0;
    }
    if (is_name_char(s->c[a])) {
        for (b = a; b < end && (is_name_char(s->c[b]) || py_isspace(s->c[b]));
             b++) {
        }
        return email_group(s, b, end, addr);
    }
    if (s->c[a] == '"') {
        size_t q;

        /* the quoted name is greedy: try the last closing quote first */
        for (q = end - 1; q >= a + 2; q--) {
            if (s->c[q] != '"') {
                continue;
            }
            for (b = q + 1; b < end && py_isspace(s->c[b]); b++) {
            }
            if (email_group(s, b, end, addr)) {
                return 1;
            }
        }
        return 0;
    }
    return email_group(s, a, end, addr);
}

static void py_strip(ustr *s)
{
    while (s->n > 0 && py_isspace(s->c[s->n - 1])) {
        s->n--;
    }
    while (s->n > 0 && py_isspace(s->c[0])) {
        s->c++;
        s->n--;
    }
}

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
    ustr u, addr;

    if (s == NULL) {
        return NULL;
    }
    if (cps > PYDANTIC_MAX_EMAIL_LENGTH) {
        hs_errors_add(e, name, "value_error",
                      EMAIL_ERR_PREFIX
                      "Length must not exceed 2048 characters");
        return NULL;
    }
    if (ustr_from_utf8(p, s, len, &u) != 0) {
        why = "The email address contains an invalid character.";
    }
    else {
        if (pretty_email(&u, &addr)) {
            u = addr;
        }
        py_strip(&u);
        why = check_email_cps(p, &u, &norm);
    }
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

const char *hs_email_ascii_domain(apr_pool_t *p, const char *email)
{
    const char *at = strrchr(email, '@');
    const unsigned char *c;
    uint8_t *out = NULL;
    const char *res;

    if (!at) {
        return email;
    }
    for (c = (const unsigned char *)at + 1; *c && *c < 0x80; c++) {
    }
    if (!*c) {
        return email; /* already ASCII */
    }
    if (idn2_lookup_u8((const uint8_t *)at + 1, &out, IDN2_NONTRANSITIONAL) !=
        IDN2_OK) {
        idn2_free(out);
        return email;
    }
    res = apr_pstrcat(p, apr_pstrmemdup(p, email, (apr_size_t)(at - email)),
                      "@", (const char *)out, NULL);
    idn2_free(out);
    return res;
}

const char *hs_email_mailbox(apr_pool_t *p, const char *email)
{
    const char *at = strrchr(email, '@');
    size_t local = at ? (size_t)(at - email) : strlen(email);
    const char *plus = memchr(email, '+', local);
    char *out, *c;

    if (email[0] != '"' && plus) {
        out = apr_pstrcat(p, apr_pstrmemdup(p, email, (size_t)(plus - email)),
                          at ? at : "", NULL);
    }
    else {
        out = apr_pstrdup(p, email);
    }
    for (c = out; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    return out;
}
