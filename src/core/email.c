/* SPDX-License-Identifier: Apache-2.0 */
/*
 * email.c - email address syntax as python email-validator 2.1 checks it
 * with its default options (check_deliverability=False, no quoted local
 * parts, no domain literals, SMTPUTF8 allowed, globally deliverable names
 * only), and pydantic's EmailStr front end ("Name <addr>"). See hs_email.h.
 *
 * Unicode data (general categories, character names, NFC, case folding)
 * comes from libunistring, IDNA 2008 / UTS #46 from libidn2.
 *
 * httpd-free: APR, libidn2 and libunistring only.
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

#include "hs_addrspec.h"
#include "email_text.h"
#include "hs_email.h"
#include "hs_utf8.h"

#define EMAIL_MAX_LENGTH 254
#define LOCAL_PART_MAX_LENGTH 64
#define DNS_LABEL_LENGTH_LIMIT 63
#define DOMAIN_MAX_LENGTH 255

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
            em_length_reason(p, local->n, LOCAL_PART_MAX_LENGTH, 0), ".", NULL);
    }
    if (em_is_dot_atom(local->c, local->n, em_is_atext)) {
        return NULL;
    }
    if (em_is_dot_atom(local->c, local->n, em_is_atext_intl)) {
        valid_intl = 1;
        *smtputf8 = 1;
    }
    else if (quoted) {
        size_t i;

        why = em_bad_chars_reason(p, local, em_is_qtext_intl,
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
        why = em_unsafe_chars_reason(p, local, quoted);
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
    why = em_bad_chars_reason(p, local, em_is_atext_intl_dot,
                              "The email address contains invalid characters "
                              "before the @-sign: ");
    if (why) {
        return why;
    }
    why = em_dot_atom_reason(local, 0);
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
        const char *cat = em_category_of(c[i]);
        int printable = c[i] == ' ' || !(cat[0] == 'C' || cat[0] == 'Z');

        if (printable) {
            APR_ARRAY_PUSH(out, const char *) =
                em_utf8_from_cps(p, c + i, 1, NULL);
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

    if (em_ustr_from_utf8(p, name, strlen(name), &u) != 0) {
        return NULL;
    }
    for (i = 0; i < u.n; i++) {
        uint8_t *out = NULL;
        int rc;

        if (u.c[i] == '.') {
            start = i + 1;
            continue;
        }
        rc = idn2_lookup_u8(
            (const uint8_t *)em_utf8_from_cps(p, u.c + i, 1, NULL), &out,
            IDN2_NO_TR46);
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

/* validate_email_domain_name, step 1: the characters, before and after
 * UTS #46 mapping, and the dot-atom shape. Remaps domain in place. */
static const char *domain_chars_reason(apr_pool_t *p, ustr *domain)
{
    const char *why;

    why = em_bad_chars_reason(p, domain, em_is_hostname_intl,
                              "The part after the @-sign contains invalid "
                              "characters: ");
    if (why || (why = em_unsafe_chars_reason(p, domain, 0))) {
        return why;
    }
    uts46_remap(p, domain);
    if (domain->n == 0) {
        return "There must be something after the @-sign.";
    }
    why = em_bad_chars_reason(p, domain, em_is_hostname_intl,
                              "The part after the @-sign contains invalid "
                              "characters after Unicode normalization: ");
    return why ? why : em_dot_atom_reason(domain, 1);
}

/* Does a label of d have "--" in its 3rd and 4th place? With rldh, any
 * label but "xn--..." counts (RFC 5890 R-LDH labels); without, only a
 * label with a non-ASCII character in it (idna's check_label). */
static int label_with_hyphens(const ustr *d, int rldh)
{
    size_t i, start = 0;

    for (i = 0; i <= d->n; i++) {
        if (i == d->n || d->c[i] == '.') {
            ustr l;
            l.c = d->c + start;
            l.n = i - start;
            if (l.n >= 4 && l.c[2] == '-' && l.c[3] == '-') {
                int xn =
                    ascii_lower(l.c[0]) == 'x' && ascii_lower(l.c[1]) == 'n';
                if (rldh ? !xn : has_non_ascii(&l)) {
                    return 1;
                }
            }
            start = i + 1;
        }
    }
    return 0;
}

/* Step 2: the domain in ASCII (IDNA 2008 A-labels) into *abuf, *alen. */
static const char *domain_to_ascii(apr_pool_t *p, const ustr *domain,
                                   char **abuf, size_t *alen)
{
    uint8_t *out = NULL;
    const char *u;
    ustr a;
    int rc;

    if (em_is_ascii_hostname(domain->c, domain->n)) {
        *abuf = em_utf8_from_cps(p, domain->c, domain->n, alen);
        return NULL;
    }
    /* idna's check_label: an internationalised label with "--" in 3rd and
     * 4th position (the ASCII ones were refused before) */
    if (label_with_hyphens(domain, 0)) {
        return "The part after the @-sign contains invalid characters (Label "
               "has disallowed hyphens in 3rd and 4th position).";
    }
    u = em_utf8_from_cps(p, domain->c, domain->n, NULL);
    rc = idn2_lookup_u8((const uint8_t *)u, &out, IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        idn2_free(out);
        if (rc == IDN2_TOO_BIG_DOMAIN) {
            return "The email address is too long after the @-sign.";
        }
        return idn2_reason(
            p, "The part after the @-sign contains invalid characters ", rc, u);
    }
    *abuf = apr_pstrdup(p, (const char *)out);
    idn2_free(out);
    *alen = strlen(*abuf);
    if (em_ustr_from_utf8(p, *abuf, *alen, &a) != 0 ||
        !em_is_ascii_hostname(a.c, a.n)) {
        return "The email address contains invalid characters after the "
               "@-sign after IDNA encoding.";
    }
    return NULL;
}

/* Step 3: lengths, a period, a top-level domain. *has_xn tells whether a
 * label is an A-label. */
static const char *ascii_domain_reason(apr_pool_t *p, const char *abuf,
                                       size_t alen, int *has_xn)
{
    size_t i, start = 0;

    if (alen > DOMAIN_MAX_LENGTH) {
        return apr_pstrcat(p, "The email address is too long after the @-sign ",
                           em_length_reason(p, alen, DOMAIN_MAX_LENGTH, 0), ".",
                           NULL);
    }
    *has_xn = 0;
    for (i = 0; i <= alen; i++) {
        if (i == alen || abuf[i] == '.') {
            if (i - start > DNS_LABEL_LENGTH_LIMIT) {
                return apr_pstrcat(
                    p,
                    "After the @-sign, periods cannot be separated by so many "
                    "characters ",
                    em_length_reason(p, i - start, DNS_LABEL_LENGTH_LIMIT, 0),
                    ".", NULL);
            }
            if (i - start >= 4 && strncmp(abuf + start, "xn--", 4) == 0) {
                *has_xn = 1;
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
    return NULL;
}

/* Step 4: email-validator's SPECIAL_USE_DOMAIN_NAMES (example.com & co.
 * are deliberately not in it). */
static int is_special_use(const char *abuf, size_t alen)
{
    static const char *const special[] = {"arpa",      "invalid", "local",
                                          "localhost", "onion",   "test"};
    size_t k;

    for (k = 0; k < sizeof(special) / sizeof(special[0]); k++) {
        size_t sl = strlen(special[k]);
        if (strcmp(abuf, special[k]) == 0 ||
            (alen > sl && abuf[alen - sl - 1] == '.' &&
             strcmp(abuf + alen - sl, special[k]) == 0)) {
            return 1;
        }
    }
    return 0;
}

/* Step 5: the canonical internationalised form of an ASCII domain with
 * A-labels into *i18n, checking that they are real IDNA (they
 * round-trip). */
static const char *idna_round_trip(apr_pool_t *p, const char *abuf,
                                   const char **i18n)
{
    char *u = NULL;
    uint8_t *back = NULL;
    int rc = idn2_to_unicode_8z8z(abuf, &u, 0);
    int round_trip = 0;
    const char *ulabel = abuf;

    if (rc == IDN2_OK) {
        ulabel = apr_pstrdup(p, u);
        rc = idn2_lookup_u8((const uint8_t *)u, &back, IDN2_NONTRANSITIONAL);
        round_trip = rc == IDN2_OK && strcmp((const char *)back, abuf) == 0;
    }
    if (round_trip) {
        *i18n = apr_pstrdup(p, u);
    }
    idn2_free(u);
    idn2_free(back);
    if (round_trip) {
        return NULL;
    }
    return rc == IDN2_OK
               ? "The part after the @-sign is not valid IDNA "
                 "(the A-label does not round-trip)."
               : idn2_reason(p, "The part after the @-sign is not valid IDNA ",
                             rc, ulabel);
}

/* validate_email_domain_name: sets *ascii and *i18n (UTF-8, in p). */
static const char *check_domain_name(apr_pool_t *p, ustr *domain,
                                     const char **ascii, const char **i18n)
{
    const char *why;
    char *abuf = NULL;
    size_t alen = 0;
    int has_xn = 0;

    if ((why = domain_chars_reason(p, domain))) {
        return why;
    }
    /* RFC 5890 R-LDH labels: "??--" other than "xn--" */
    if (label_with_hyphens(domain, 1)) {
        return "An email address cannot have two letters followed by two "
               "dashes immediately after the @-sign or after a period, except "
               "Punycode.";
    }
    if ((why = domain_to_ascii(p, domain, &abuf, &alen)) ||
        (why = ascii_domain_reason(p, abuf, alen, &has_xn))) {
        return why;
    }
    if (is_special_use(abuf, alen)) {
        return "The part after the @-sign is a special-use or reserved name "
               "that cannot be used with email.";
    }
    *ascii = abuf;
    *i18n = abuf;
    if (has_xn && (why = idna_round_trip(p, abuf, i18n))) {
        return why;
    }
    return em_unsafe_chars_reason(p, domain, 0);
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
    txt = em_utf8_from_cps(p, inner->c, inner->n, NULL);
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
        const char *why = em_bad_chars_reason(
            p, inner, em_is_domain_literal_char,
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
    local8 = em_utf8_from_cps(p, local.c, local.n, &local8_len);
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
            reason =
                em_length_reason(p, strlen(ascii_email), EMAIL_MAX_LENGTH, 0);
        }
        else if (norm_cps > EMAIL_MAX_LENGTH) {
            reason = em_length_reason(p, norm_cps, EMAIL_MAX_LENGTH, 1);
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
                ? em_length_reason(p, norm_cps, EMAIL_MAX_LENGTH, 1)
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
    if (s == NULL || em_ustr_from_utf8(p, s, len, &u) != 0) {
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
        return em_is_ascii_alnum(c) ||
               (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", (int)c));
    }
    cat = em_category_of(c);
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

    while (end > 0 && em_py_isspace(s->c[end - 1])) {
        end--;
    }
    while (a < end && em_py_isspace(s->c[a])) {
        a++;
    }
    if (a >= end) {
        return 0;
    }
    if (is_name_char(s->c[a])) {
        for (b = a;
             b < end && (is_name_char(s->c[b]) || em_py_isspace(s->c[b]));
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
            for (b = q + 1; b < end && em_py_isspace(s->c[b]); b++) {
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
    while (s->n > 0 && em_py_isspace(s->c[s->n - 1])) {
        s->n--;
    }
    while (s->n > 0 && em_py_isspace(s->c[0])) {
        s->c++;
        s->n--;
    }
}

const char *hs_email_str_check(apr_pool_t *p, const char *s, size_t len,
                               const char **normalized)
{
    ustr u, addr;

    if (em_ustr_from_utf8(p, s, len, &u) != 0) {
        return "The email address contains an invalid character.";
    }
    if (pretty_email(&u, &addr)) {
        u = addr;
    }
    py_strip(&u);
    return check_email_cps(p, &u, normalized);
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
