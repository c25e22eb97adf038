/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sitelabel.c - company name -> DNS label (see hs_sitelabel.h).
 */
#include <string.h>

#include <apr_strings.h>

#include "hs_sitelabel.h"

/* Latin-1 supplement letters (U+00C0..U+00FF) folded to an ASCII letter, so
 * that "Café Müller" becomes "cafe-muller"; 0 where there is none. */
static const char latin1_fold[64] = "aaaaaaaceeeeiiiidnooooo\0ouuuuyts"
                                    "aaaaaaaceeeeiiiidnooooo\0ouuuuyty";

const char *hs_site_label(apr_pool_t *p, const char *company, int n)
{
    char base[HS_LABEL_MAX + 1];
    size_t len = 0, room;
    int dash = 0;
    const unsigned char *s = (const unsigned char *)company;
    char suffix[16] = "";

    if (n > 1) {
        apr_snprintf(suffix, sizeof(suffix), "-%d", n);
    }
    room = HS_LABEL_MAX - strlen(suffix);

    while (*s && len < room) {
        char c = 0;
        if (*s < 0x80) {
            c = (char)*s;
            if (c >= 'A' && c <= 'Z') {
                c = (char)(c - 'A' + 'a');
            }
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
                c = 0;
            }
            s++;
        }
        else if ((s[0] == 0xC3) && s[1] >= 0x80 && s[1] <= 0xBF) {
            /* U+00C0..U+00FF */
            c = latin1_fold[s[1] - 0x80];
            s += 2;
        }
        else {
            /* any other code point: skip its continuation bytes */
            s++;
            while ((*s & 0xC0) == 0x80) {
                s++;
            }
        }
        if (c) {
            if (dash && len > 0) {
                base[len++] = '-';
                if (len >= room) {
                    break;
                }
            }
            dash = 0;
            base[len++] = c;
        }
        else {
            dash = 1;
        }
    }
    while (len > 0 && base[len - 1] == '-') {
        len--;
    }
    if (len == 0) {
        memcpy(base, "site", 4);
        len = 4;
    }
    base[len] = '\0';
    return apr_pstrcat(p, base, suffix, NULL);
}

const char *hs_site_label_base(apr_pool_t *p, const char *company)
{
    const char *label = hs_site_label(p, company, 1);
    size_t len = strlen(label);

    if (len > HS_LABEL_BASE_MAX) {
        len = HS_LABEL_BASE_MAX;
    }
    while (len > 1 && label[len - 1] == '-') {
        len--;
    }
    return apr_pstrmemdup(p, label, len);
}
