-- 003: issue 12 (abuse resistance), the module's own tables only.
--
-- The decoy of a concealed active address (HydraSignupConcealExisting On):
-- what a pending signup of that address would keep, so that the concealed
-- answers match a pending signup's - the site_url of the first answer (kept
-- on a re-signup under another company name, and taken: the label lookup
-- of new signups considers it), and when its last "code" went out (resend
-- interval; a slot is needed again once that code would have expired).
-- The platform's tables are never written for a decoy.
CREATE TABLE hydra_signup_decoys (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email_lower text NOT NULL,
    site_url    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, email_lower)
);
CREATE UNIQUE INDEX hydra_signup_decoys_site_key
    ON hydra_signup_decoys (tenant_id, site_url);
CREATE INDEX hydra_signup_decoys_sent_idx
    ON hydra_signup_decoys (tenant_id, sent_at);

-- HydraSignupTenantMailsPerHour counts a tenant's codes of the last hour;
-- the mail log's email_lower now holds the mailbox (lower case, no +tag).
CREATE INDEX hydra_signup_mail_log_tenant_idx
    ON hydra_signup_mail_log (tenant_id, sent_at);
