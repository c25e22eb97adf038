-- SPDX-License-Identifier: Apache-2.0
-- 001: the HydraCore tables the module shares with the platform
-- (CONTRACT section 3), as the platform defines them.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE tenants (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug           text NOT NULL UNIQUE,
    name           text NOT NULL,
    site_domain    text NOT NULL,
    signup_enabled boolean NOT NULL DEFAULT true
);

CREATE TABLE plans (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    price       text NOT NULL DEFAULT '',
    features    text[] NOT NULL DEFAULT '{}',
    position    int NOT NULL DEFAULT 0,
    public      boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE nodes (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    hostname  text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('shared', 'dedicated')),
    capacity  int NOT NULL,
    used      int NOT NULL DEFAULT 0,
    active    boolean NOT NULL DEFAULT true,
    CHECK (used BETWEEN 0 AND capacity)
);

CREATE TABLE customers (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    company_name text NOT NULL,
    email        text NOT NULL,
    plan         text NOT NULL,
    node_id      uuid REFERENCES nodes(id),
    site_url     text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'active')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    verified_at  timestamptz
);
