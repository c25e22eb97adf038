-- SPDX-License-Identifier: Apache-2.0
-- 007: a new address's signup in one statement, its slot taken as the
-- customer row is written (issue 11).
--
-- Until now the customer was inserted without a node and then updated to
-- hold one. The update changes node_id, which customers_pending_slot_idx
-- depends on, so it could not be a HOT update: every signup wrote the row
-- twice and all five of its index entries twice, and left a dead row
-- behind (under a signup benchmark the customers table held more dead
-- rows than live ones, and index upkeep was the largest part of
-- PostgreSQL's time). Now the node is chosen and locked first and the row
-- is written once, with it.
--
-- hydra_signup_pick_node(tenant, fill) locks the node a slot should come
-- from and returns its id, or NULL when no active shared node has room. It
-- prefers a node no other transaction holds (SKIP LOCKED), so concurrent
-- signups spread over the nodes; only when every node with room is held
-- does it wait, for the first in placement order (never a false "full");
-- the lock re-checks `used < capacity` on the row it waited for. The lock
-- is FOR NO KEY UPDATE: it is taken to change `used`, and it does not hold
-- up the foreign key checks of customers written with the node.
-- fill: HydraSignupPlacement fill (fullest first, then hostname); else
-- spread (least loaded first).
CREATE OR REPLACE FUNCTION hydra_signup_pick_node(p_tenant uuid,
                                                  p_fill boolean)
RETURNS uuid
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
     LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    IF v_node IS NULL THEN
        SELECT id INTO v_node FROM nodes
         WHERE tenant_id = p_tenant AND kind = 'shared' AND active
           AND used < capacity
         ORDER BY CASE WHEN p_fill THEN -(used::float8 / capacity)
                       ELSE used::float8 / capacity END,
                  CASE WHEN p_fill THEN hostname END, id
         LIMIT 1 FOR NO KEY UPDATE;
    END IF;
    RETURN v_node;
END
$$;

-- 005's slot for a pending customer who holds none, now through
-- hydra_signup_pick_node (the same answers: the node's id, HS503 when no
-- node has room, HS409 when the customer holds a slot or is gone).
CREATE OR REPLACE FUNCTION hydra_signup_take_slot(p_tenant uuid,
                                                  p_customer uuid,
                                                  p_fill boolean)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_node uuid := hydra_signup_pick_node(p_tenant, p_fill);
BEGIN
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

-- A new address: the customer (pending, on the node picked), its code,
-- and the mail's logs (the per-address log of HydraSignupMailsPerHour and
-- this session's count of the minute for HydraSignupTenantMailsPerHour, as
-- 005 describes). Returns the node's id. Raises HS503 when no node has
-- room, HS409 when the address or the site label is taken (by a customer,
-- or by a concealed signup's decoy); nothing is written then. The module
-- sends it with its COMMIT in one round trip, so the node row is held for
-- this statement and the commit only.
CREATE OR REPLACE FUNCTION hydra_signup_new_customer(p_id uuid,
                                                     p_tenant uuid,
                                                     p_company text,
                                                     p_email text,
                                                     p_plan text,
                                                     p_site_url text,
                                                     p_code_hmac text,
                                                     p_code_ttl int,
                                                     p_mailbox text,
                                                     p_fill boolean)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_node uuid;
BEGIN
    IF EXISTS (SELECT 1 FROM hydra_signup_decoys
                WHERE tenant_id = p_tenant AND site_url = p_site_url) THEN
        RAISE EXCEPTION 'site label % is held by a concealed signup',
            p_site_url USING ERRCODE = 'HS409';
    END IF;
    v_node := hydra_signup_pick_node(p_tenant, p_fill);
    IF v_node IS NULL THEN
        RAISE EXCEPTION 'no shared node of tenant % has a free slot', p_tenant
            USING ERRCODE = 'HS503';
    END IF;
    INSERT INTO customers (id, tenant_id, company_name, email, plan, node_id,
                           site_url, status, created_at)
    VALUES (p_id, p_tenant, p_company, p_email, p_plan, v_node, p_site_url,
            'pending', now())
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the address or site label % is taken', p_site_url
            USING ERRCODE = 'HS409';
    END IF;
    UPDATE nodes SET used = used + 1 WHERE id = v_node;
    INSERT INTO hydra_signup_codes (customer_id, code_hmac, expires_at,
                                    attempts, sent_at, void, consumed_at)
    VALUES (p_id, p_code_hmac, now() + p_code_ttl * interval '1 second', 0,
            now(), false, NULL);
    INSERT INTO hydra_signup_mail_log (tenant_id, email_lower)
    VALUES (p_tenant, lower(p_mailbox));
    INSERT INTO hydra_signup_tenant_mails AS b (tenant_id, minute, backend, n)
    VALUES (p_tenant, date_trunc('minute', now()), pg_backend_pid(), 1)
    ON CONFLICT (tenant_id, minute, backend) DO UPDATE SET n = b.n + 1;
    RETURN v_node::text;
END
$$;
