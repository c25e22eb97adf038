/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_util.h - small helpers written once for the core and the sender:
 * hexadecimal and a write(2) that does not stop half way.
 *
 * httpd-free, APR-free: the sender links it too.
 */
#ifndef HS_UTIL_H
#define HS_UTIL_H

#include <stddef.h>

/* Writes len bytes of in as 2 * len lowercase hex digits and a NUL into out
 * (2 * len + 1 bytes). */
void hs_hex_encode(char *out, const unsigned char *in, size_t len);

/* The hex digit of v (0-15): lowercase, or uppercase when upper is set
 * (RFC 2045 quoted-printable wants uppercase). */
char hs_hex_digit(unsigned v, int upper);

/* Reads exactly 2 * n lowercase hex digits (the whole NUL-terminated hex)
 * into n bytes of out. 0, or -1 when hex is NULL, of another length or not
 * lowercase hex. */
int hs_hex_decode(unsigned char *out, size_t n, const char *hex);

/* Writes all len bytes to fd, retrying on EINTR and short writes. 0, or -1
 * with errno set (EIO when write returned 0). */
int hs_write_all(int fd, const void *data, size_t len);

#endif /* HS_UTIL_H */
