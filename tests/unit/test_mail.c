/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_mail.c - unit tests for src/core/mail.c (hs_mail.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hs_mail.h"
#include "mail_headers.h"
#define HS_UNIT_POOL_FIXTURE
#include "unit_main.h"

static hs_mail_vars base_vars(void)
{
    hs_mail_vars v;
    memset(&v, 0, sizeof(v));
    v.from = "Acme Signup <noreply@acme.example>";
    v.to = "alice@example.com";
    v.code = "123456";
    v.company = "Acme Corp";
    v.site_url = "https://acme-corp.sites.example.net";
    v.expiry_minutes = 15;
    v.hostname = "web1.example.net";
    v.now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 +0000 */
    return v;
}

static const char *render(const hs_mail_template *t, const hs_mail_vars *v,
                          size_t *len)
{
    const char *msg = NULL;
    const char *err = hs_mail_render(pool, t, v, &msg, len);
    ck_assert_msg(err == NULL, "render failed: %s", err ? err : "");
    ck_assert_ptr_nonnull(msg);
    ck_assert_uint_eq(strlen(msg), *len);
    return msg;
}

/* The header block, unfolded lines kept as they are. */
static const char *headers_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    return apr_pstrmemdup(pool, msg, (size_t)(end - msg) + 2);
}

static const char *body_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    return end + 4;
}

/* Every LF is preceded by CR, every CR followed by LF, message ends CRLF. */
static void assert_crlf(const char *msg, size_t len)
{
    size_t i;
    ck_assert_uint_ge(len, 2);
    for (i = 0; i < len; i++) {
        if (msg[i] == '\n') {
            ck_assert_msg(i > 0 && msg[i - 1] == '\r', "bare LF at %zu", i);
        }
        if (msg[i] == '\r') {
            ck_assert_msg(i + 1 < len && msg[i + 1] == '\n', "bare CR at %zu",
                          i);
        }
    }
    ck_assert(msg[len - 2] == '\r' && msg[len - 1] == '\n');
}

/* The longest line of s (CRLF lines). */
static size_t max_line(const char *s)
{
    size_t max = 0;
    while (*s) {
        const char *e = strstr(s, "\r\n");
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n > max) {
            max = n;
        }
        s += n + (e ? 2 : 0);
    }
    return max;
}

/* Number of header lines (not continuations) that start with name. */
static int count_header(const char *hdrs, const char *name)
{
    int count = 0;
    const char *s = hdrs;
    size_t n = strlen(name);
    while (*s) {
        const char *e = strstr(s, "\r\n");
        if (strncasecmp(s, name, n) == 0) {
            count++;
        }
        if (e == NULL) {
            break;
        }
        s = e + 2;
    }
    return count;
}

/* The Subject header, unfolded (CRLF removed before continuation). */
static const char *subject_of(const char *msg)
{
    const char *h = headers_of(msg), *s = strstr(h, "\r\nSubject: ");
    const char *e;
    char *out, *w;
    ck_assert_ptr_nonnull(s);
    s += 11;
    e = s;
    while (!(e[0] == '\r' && e[1] == '\n' && e[2] != ' ')) {
        e++;
    }
    out = apr_pstrmemdup(pool, s, (size_t)(e - s));
    for (w = out, s = out; *s; s++) {
        if (s[0] == '\r' && s[1] == '\n') {
            s++;
            continue;
        }
        *w++ = *s;
    }
    *w = '\0';
    return out;
}

static int b64val(char c)
{
    const char *a =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(a, c);
    return (c && p) ? (int)(p - a) : -1;
}

/* Decodes a header value made only of =?UTF-8?B?...?= words separated by
 * white space; each word must decode to whole UTF-8 characters. */
static const char *decode_words(const char *s)
{
    char *out = apr_palloc(pool, strlen(s) + 1), *w = out;
    while (*s) {
        const char *e;
        unsigned acc = 0;
        int bits = 0;
        char *start = w;
        if (*s == ' ') {
            s++;
            continue;
        }
        ck_assert_msg(strncmp(s, "=?UTF-8?B?", 10) == 0, "not a word: %s", s);
        s += 10;
        e = strstr(s, "?=");
        ck_assert_ptr_nonnull(e);
        for (; s < e; s++) {
            int v;
            if (*s == '=') {
                continue;
            }
            v = b64val(*s);
            ck_assert_int_ge(v, 0);
            acc = (acc << 6) | (unsigned)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                *w++ = (char)((acc >> bits) & 0xFF);
            }
        }
        /* a word never ends inside a character */
        ck_assert_msg(w == start || ((unsigned char)w[-1] & 0xC0) != 0xC0,
                      "word ends on a lead byte");
        {
            const char *q = w;
            int k = 0;
            while (q > start && ((unsigned char)q[-1] & 0xC0) == 0x80) {
                q--;
                k++;
            }
            if (q > start && (unsigned char)q[-1] >= 0xC0) {
                unsigned char lead = (unsigned char)q[-1];
                int need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
                ck_assert_int_eq(k, need);
            }
        }
        s = e + 2;
    }
    *w = '\0';
    return out;
}

/* Decodes quoted-printable (CRLF lines, "=" soft breaks). */
static const char *qp_decode(const char *s)
{
    char *out = apr_palloc(pool, strlen(s) + 1), *w = out;
    while (*s) {
        if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
            s += 3;
        }
        else if (s[0] == '=') {
            unsigned v;
            ck_assert(sscanf(s + 1, "%2X", &v) == 1);
            *w++ = (char)v;
            s += 3;
        }
        else {
            *w++ = *s++;
        }
    }
    *w = '\0';
    return out;
}

/* --- the exact message ------------------------------------------------- */

static const char *expected_verify =
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Acme Signup <noreply@acme.example>\r\n"
    "To: alice@example.com\r\n"
    "Subject: Your verification code\r\n"
    "Message-ID: <1700000000.0123456789abcdef@web1.example.net>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "Auto-Submitted: auto-generated\r\n"
    "\r\n"
    "Hello,\r\n"
    "\r\n"
    "Your verification code for Acme Corp is:\r\n"
    "\r\n"
    "123456\r\n"
    "\r\n"
    "This code expires in 15 minutes.\r\n"
    "\r\n"
    "Once you have verified your email address, your site will be at:\r\n"
    "https://acme-corp.sites.example.net\r\n"
    "\r\n"
    "If you did not sign up, you can ignore this email: nothing happens\r\n"
    "without the code.\r\n";

START_TEST(test_exact_message)
{
    hs_mail_vars v = base_vars();
    const char *msg = NULL, *err;
    size_t len = 0;

    err = hs_mail_render_with_id(pool, hs_mail_default_template(HS_MAIL_VERIFY),
                                 &v, "0123456789abcdef", &msg, &len);
    ck_assert_msg(err == NULL, "%s", err ? err : "");
    ck_assert_str_eq(msg, expected_verify);
    ck_assert_uint_eq(len, strlen(expected_verify));
}
END_TEST

START_TEST(test_generated_message_id)
{
    hs_mail_vars v = base_vars();
    size_t len, i;
    const char *m1 = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    const char *m2 = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    const char *id1 = strstr(m1, "Message-ID: <1700000000."), *id2;

    ck_assert_ptr_nonnull(id1);
    id1 += strlen("Message-ID: <1700000000.");
    for (i = 0; i < 16; i++) {
        ck_assert_msg(strchr("0123456789abcdef", id1[i]) && id1[i],
                      "not hex: %c", id1[i]);
    }
    ck_assert(strncmp(id1 + 16, "@web1.example.net>\r\n", 20) == 0);
    id2 = strstr(m2, "Message-ID: <1700000000.") +
          strlen("Message-ID: <1700000000.");
    ck_assert_msg(strncmp(id1, id2, 16) != 0, "Message-IDs repeat");
}
END_TEST

START_TEST(test_header_order_and_crlf)
{
    hs_mail_vars v = base_vars();
    size_t len, i;
    const char *msg, *s;

    v.company = "\xE6\xA0\xAA\xE5\xBC\x8F\xE4\xBC\x9A\xE7\xA4\xBE "
                "Caf\xC3\xA9 with a rather long name that must be folded";
    msg = render(hs_mail_default_template(HS_MAIL_EXISTS), &v, &len);
    assert_crlf(msg, len);
    s = msg;
    for (i = 0; i < MAIL_NHEADERS; i++) {
        ck_assert_msg(strncmp(s, mail_headers[i], strlen(mail_headers[i])) == 0,
                      "expected %s at: %.40s", mail_headers[i], s);
        do {
            s = strstr(s, "\r\n") + 2;
        } while (*s == ' ');
    }
    ck_assert(strncmp(s, "\r\n", 2) == 0);
    ck_assert_uint_le(max_line(headers_of(msg)), 78);
    ck_assert_uint_le(max_line(body_of(msg)), 76);
    /* conceal mode: no code anywhere */
    ck_assert_ptr_null(strstr(msg, "123456"));
}
END_TEST

START_TEST(test_date_format)
{
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg;

    v.now = 0;
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert(strncmp(msg, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n", 38) ==
              0);
    v.now = 951782400 + 86399; /* leap day 2000, last second */
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert(strncmp(msg, "Date: Tue, 29 Feb 2000 23:59:59 +0000\r\n", 39) ==
              0);
}
END_TEST

/* --- Subject ------------------------------------------------------------ */

/* The Subject encoder under test with visitor text in it: only a template
 * built in code can do this (hs_mail_template_parse refuses {{company}} in
 * a Subject, and the built-in templates have none). */
static const hs_mail_template subject_tmpl = {
    "Your {{company}} verification code",
    "Your code for {{company}}:\r\n\r\n{{code}}\r\n"};

START_TEST(test_subject_japanese)
{
    const char *company = "\xE6\xA0\xAA\xE5\xBC\x8F\xE4\xBC\x9A\xE7\xA4\xBE"
                          "\xE3\x82\xA2\xE3\x82\xAF\xE3\x83\xA1";
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg, *subj, *raw;

    v.company = company;
    msg = render(&subject_tmpl, &v, &len);
    raw = strstr(msg, "\r\nSubject: =?UTF-8?B?");
    ck_assert_ptr_nonnull(raw);
    subj = subject_of(msg);
    ck_assert_str_eq(
        decode_words(subj),
        apr_pstrcat(pool, "Your ", company, " verification code", NULL));
    /* the body carries the name in quoted-printable */
    ck_assert_ptr_nonnull(strstr(msg, "=E6=A0=AA=E5=BC=8F"));
    ck_assert_ptr_nonnull(strstr(qp_decode(body_of(msg)), company));
}
END_TEST

START_TEST(test_subject_long_folding)
{
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg, *subj;
    char *company = apr_palloc(pool, 601);
    int i;

    /* 200 characters of 3 bytes each: many encoded words */
    for (i = 0; i < 200; i++) {
        memcpy(company + 3 * i, "\xE3\x81\x82", 3);
    }
    company[600] = '\0';
    v.company = company;
    msg = render(&subject_tmpl, &v, &len);
    ck_assert_uint_le(max_line(headers_of(msg)), 78);
    subj = subject_of(msg);
    ck_assert_str_eq(
        decode_words(subj),
        apr_pstrcat(pool, "Your ", company, " verification code", NULL));
    ck_assert_int_ge(count_header(strstr(headers_of(msg), "Subject:"), " =?"),
                     5);

    /* a long ASCII subject folds at spaces and unfolds back */
    v.company = "The Extremely Long Named International Consolidated "
                "Widget Manufacturing and Distribution Company of Springfield";
    msg = render(&subject_tmpl, &v, &len);
    ck_assert_uint_le(max_line(headers_of(msg)), 78);
    ck_assert_str_eq(subject_of(msg), apr_pstrcat(pool, "Your ", v.company,
                                                  " verification code", NULL));

    /* an ASCII word too long for any line is encoded instead */
    company = apr_palloc(pool, 101);
    memset(company, 'x', 100);
    company[100] = '\0';
    v.company = company;
    msg = render(&subject_tmpl, &v, &len);
    ck_assert_uint_le(max_line(headers_of(msg)), 78);
    ck_assert_str_eq(
        decode_words(subject_of(msg)),
        apr_pstrcat(pool, "Your ", company, " verification code", NULL));
}
END_TEST

START_TEST(test_subject_injection)
{
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg;
    const char *evil[] = {"Acme\r\nBcc: evil@x", "Acme\nBcc: evil@x",
                          "Acme\rBcc: evil@x", "Acme\r\n\r\nBcc: evil@x",
                          "Acme\302\205Bcc: evil@x" /* U+0085 NEL */};
    size_t i;

    for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        const char *hdrs;
        v.company = evil[i];
        msg = render(&subject_tmpl, &v, &len);
        assert_crlf(msg, len);
        hdrs = headers_of(msg);
        ck_assert_int_eq(count_header(hdrs, "Bcc"), 0);
        ck_assert_int_eq(count_header(hdrs, "Subject:"), 1);
        ck_assert_ptr_null(strstr(msg, "\r\nBcc"));
        ck_assert_str_eq(subject_of(msg),
                         "Your Acme Bcc: evil[@]x verification code");
    }
    /* control characters in the subject of a hand-made template, too */
    {
        hs_mail_template t = {"Hi\r\nBcc: evil@x {{company}}", "{{code}}\r\n"};
        v.company = "Acme";
        msg = render(&t, &v, &len);
        ck_assert_int_eq(count_header(headers_of(msg), "Bcc"), 0);
        ck_assert_str_eq(subject_of(msg), "Hi Bcc: evil@x Acme");
    }
}
END_TEST

/* --- addresses ------------------------------------------------------------ */

START_TEST(test_to_from_refused)
{
    const char *bad_to[] = {"alice@example.com\r\nBcc: evil@x",
                            "alice@example.com\n",
                            "alice@example.com\r",
                            "ali\tce@example.com",
                            "alice@example.com\x7f",
                            "alice@example.com, bob@example.com",
                            "Alice <alice@example.com>",
                            "alice",
                            "",
                            NULL};
    const char *bad_from[] = {"Acme <noreply@acme.example>\r\nBcc: evil@x",
                              "Acme\n <noreply@acme.example>",
                              "Acme <noreply@acme.example\r>",
                              "noreply@acme.example\n", NULL};
    hs_mail_vars v;
    const char *msg, *err;
    size_t len, i;

    for (i = 0; i < sizeof(bad_to) / sizeof(bad_to[0]); i++) {
        v = base_vars();
        v.to = bad_to[i];
        msg = "x";
        err = hs_mail_render(pool, hs_mail_default_template(HS_MAIL_VERIFY), &v,
                             &msg, &len);
        ck_assert_msg(err != NULL, "to %zu accepted", i);
        ck_assert_ptr_null(msg);
    }
    for (i = 0; i < sizeof(bad_from) / sizeof(bad_from[0]); i++) {
        v = base_vars();
        v.from = bad_from[i];
        err = hs_mail_render(pool, hs_mail_default_template(HS_MAIL_VERIFY), &v,
                             &msg, &len);
        ck_assert_msg(err != NULL, "from %zu accepted", i);
        if (bad_from[i] != NULL) {
            ck_assert_ptr_nonnull(hs_mail_check_from(pool, bad_from[i]));
        }
    }
    v = base_vars();
    v.to = "alice@example.com\r\nBcc: evil@x";
    err = hs_mail_render(pool, hs_mail_default_template(HS_MAIL_VERIFY), &v,
                         &msg, &len);
    ck_assert_str_eq(err, "the To address contains a control character");
}
END_TEST

START_TEST(test_check_from)
{
    const char *good[] = {
        "noreply@acme.example",
        "Acme <noreply@acme.example>",
        "Acme Corp Signup <no-reply+signup@mail.acme.example>",
        "\"Acme, Inc.\" <noreply@acme.example>",
        "Caf\xC3\xA9 Acme <noreply@acme.example>",
        "<noreply@acme.example>",
        "noreply@localhost"};
    const char *bad[] = {"",
                         "Acme",
                         "Acme <>",
                         "Acme <noreply>",
                         "Acme <noreply@acme.example",
                         "Acme noreply@acme.example>",
                         "Acme <no reply@acme.example>",
                         "Acme <noreply@@acme.example>",
                         "Acme <.noreply@acme.example>",
                         "Acme <no..reply@acme.example>",
                         "Acme <noreply@-acme.example>",
                         "Acme <noreply@acme..example>",
                         "Acme <noreply@acme.example.>",
                         "Acme \"x <noreply@acme.example>",
                         "\"Acme\"x\" <noreply@acme.example>",
                         "Acme\r\n <noreply@acme.example>",
                         "Acme <n\xC3\xB6reply@acme.example>",
                         "noreply@acme.example, other@acme.example",
                         "\xFF <noreply@acme.example>"};
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const char *err = hs_mail_check_from(pool, good[i]);
        ck_assert_msg(err == NULL, "%s refused: %s", good[i], err ? err : "");
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(hs_mail_check_from(pool, bad[i]) != NULL, "%s accepted",
                      bad[i]);
    }
    ck_assert_ptr_nonnull(hs_mail_check_from(pool, NULL));
    ck_assert_str_eq(hs_mail_check_from(pool, "Acme <noreply>"),
                     "\"noreply\" is not an address of the form local@domain "
                     "(or \"Name <local@domain>\")");
}
END_TEST

START_TEST(test_from_rendering)
{
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg, *f, *e;

    v.from = "noreply@acme.example";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_ptr_nonnull(strstr(msg, "\r\nFrom: noreply@acme.example\r\n"));

    v.from = "\"Acme, Inc.\" <noreply@acme.example>";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_ptr_nonnull(
        strstr(msg, "\r\nFrom: \"Acme, Inc.\" <noreply@acme.example>\r\n"));

    v.from = "Caf\xC3\xA9 Acme <noreply@acme.example>";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    f = strstr(msg, "\r\nFrom: =?UTF-8?B?");
    ck_assert_ptr_nonnull(f);
    f += 8;
    e = strstr(f, " <noreply@acme.example>\r\n");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(decode_words(apr_pstrmemdup(pool, f, (size_t)(e - f))),
                     "Caf\xC3\xA9 Acme");
    ck_assert_uint_le(max_line(headers_of(msg)), 78);

    /* fuzz_mail: a name of only C1 controls (U+009C) cleans to nothing: no
     * display name, and no "From:" line folded before a long <addr> */
    v.from = "\xC2\x9C <n@yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy."
             "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy.example>";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_ptr_nonnull(strstr(msg, "\r\nFrom: n@yyyy"));
    ck_assert_ptr_nonnull(strstr(msg, "yyyy.example\r\nTo: "));
}
END_TEST

/* --- body ----------------------------------------------------------------- */

START_TEST(test_qp_body)
{
    hs_mail_template t = {"Test", NULL};
    hs_mail_vars v = base_vars();
    char *longline = apr_palloc(pool, 301);
    const char *msg, *body, *dec;
    size_t len;
    int i;

    for (i = 0; i < 300; i++) {
        longline[i] = (char)('a' + i % 26);
    }
    longline[300] = '\0';
    t.body = apr_pstrcat(pool,
                         "a=b\r\n"
                         "trailing   \r\n"
                         "tab\t\r\n"
                         "caf\xC3\xA9\r\n"
                         "{{code}}\r\n",
                         longline, "\r\n",
                         "=================================================="
                         "=================================================="
                         "\r\n",
                         NULL);
    msg = render(&t, &v, &len);
    assert_crlf(msg, len);
    body = body_of(msg);
    ck_assert(strncmp(body,
                      "a=3Db\r\n"
                      "trailing  =20\r\n"
                      "tab=09\r\n"
                      "caf=C3=A9\r\n"
                      "123456\r\n",
                      strlen("a=3Db\r\ntrailing  =20\r\ntab=09\r\n"
                             "caf=C3=A9\r\n123456\r\n")) == 0);
    ck_assert_uint_le(max_line(body), 76);
    /* only printable ASCII in the encoded body, no trailing white space */
    for (i = 0; body[i]; i++) {
        unsigned char c = (unsigned char)body[i];
        ck_assert(c == '\r' || c == '\n' || (c >= 32 && c <= 126));
        if (c == '\r') {
            ck_assert(i == 0 || (body[i - 1] != ' ' && body[i - 1] != '\t'));
        }
    }
    dec = qp_decode(body);
    ck_assert_str_eq(dec, apr_pstrcat(pool,
                                      "a=b\r\ntrailing   \r\ntab\t\r\n"
                                      "caf\xC3\xA9\r\n123456\r\n",
                                      longline, "\r\n",
                                      "=================================="
                                      "================================"
                                      "=================================="
                                      "\r\n",
                                      NULL));
    /* a line of exactly 76 stays whole; 77 gets a soft break */
    t.body = apr_pstrcat(pool, apr_pstrndup(pool, longline, 76), "\r\n",
                         apr_pstrndup(pool, longline, 77), "\r\n", NULL);
    msg = render(&t, &v, &len);
    body = body_of(msg);
    ck_assert_str_eq(
        body, apr_pstrcat(pool, apr_pstrndup(pool, longline, 76), "\r\n",
                          apr_pstrndup(pool, longline, 75), "=\r\n",
                          apr_pstrndup(pool, longline + 75, 2), "\r\n", NULL));
}
END_TEST

START_TEST(test_code_line_once)
{
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg, *dec, *s;
    int alone = 0, any = 0;

    v.code = "987654";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    dec = qp_decode(body_of(msg));
    for (s = dec; (s = strstr(s, "987654")) != NULL; s++) {
        any++;
    }
    for (s = dec; *s;) {
        const char *e = strstr(s, "\r\n");
        if ((size_t)(e - s) == 6 && strncmp(s, "987654", 6) == 0) {
            alone++;
        }
        s = e + 2;
    }
    ck_assert_int_eq(any, 1);
    ck_assert_int_eq(alone, 1);
    ck_assert_ptr_null(strstr(headers_of(msg), "987654"));

    /* no code for a template that needs one */
    v.code = NULL;
    ck_assert_ptr_nonnull(hs_mail_render(
        pool, hs_mail_default_template(HS_MAIL_VERIFY), &v, &msg, &len));
    v.code = "12\r\n34";
    ck_assert_ptr_nonnull(hs_mail_render(
        pool, hs_mail_default_template(HS_MAIL_VERIFY), &v, &msg, &len));
}
END_TEST

START_TEST(test_body_value_controls)
{
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg, *dec;

    v.company = "Acme\r\n\r\nBcc: evil@x";
    v.site_url = "https://x\r\n.example";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    dec = qp_decode(body_of(msg));
    ck_assert_ptr_nonnull(strstr(dec, "for Acme    Bcc: evil[@]x is:"));
    ck_assert_ptr_nonnull(strstr(dec, "https://x  .example\r\n"));
}
END_TEST

/* --- templates ------------------------------------------------------------ */

START_TEST(test_template_parse)
{
    hs_mail_template *t = NULL;
    const char *text = "Subject: Welcome\n"
                       "\n"
                       "Hi {{email}},\n"
                       "   {{code}}  \n"
                       "Expires in {{expiry_minutes}} min: {{site_url}}";
    const char *err =
        hs_mail_template_parse(pool, text, strlen(text), HS_MAIL_VERIFY, &t);

    ck_assert_msg(err == NULL, "%s", err ? err : "");
    ck_assert_str_eq(t->subject, "Welcome");
    ck_assert_str_eq(t->body, "Hi {{email}},\r\n   {{code}}  \r\n"
                              "Expires in {{expiry_minutes}} min: "
                              "{{site_url}}\r\n");

    /* CRLF input gives the same, a BOM is skipped */
    text = "\xEF\xBB\xBFSubject: Welcome\r\n\r\n"
           "Hi {{email}},\r\n   {{code}}  \r\n"
           "Expires in {{expiry_minutes}} min: {{site_url}}\r\n";
    err = hs_mail_template_parse(pool, text, strlen(text), HS_MAIL_VERIFY, &t);
    ck_assert_msg(err == NULL, "%s", err ? err : "");
    ck_assert_str_eq(t->subject, "Welcome");
    ck_assert_str_eq(t->body, "Hi {{email}},\r\n   {{code}}  \r\n"
                              "Expires in {{expiry_minutes}} min: "
                              "{{site_url}}\r\n");

    /* an exists template without a code */
    text = "Subject: Your account\n\nYou already have an account.\n";
    err = hs_mail_template_parse(pool, text, strlen(text), HS_MAIL_EXISTS, &t);
    ck_assert_msg(err == NULL, "%s", err ? err : "");
}
END_TEST

static const char *parse_err(const char *text, hs_mail_kind kind)
{
    hs_mail_template *t = (hs_mail_template *)1;
    const char *err =
        hs_mail_template_parse(pool, text, strlen(text), kind, &t);
    ck_assert_msg(err != NULL, "accepted: %s", text);
    ck_assert_ptr_null(t);
    return err;
}

START_TEST(test_template_errors)
{
    ck_assert_str_eq(parse_err("Hello\n\n{{code}}\n", HS_MAIL_VERIFY),
                     "the first line must be \"Subject: ...\"");
    ck_assert_str_eq(parse_err("\nSubject: x\n\n{{code}}\n", HS_MAIL_VERIFY),
                     "the first line must be \"Subject: ...\"");
    ck_assert_str_eq(parse_err("Subject:   \n\n{{code}}\n", HS_MAIL_VERIFY),
                     "the Subject line is empty");
    ck_assert_str_eq(parse_err("Subject: x\nbody\n{{code}}\n", HS_MAIL_VERIFY),
                     "the Subject line must be followed by an empty line");
    ck_assert_ptr_nonnull(strstr(
        parse_err("Subject: x\n\nHi {{name}}\n{{code}}\n", HS_MAIL_VERIFY),
        "line 3: unknown placeholder {{name}}"));
    ck_assert_ptr_nonnull(
        strstr(parse_err("Subject: {{Company}}\n\n{{code}}\n", HS_MAIL_VERIFY),
               "line 1: unknown placeholder {{Company}}"));
    /* issue 12: visitor text never in the Subject, at most once below */
    ck_assert_ptr_nonnull(
        strstr(parse_err("Subject: Welcome to {{company}}\n\n{{code}}\n",
                         HS_MAIL_VERIFY),
               "the Subject cannot use {{company}}"));
    ck_assert_ptr_nonnull(
        strstr(parse_err("Subject: Hi\n\n{{company}}\n{{code}}\n{{company}}\n",
                         HS_MAIL_VERIFY),
               "more than once"));
    ck_assert_ptr_nonnull(strstr(
        parse_err("Subject: Hi\n\n{{company}} {{company}}\n", HS_MAIL_EXISTS),
        "more than once"));
    ck_assert_ptr_nonnull(strstr(
        parse_err("Subject: x\n\n{{code}}\nHi {{company\n", HS_MAIL_VERIFY),
        "line 4: unterminated placeholder"));
    ck_assert_str_eq(
        parse_err("Subject: x\n\nYour code is {{code}}.\n", HS_MAIL_VERIFY),
        "the verification template needs {{code}} on a line of its own");
    ck_assert_str_eq(parse_err("Subject: x\n\nNo code here.\n", HS_MAIL_VERIFY),
                     "the verification template needs {{code}} on a line of "
                     "its own");
    ck_assert_str_eq(
        parse_err("Subject: x\n\n{{code}} {{code}}\n", HS_MAIL_VERIFY),
        "the verification template needs {{code}} on a line of "
        "its own");
    ck_assert_ptr_nonnull(
        strstr(parse_err("Subject: x\n\n{{code}}\n", HS_MAIL_EXISTS),
               "cannot use {{code}}"));
    ck_assert_str_eq(parse_err("Subject: x\n\n  \n\n", HS_MAIL_EXISTS),
                     "the template has no body");
    ck_assert_str_eq(parse_err("Subject: x", HS_MAIL_EXISTS),
                     "the Subject line must be followed by an empty line and "
                     "the body");
    ck_assert_str_eq(parse_err("Subject: x\n\n\xFF\n", HS_MAIL_EXISTS),
                     "line 3 is not valid UTF-8");
    ck_assert_str_eq(parse_err("Subject: x\n\na\x01\n", HS_MAIL_EXISTS),
                     "line 3 contains a control character");
    ck_assert_str_eq(parse_err("Subject: x\n\na\rb\n", HS_MAIL_EXISTS),
                     "line 3 contains a control character");
    ck_assert_str_eq(parse_err("", HS_MAIL_EXISTS), "the template is empty");
    {
        hs_mail_template *t;
        ck_assert_str_eq(hs_mail_template_parse(pool, "Subject: x\n\na\0b\n",
                                                15, HS_MAIL_EXISTS, &t),
                         "the template contains a NUL byte");
    }
}
END_TEST

START_TEST(test_defaults)
{
    const hs_mail_template *vt = hs_mail_default_template(HS_MAIL_VERIFY);
    const hs_mail_template *et = hs_mail_default_template(HS_MAIL_EXISTS);
    const char *tv =
        apr_pstrcat(pool, "Subject: ", vt->subject, "\r\n\r\n", vt->body, NULL);
    const char *te =
        apr_pstrcat(pool, "Subject: ", et->subject, "\r\n\r\n", et->body, NULL);
    hs_mail_template *t;

    ck_assert_ptr_null(strstr(et->body, "{{code}}"));
    ck_assert_ptr_null(strstr(et->subject, "{{code}}"));
    /* issue 12: no visitor text in the built-in Subjects */
    ck_assert_ptr_null(strstr(vt->subject, "{{company}}"));
    ck_assert_ptr_null(strstr(et->subject, "{{company}}"));
    ck_assert_ptr_null(
        hs_mail_template_parse(pool, tv, strlen(tv), HS_MAIL_VERIFY, &t));
    ck_assert_str_eq(t->subject, vt->subject);
    ck_assert_str_eq(t->body, vt->body);
    ck_assert_ptr_null(
        hs_mail_template_parse(pool, te, strlen(te), HS_MAIL_EXISTS, &t));
    ck_assert_str_eq(t->body, et->body);
    ck_assert_ptr_nonnull(strstr(vt->body, "\r\n{{code}}\r\n"));
    ck_assert_ptr_nonnull(strstr(vt->body, "{{expiry_minutes}} minutes."));
}
END_TEST

/* conf/mail-*.tmpl must be the built-in defaults */
static char *read_conf(const char *name)
{
    const char *dirs[] = {getenv("HS_TOP_SRCDIR"), ".", "..", "../..",
                          "../../.."};
    size_t i;

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *path, *buf;
        FILE *f;
        size_t n;
        if (dirs[i] == NULL) {
            continue;
        }
        path = apr_pstrcat(pool, dirs[i], "/conf/", name, NULL);
        f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        buf = hs_unit_slurp(pool, f, &n);
        fclose(f);
        return buf;
    }
    return NULL;
}

START_TEST(test_conf_files)
{
    const char *names[] = {"mail-verify.tmpl", "mail-exists.tmpl"};
    hs_mail_kind kinds[] = {HS_MAIL_VERIFY, HS_MAIL_EXISTS};
    int i;

    for (i = 0; i < 2; i++) {
        char *text = read_conf(names[i]);
        hs_mail_template *t;
        const char *err;
        if (text == NULL) {
            fprintf(stderr,
                    "test_conf_files: conf/%s not found, skipped "
                    "(set HS_TOP_SRCDIR)\n",
                    names[i]);
            continue;
        }
        err = hs_mail_template_parse(pool, text, strlen(text), kinds[i], &t);
        ck_assert_msg(err == NULL, "%s: %s", names[i], err ? err : "");
        ck_assert_str_eq(t->subject,
                         hs_mail_default_template(kinds[i])->subject);
        ck_assert_str_eq(t->body, hs_mail_default_template(kinds[i])->body);
    }
}
END_TEST

/* issue 12: a company name a mail client would make a link of */
START_TEST(test_company_defused)
{
    hs_mail_vars v = base_vars();
    size_t len;
    const char *msg, *body, *p;
    int n;

    ck_assert_str_eq(hs_mail_defuse(pool, "https://evil.example/x"),
                     "https[://]evil[.]example/x");
    ck_assert_str_eq(hs_mail_defuse(pool, "www.evil.com"), "www[.]evil[.]com");
    ck_assert_str_eq(hs_mail_defuse(pool, "mail boss@evil.com now"),
                     "mail boss[@]evil[.]com now");
    ck_assert_str_eq(hs_mail_defuse(pool, "Acme Inc. and Co."),
                     "Acme Inc. and Co.");
    ck_assert_str_eq(hs_mail_defuse(pool, "evil\xE3\x80\x82"
                                          "com"),
                     "evil[.]com");
    ck_assert_str_eq(hs_mail_defuse(pool, "a\xEF\xBC\xA0"
                                          "b"),
                     "a[@]b");
    ck_assert_str_eq(hs_mail_defuse(pool, ""), "");

    v.company = "Visit https://evil.example or www.evil.example, mail "
                "boss@evil.example";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_str_eq(subject_of(msg), "Your verification code");
    body = qp_decode(body_of(msg));
    ck_assert_ptr_null(strstr(body, "://evil"));
    ck_assert_ptr_null(strstr(body, "www."));
    ck_assert_ptr_null(strstr(body, "boss@"));
    ck_assert_ptr_null(strstr(body, "evil.example"));
    for (n = 0, p = body; (p = strstr(p, "boss[@]evil[.]example")); p++) {
        n++;
    }
    ck_assert_int_eq(n, 1);
    msg = render(hs_mail_default_template(HS_MAIL_EXISTS), &v, &len);
    ck_assert_str_eq(subject_of(msg), "Your account");
    ck_assert_ptr_nonnull(
        strstr(qp_decode(body_of(msg)), "Visit https[://]evil[.]example"));
}
END_TEST

START_TEST(test_bad_vars)
{
    hs_mail_vars v = base_vars();
    const char *msg;
    size_t len;

    v.hostname = "web1\r\nBcc: x";
    ck_assert_ptr_nonnull(hs_mail_render(
        pool, hs_mail_default_template(HS_MAIL_VERIFY), &v, &msg, &len));
    v = base_vars();
    v.now = -1;
    ck_assert_ptr_nonnull(hs_mail_render(
        pool, hs_mail_default_template(HS_MAIL_VERIFY), &v, &msg, &len));
    v = base_vars();
    ck_assert_ptr_nonnull(hs_mail_render_with_id(
        pool, hs_mail_default_template(HS_MAIL_VERIFY), &v, "a>b", &msg, &len));
    ck_assert_ptr_nonnull(hs_mail_render(pool, NULL, &v, &msg, &len));
    /* a host name that is no dot-atom is made one */
    v.hostname = "fe80::1";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_ptr_nonnull(strstr(msg, "@fe80--1>\r\n"));
    v.hostname = ".a..b.";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_ptr_nonnull(strstr(msg, "@-a-.b->\r\n"));
    v.hostname = "";
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_ptr_nonnull(strstr(msg, "@localhost>\r\n"));
    /* NULL hostname: this host's name */
    v.hostname = NULL;
    msg = render(hs_mail_default_template(HS_MAIL_VERIFY), &v, &len);
    ck_assert_ptr_nonnull(strstr(msg, "\r\nMessage-ID: <1700000000."));
}
END_TEST

static Suite *mail_suite(void)
{
    const TTest *const tests[] = {
        test_exact_message,
        test_generated_message_id,
        test_header_order_and_crlf,
        test_date_format,
        test_subject_japanese,
        test_subject_long_folding,
        test_subject_injection,
        test_to_from_refused,
        test_check_from,
        test_from_rendering,
        test_qp_body,
        test_code_line_once,
        test_body_value_controls,
        test_template_parse,
        test_template_errors,
        test_defaults,
        test_conf_files,
        test_bad_vars,
        test_company_defused,
    };

    return hs_unit_suite("mail", "core", setup, teardown, 0, tests,
                         HS_UNIT_COUNT(tests), NULL);
}

HS_UNIT_MAIN(mail_suite)
