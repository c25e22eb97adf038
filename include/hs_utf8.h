/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_utf8.h - strict UTF-8 decoding (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), shared by the JSON pre-scan, the
 * validators and the mail builder.
 *
 * httpd-free: no dependencies.
 */
#ifndef HS_UTF8_H
#define HS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the well-formed sequence at s (n bytes available) into *cp and
 * returns its length (1-4), or 0 when it is malformed or cut short. */
size_t hs_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Number of Unicode code points in s[0..len), or -1 when s is not valid
 * UTF-8. */
long hs_utf8_length(const char *s, size_t len);

#endif /* HS_UTF8_H */
