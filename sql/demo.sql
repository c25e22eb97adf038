-- SPDX-License-Identifier: Apache-2.0
-- demo.sql: demo data for running and testing the module; applied by
-- `scripts/migrate.sh PORT --demo` after the migrations, in one transaction.
-- Idempotent: re-running it restores the demo tenant, plans and nodes to
-- these definitions but keeps runtime state (nodes.used, customers).

-- tenant "demo": sites are <label>.sites.example.net
INSERT INTO tenants (id, slug, name, site_domain, signup_enabled)
VALUES ('6d656d6f-0000-4000-8000-000000000001', 'demo', 'Demo Hosting',
        'sites.example.net', true)
ON CONFLICT (id) DO UPDATE
    SET slug = EXCLUDED.slug, name = EXCLUDED.name,
        site_domain = EXCLUDED.site_domain,
        signup_enabled = EXCLUDED.signup_enabled;

INSERT INTO plans (tenant_id, name, description, price, features, position, public)
VALUES
    ('6d656d6f-0000-4000-8000-000000000001', 'starter',
     'Everything you need for a single website.', '$5/mo',
     ARRAY['1 site', '10 GB SSD', 'Free SSL'], 1, true),
    ('6d656d6f-0000-4000-8000-000000000001', 'pro',
     'More room and daily backups for growing projects.', '$15/mo',
     ARRAY['10 sites', '50 GB SSD', 'Free SSL', 'Daily backups'], 2, true),
    ('6d656d6f-0000-4000-8000-000000000001', 'business',
     'Unlimited sites with priority support for your team.', '$40/mo',
     ARRAY['Unlimited sites', '200 GB SSD', 'Free SSL', 'Daily backups',
           'Priority support'], 3, true),
    -- never listed, never accepted by signup
    ('6d656d6f-0000-4000-8000-000000000001', 'internal',
     'Internal plan for staff accounts.', '$0/mo',
     ARRAY['Unlimited sites'], 99, false)
ON CONFLICT (tenant_id, name) DO UPDATE
    SET description = EXCLUDED.description, price = EXCLUDED.price,
        features = EXCLUDED.features, position = EXCLUDED.position,
        public = EXCLUDED.public;

-- two shared nodes for placement, one dedicated node that placement skips
INSERT INTO nodes (id, tenant_id, hostname, kind, capacity, used, active)
VALUES
    ('6d656d6f-0000-4000-8000-000000000101', '6d656d6f-0000-4000-8000-000000000001',
     'demo-node-1.example.net', 'shared', 100, 0, true),
    ('6d656d6f-0000-4000-8000-000000000102', '6d656d6f-0000-4000-8000-000000000001',
     'demo-node-2.example.net', 'shared', 100, 0, true),
    ('6d656d6f-0000-4000-8000-000000000201', '6d656d6f-0000-4000-8000-000000000001',
     'demo-dedicated-1.example.net', 'dedicated', 1, 0, true)
ON CONFLICT (id) DO UPDATE
    SET tenant_id = EXCLUDED.tenant_id, hostname = EXCLUDED.hostname,
        kind = EXCLUDED.kind, capacity = GREATEST(EXCLUDED.capacity, nodes.used),
        active = EXCLUDED.active;
