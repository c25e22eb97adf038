/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_sitelabel.h - the DNS label in a customer's site_url, made from the
 * company name: lower-case ASCII letters, digits and '-', at most 63
 * characters, "site" when nothing is left; "-2", "-3", ... on a clash.
 *
 * httpd-free: APR only.
 */
#ifndef HS_SITELABEL_H
#define HS_SITELABEL_H

#include <apr_pools.h>

#define HS_LABEL_MAX 63
/* the longest start every numbered label of a name shares: HS_LABEL_MAX
 * less "-" and a 9-digit number */
#define HS_LABEL_BASE_MAX (HS_LABEL_MAX - 10)

/* The label for company (UTF-8), with suffix n (n <= 1: none, else "-n"),
 * never longer than HS_LABEL_MAX; the base is cut to make room. */
const char *hs_site_label(apr_pool_t *p, const char *company, int n);

/* The key of company's numbered labels (the counter in the table
 * hydra_signup_labels, sql/006_labels.sql): its plain label cut to
 * HS_LABEL_BASE_MAX characters, trailing '-' dropped. Every
 * hs_site_label(company, n) with 2 <= n <= 999999999 starts with it, so
 * names whose labels can clash share one counter. */
const char *hs_site_label_base(apr_pool_t *p, const char *company);

#endif /* HS_SITELABEL_H */
