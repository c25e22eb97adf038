/* SPDX-License-Identifier: Apache-2.0 */
/*
 * utf8.c - strict UTF-8 decoding (see hs_utf8.h).
 */
#include "hs_utf8.h"

size_t hs_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len, i;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    /* the second byte's range is narrower after E0 (no overlongs), ED (no
     * surrogates), F0 (no overlongs) and F4 (nothing past U+10FFFF) */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    }
    else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

long hs_utf8_length(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    long count = 0;

    while (i < len) {
        uint32_t cp;
        size_t n = hs_utf8_decode(u + i, len - i, &cp);

        if (n == 0) {
            return -1;
        }
        i += n;
        count++;
    }
    return count;
}
