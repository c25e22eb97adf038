-- SPDX-License-Identifier: Apache-2.0
-- 006: the numbered site labels of a company name come from a counter,
-- one indexed upsert per label, instead of a look at every customer and
-- decoy of the tenant (issue 11). The module's own table only.
--
-- base: the company's plain label (hs_site_label, src/core/sitelabel.c)
-- cut to 53 characters (HS_LABEL_BASE_MAX: 63 less "-" and 9 digits) and
-- stripped of trailing '-', so every numbered label of the name starts
-- with it whatever the length of its number; n: the highest number handed
-- out. A signup whose plain label is taken takes n + 1 (the row is locked
-- until its COMMIT; a rolled back signup gives its number back). The
-- unique index on customers (tenant_id, site_url) stays the arbiter: a
-- label taken by a row written by hand is skipped by taking the next.
CREATE TABLE hydra_signup_labels (
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    base      text NOT NULL,
    n         int NOT NULL,
    PRIMARY KEY (tenant_id, base)
);

-- Each counter starts at the highest number in use by a customer or a
-- decoy ("<stem>-<1 to 9 digits>." in site_url; the stem cut as above).
INSERT INTO hydra_signup_labels (tenant_id, base, n)
SELECT tenant_id, rtrim(left(m[1], 53), '-'), max(m[2]::int)
FROM (SELECT tenant_id,
             regexp_match(site_url, '^https://([a-z0-9-]+)-([0-9]{1,9})\.') AS m
      FROM customers
      UNION ALL
      SELECT tenant_id,
             regexp_match(site_url, '^https://([a-z0-9-]+)-([0-9]{1,9})\.')
      FROM hydra_signup_decoys) AS used
WHERE m IS NOT NULL AND rtrim(left(m[1], 53), '-') <> ''
GROUP BY 1, 2;
