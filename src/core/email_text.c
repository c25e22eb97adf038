/* SPDX-License-Identifier: Apache-2.0 */
/*
 * email_text.c - code points, character classes and the messages of
 * python's email-validator that list characters (see email_text.h).
 *
 * httpd-free: APR and libunistring only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include <unictype.h>
#include <uniname.h>

#include "email_text.h"
#include "hs_addrspec.h"
#include "hs_utf8.h"

/* ------------------------------------------------------------------ */
/* UTF-8 as code points */

int em_ustr_from_utf8(apr_pool_t *p, const char *s, size_t len, ustr *out)
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
char *em_utf8_from_cps(apr_pool_t *p, const ucs4_t *c, size_t n, size_t *len)
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

int em_is_ascii_alnum(ucs4_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* RFC 5322 atext */
int em_is_atext(ucs4_t c)
{
    return c < 0x80 && hs_addrspec_atext((unsigned char)c);
}

/* RFC 6531 atext: plus U+0080..U+10FFFF */
int em_is_atext_intl(ucs4_t c)
{
    return em_is_atext(c) || c >= 0x80;
}

int em_is_atext_intl_dot(ucs4_t c)
{
    return em_is_atext_intl(c) || c == '.';
}

/* ATEXT_HOSTNAME_INTL */
int em_is_hostname_intl(ucs4_t c)
{
    return em_is_ascii_alnum(c) || c == '-' || c == '.' || c >= 0x80;
}

/* QTEXT_INTL */
int em_is_qtext_intl(ucs4_t c)
{
    return (c >= 0x20 && c <= 0x7E) || c >= 0x80;
}

/* DOMAIN_LITERAL_CHARS: U+0021..U+00FA */
int em_is_domain_literal_char(ucs4_t c)
{
    return c >= 0x21 && c <= 0xFA;
}

/* str.isspace() / the \s of Python's re on str */
int em_py_isspace(ucs4_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

const char *em_category_of(ucs4_t c)
{
    return uc_general_category_name(uc_general_category(c));
}

/* dot-atom: atoms of pred characters joined by single periods */
int em_is_dot_atom(const ucs4_t *c, size_t n, int (*pred)(ucs4_t))
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
int em_is_ascii_hostname(const ucs4_t *c, size_t n)
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
        else if (!em_is_ascii_alnum(c[i]) && c[i] != '-') {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Messages listing characters (email-validator's safe_character_display) */

static const char *char_display(apr_pool_t *p, ucs4_t c)
{
    const char *cat = em_category_of(c);
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
const char *em_bad_chars_reason(apr_pool_t *p, const ustr *s, int (*ok)(ucs4_t),
                                const char *prefix)
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
const char *em_unsafe_chars_reason(apr_pool_t *p, const ustr *s,
                                   int allow_space)
{
    ucs4_t *bad = NULL;
    size_t i, nbad = 0;
    apr_array_header_t *out;

    for (i = 0; i < s->n; i++) {
        const char *cat = em_category_of(s->c[i]);
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
const char *em_length_reason(apr_pool_t *p, size_t len, size_t limit,
                             int at_least)
{
    size_t diff = len - limit;

    return apr_psprintf(p, "(%s%" APR_SIZE_T_FMT " character%s too many)",
                        at_least ? "at least " : "", diff, diff > 1 ? "s" : "");
}

/* check_dot_atom */
const char *em_dot_atom_reason(const ustr *s, int is_hostname)
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
