-- SPDX-License-Identifier: Apache-2.0
-- sql/reclaim.sql - a manual tool: what the module's reaper does every
-- HydraSignupReapInterval seconds inside httpd (no cron job is needed), for
-- every tenant at once. Safe to run while the module serves requests: rows
-- another transaction holds are skipped (the next run takes them).
--
--   psql "$DSN" -v ttl=259200 -f sql/reclaim.sql
--
-- 1. Pending signups whose code expired or is void (too many wrong
--    guesses) give their slot back; the row stays, node_id NULL, so that a
--    re-signup keeps its customer_id (and takes a slot again).
-- 2. Pending signups older than ttl (HydraSignupPendingTTL in seconds),
--    counted from the signup and from the last code mailed, are deleted
--    with their codes (and the slot of any that still holds one).
BEGIN;

WITH rel AS (
    SELECT c.id, c.node_id FROM customers c
    JOIN hydra_signup_codes k ON k.customer_id = c.id
    WHERE c.status = 'pending' AND c.node_id IS NOT NULL
      AND k.consumed_at IS NULL AND (k.void OR k.expires_at <= now())
    FOR UPDATE OF c, k SKIP LOCKED),
cu AS (
    UPDATE customers SET node_id = NULL FROM rel
    WHERE customers.id = rel.id RETURNING rel.node_id),
freed AS (
    SELECT node_id, count(*) AS n FROM cu GROUP BY node_id),
lk AS (
    SELECT id FROM nodes WHERE id IN (SELECT node_id FROM freed)
    ORDER BY id FOR UPDATE)
UPDATE nodes SET used = used - freed.n FROM freed, lk
WHERE nodes.id = freed.node_id AND lk.id = nodes.id;

WITH old AS (
    SELECT c.id, c.node_id FROM customers c
    JOIN hydra_signup_codes k ON k.customer_id = c.id
    WHERE c.status = 'pending'
      AND c.created_at < now() - :'ttl'::int * interval '1 second'
      AND k.sent_at < now() - :'ttl'::int * interval '1 second'
    FOR UPDATE OF c, k SKIP LOCKED),
del AS (
    DELETE FROM customers USING old WHERE customers.id = old.id
    RETURNING old.node_id),
freed AS (
    SELECT node_id, count(*) AS n FROM del
    WHERE node_id IS NOT NULL GROUP BY node_id),
lk AS (
    SELECT id FROM nodes WHERE id IN (SELECT node_id FROM freed)
    ORDER BY id FOR UPDATE),
pruned AS (
    DELETE FROM hydra_signup_mail_log WHERE sent_at < now() - interval '1 day')
UPDATE nodes SET used = used - freed.n FROM freed, lk
WHERE nodes.id = freed.node_id AND lk.id = nodes.id;

COMMIT;
