/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c - hex and write_all (see hs_util.h).
 */
#include "hs_util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

char hs_hex_digit(unsigned v, int upper)
{
    static const char lower_digits[] = "0123456789abcdef";
    static const char upper_digits[] = "0123456789ABCDEF";

    return (upper ? upper_digits : lower_digits)[v & 0x0f];
}

void hs_hex_encode(char *out, const unsigned char *in, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = hs_hex_digit(in[i] >> 4, 0);
        out[2 * i + 1] = hs_hex_digit(in[i], 0);
    }
    out[2 * len] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int hs_hex_decode(unsigned char *out, size_t n, const char *hex)
{
    size_t i;

    if (hex == NULL || strlen(hex) != 2 * n) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int hs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
