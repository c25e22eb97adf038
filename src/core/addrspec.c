/* SPDX-License-Identifier: Apache-2.0 */
/*
 * addrspec.c - one bare address local@domain (see hs_addrspec.h).
 */
#include "hs_addrspec.h"

#include <stdint.h>
#include <string.h>

#include "hs_utf8.h"

int hs_addrspec_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int hs_addrspec_strict(const char *a, size_t n)
{
    const char *at;
    size_t i, local, label = 0;

    if (n < 3 || n > HS_ADDRSPEC_MAX) {
        return 0;
    }
    at = memchr(a, '@', n);
    if (at == NULL) {
        return 0;
    }
    local = (size_t)(at - a);
    if (local == 0 || local > 64 || a[0] == '.' || a[local - 1] == '.') {
        return 0;
    }
    for (i = 0; i < local; i++) {
        if (a[i] == '.') {
            if (a[i + 1] == '.') {
                return 0;
            }
        }
        else if (!hs_addrspec_atext((unsigned char)a[i])) {
            return 0;
        }
    }
    if (local + 1 >= n) {
        return 0;
    }
    for (i = local + 1; i <= n; i++) {
        char c = i < n ? a[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || a[i - 1] == '-') {
                return 0;
            }
            label = 0;
        }
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-') {
            if (label == 0 && c == '-') {
                return 0;
            }
            label++;
        }
        else {
            return 0;
        }
    }
    return 1;
}

hs_addrspec_status hs_addrspec_check(const char *s, size_t n)
{
    const char *at;
    size_t i, ats = 0;

    if (s == NULL || n == 0) {
        return HS_ADDRSPEC_EMPTY;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return HS_ADDRSPEC_CONTROL;
        }
    }
    if (n > HS_ADDRSPEC_MAX) {
        return HS_ADDRSPEC_LONG;
    }
    if (hs_utf8_length(s, n) < 0) {
        return HS_ADDRSPEC_NOT_UTF8;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == ' ' || strchr("()<>[]:;,\"\\", s[i]) != NULL) {
            return HS_ADDRSPEC_NOT_ONE;
        }
        ats += s[i] == '@';
    }
    at = memchr(s, '@', n);
    if (ats != 1 || at == s || at == s + n - 1) {
        return HS_ADDRSPEC_NOT_ONE;
    }
    return HS_ADDRSPEC_OK;
}
