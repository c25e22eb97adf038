-- SPDX-License-Identifier: Apache-2.0
-- sql/reclaim.sql - give back the node slots of pending signups that were
-- never verified, for every tenant at once (the module does the same per
-- tenant whenever a signup finds no free slot). Safe to run from cron while
-- the module serves requests: one statement, one transaction.
--
--   psql "$DSN" -v ttl=259200 -f sql/reclaim.sql
--
-- ttl is HydraSignupPendingTTL in seconds; a signup counts as abandoned
-- when both it and its last mailed code are older than that.
WITH gone AS (
    DELETE FROM customers c
    WHERE c.status = 'pending'
      AND c.created_at < now() - :'ttl'::int * interval '1 second'
      AND NOT EXISTS (SELECT 1 FROM hydra_signup_codes k
                      WHERE k.customer_id = c.id
                        AND k.sent_at >= now() - :'ttl'::int * interval '1 second')
    RETURNING c.node_id),
freed AS (
    SELECT node_id, count(*) AS n FROM gone
    WHERE node_id IS NOT NULL GROUP BY node_id),
pruned AS (
    DELETE FROM hydra_signup_mail_log WHERE sent_at < now() - interval '1 day')
UPDATE nodes SET used = used - freed.n FROM freed
WHERE nodes.id = freed.node_id;
