-- SPDX-License-Identifier: Apache-2.0
-- 002: what the signup module adds: uniqueness the module relies on,
-- verification codes (HMAC only), refresh token ids (hashed), and the
-- per-address mail log behind HydraSignupMailsPerHour.

-- one customer per address per tenant, compared case-insensitively
CREATE UNIQUE INDEX customers_tenant_email_key
    ON customers (tenant_id, lower(email));
-- site labels are unique per tenant (site_url embeds the label)
CREATE UNIQUE INDEX customers_tenant_site_url_key
    ON customers (tenant_id, site_url);
CREATE INDEX customers_pending_created_idx
    ON customers (created_at) WHERE status = 'pending';
CREATE INDEX nodes_tenant_idx ON nodes (tenant_id) WHERE active AND kind = 'shared';

CREATE TABLE hydra_signup_codes (
    customer_id uuid PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    code_hmac   text NOT NULL,          -- hex HMAC-SHA256 under the code secret
    expires_at  timestamptz NOT NULL,
    attempts    int NOT NULL DEFAULT 0,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    void        boolean NOT NULL DEFAULT false,   -- too many attempts / consumed
    consumed_at timestamptz
);

CREATE TABLE hydra_signup_refresh_tokens (
    jti_hash    text PRIMARY KEY,       -- hex SHA-256 of the refresh token's jti
    customer_id uuid NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

CREATE TABLE hydra_signup_mail_log (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email_lower text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hydra_signup_mail_log_idx
    ON hydra_signup_mail_log (tenant_id, email_lower, sent_at);
