/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mail.c - libFuzzer harness for src/core/mail.c.
 *
 * Input: one flag byte, then NUL-separated fields company, to, from,
 * site_url and (optionally) template text. Flag bit 0 picks the kind
 * (verify / exists), bit 1 uses the template field instead of the default.
 * Whatever the bytes, a rendered message must have exactly our headers in
 * our order (folded lines start with a space), CRLF line ends only, no bare
 * CR or LF, Subject lines of at most 78 characters, and a quoted-printable
 * body of printable ASCII (and TAB) lines of at most 76 characters.
 *
 * Built and run by `make fuzz-build` / `make fuzz` (fuzz/README.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apr_pools.h>

#include "fuzz_apr.h"

#include "hs_mail.h"
#include "../tests/unit/mail_headers.h"

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            abort();                                                           \
        }                                                                      \
    } while (0)

static int has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7F) {
            return 1;
        }
    }
    return 0;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void check_message(const char *msg, size_t len, const char *to)
{
    size_t i, next = 0, cur = 0, nlines = 0;
    const char *s = msg, *end = msg + len;
    int in_body = 0;

    CHECK(len >= 2 && strlen(msg) == len);
    CHECK(msg[len - 2] == '\r' && msg[len - 1] == '\n');
    for (i = 0; i < len; i++) {
        if (msg[i] == '\r') {
            CHECK(i + 1 < len && msg[i + 1] == '\n');
        }
        if (msg[i] == '\n') {
            CHECK(i > 0 && msg[i - 1] == '\r');
        }
    }
    while (s < end) {
        const char *e = strstr(s, "\r\n");
        size_t n, j;

        CHECK(e != NULL);
        n = (size_t)(e - s);
        if (!in_body) {
            if (n == 0) {
                CHECK(next == MAIL_NHEADERS);
                in_body = 1;
            }
            else if (s[0] == ' ') {
                /* a continuation of the current header, not blank */
                CHECK(next > 0 && nlines > 0);
                CHECK(strspn(s, " ") < n);
                cur = next - 1;
                if (cur == 3) {
                    CHECK(n <= 78);
                }
            }
            else {
                CHECK(next < MAIL_NHEADERS);
                CHECK(strncmp(s, mail_headers[next],
                              strlen(mail_headers[next])) == 0);
                cur = next++;
                if (cur == 2) {
                    CHECK(n == 4 + strlen(to) && memcmp(s + 4, to, n - 4) == 0);
                }
                if (cur == 3) {
                    CHECK(n <= 78);
                }
            }
            CHECK(n <= 998);
            for (j = 0; j < n; j++) {
                unsigned char c = (unsigned char)s[j];
                CHECK(c >= 0x20 && c != 0x7F);
                if (cur != 2) {
                    CHECK(c <= 0x7E); /* only To may carry raw UTF-8 */
                }
            }
            nlines++;
        }
        else {
            CHECK(n <= 76);
            for (j = 0; j < n; j++) {
                unsigned char c = (unsigned char)s[j];
                CHECK((c >= 0x20 && c <= 0x7E) || c == '\t');
                if (c == '=') {
                    CHECK(j + 1 == n ||
                          (j + 2 < n && is_hex(s[j + 1]) && is_hex(s[j + 2])));
                }
            }
            CHECK(n == 0 || (s[n - 1] != ' ' && s[n - 1] != '\t'));
        }
        s = e + 2;
    }
    CHECK(in_body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *field[5] = {"", "", "", "", NULL};
    apr_pool_t *p;
    char *buf;
    size_t i, nf = 0, start = 0;
    unsigned flags;
    hs_mail_kind kind;
    const hs_mail_template *t;
    hs_mail_vars v;
    const char *msg = NULL, *err;
    size_t len = 0;

    if (size < 1) {
        return 0;
    }
    flags = data[0];
    kind = (flags & 1) ? HS_MAIL_EXISTS : HS_MAIL_VERIFY;
    apr_pool_create(&p, NULL);
    buf = apr_palloc(p, size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    for (i = 0; i < size && nf < 5; i++) {
        if (buf[i] == '\0') {
            field[nf++] = buf + start;
            start = i + 1;
        }
    }

    t = hs_mail_default_template(kind);
    if ((flags & 2) && field[4] != NULL) {
        hs_mail_template *pt = NULL;
        err = hs_mail_template_parse(p, field[4], strlen(field[4]), kind, &pt);
        if (err == NULL) {
            CHECK(pt != NULL && pt->subject && pt->body);
            CHECK(strlen(pt->body) >= 2 &&
                  strcmp(pt->body + strlen(pt->body) - 2, "\r\n") == 0);
            if (kind == HS_MAIL_VERIFY) {
                CHECK(strstr(pt->body, "{{code}}") != NULL);
            }
            else {
                CHECK(strstr(pt->body, "{{code}}") == NULL);
            }
            t = pt;
        }
        else {
            CHECK(pt == NULL);
        }
    }

    memset(&v, 0, sizeof(v));
    v.company = field[0];
    v.to = field[1];
    v.from = field[2];
    v.site_url = field[3];
    v.code = kind == HS_MAIL_VERIFY ? "123456" : NULL;
    v.expiry_minutes = 15;
    v.hostname = "fuzz.example";
    v.now = 1700000000LL + (long long)(flags >> 2) * 86400 * 97;

    err = hs_mail_render(p, t, &v, &msg, &len);
    if (has_control(v.to) || has_control(v.from) ||
        hs_mail_check_from(p, v.from) != NULL) {
        CHECK(err != NULL);
    }
    if (err == NULL) {
        check_message(msg, len, v.to);
    }
    else {
        CHECK(msg == NULL);
    }
    apr_pool_destroy(p);
    return 0;
}
