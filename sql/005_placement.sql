-- SPDX-License-Identifier: Apache-2.0
-- 005: placement without a queue on one node row (issue 11).
--
-- hydra_signup_take_slot(tenant, customer, fill) takes one slot for a
-- pending customer who holds none and returns the node's id. It prefers a
-- node with room that no other transaction holds right now (SKIP LOCKED),
-- so that concurrent signups spread over the nodes instead of queueing on
-- the least loaded one; only when every node with room is held does it
-- wait, for the first of them in placement order (never a false "full").
-- FOR UPDATE re-checks `used < capacity` on the row it waited for, so a
-- node that filled up meanwhile is passed over.
--
-- When no node has room it raises SQLSTATE HS503: the module sends this
-- statement and its COMMIT in one round trip, so the node row is held for
-- the statement and the commit only, and the error keeps that COMMIT from
-- committing a signup without a slot (the module then rolls back to a
-- savepoint, lets unusable codes' slots go and looks again, as before).
--
-- fill: HydraSignupPlacement fill (fullest first, then hostname); else
-- spread (least loaded first).
CREATE OR REPLACE FUNCTION hydra_signup_take_slot(p_tenant uuid,
                                                  p_customer uuid,
                                                  p_fill boolean)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_node uuid;
BEGIN
    SELECT id INTO v_node FROM nodes
     WHERE tenant_id = p_tenant AND kind = 'shared' AND active
       AND used < capacity
     ORDER BY CASE WHEN p_fill THEN -(used::float8 / capacity)
                   ELSE used::float8 / capacity END,
              CASE WHEN p_fill THEN hostname END, id
     LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF v_node IS NULL THEN
        SELECT id INTO v_node FROM nodes
         WHERE tenant_id = p_tenant AND kind = 'shared' AND active
           AND used < capacity
         ORDER BY CASE WHEN p_fill THEN -(used::float8 / capacity)
                       ELSE used::float8 / capacity END,
                  CASE WHEN p_fill THEN hostname END, id
         LIMIT 1 FOR UPDATE;
    END IF;
    IF v_node IS NULL THEN
        RAISE EXCEPTION 'no shared node of tenant % has a free slot', p_tenant
            USING ERRCODE = 'HS503';
    END IF;
    UPDATE customers SET node_id = v_node
     WHERE id = p_customer AND node_id IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % already holds a slot or is gone', p_customer
            USING ERRCODE = 'HS409';
    END IF;
    UPDATE nodes SET used = used + 1 WHERE id = v_node;
    RETURN v_node::text;
END
$$;

-- HydraSignupTenantMailsPerHour counts a tenant's codes of the last hour;
-- counted from the mail log, every signup read all of the tenant's rows of
-- the hour. The count is kept per minute instead, one row per database
-- session (backend) and minute, so that concurrent signups never wait for
-- each other's counter row; a signup sums at most 61 minutes x sessions
-- rows. A minute's row counts in full until the last
-- of its mails has left the hour (the count errs on the strict side by at
-- most a minute). The reaper prunes rows older than two hours.
CREATE TABLE hydra_signup_tenant_mails (
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    minute    timestamptz NOT NULL,
    backend   int NOT NULL,
    n         int NOT NULL,
    PRIMARY KEY (tenant_id, minute, backend)
);
INSERT INTO hydra_signup_tenant_mails (tenant_id, minute, backend, n)
SELECT tenant_id, date_trunc('minute', sent_at), 0, count(*)
  FROM hydra_signup_mail_log
 WHERE sent_at > now() - interval '61 minutes'
 GROUP BY 1, 2;
