-- SPDX-License-Identifier: Apache-2.0
-- 008: the reaper prunes the mail log by age (sent_at older than a day)
-- each time it runs, and nothing could find those rows but a scan of the
-- whole log (hundreds of milliseconds at a few hundred thousand rows). The
-- tenant index of 004 served the tenant's mail count, which 005 moved to
-- hydra_signup_tenant_mails; an index on sent_at takes its place, so a
-- signup still writes two index entries into the log.
DROP INDEX IF EXISTS hydra_signup_mail_log_tenant_idx;
CREATE INDEX hydra_signup_mail_log_sent_idx
    ON hydra_signup_mail_log (sent_at);
