-- SPDX-License-Identifier: Apache-2.0
-- 003: a pending signup holds its node slot only while its code can be
-- used (CONTRACT section 1). The reaper and the signup path look for
-- pending customers that still hold a slot, a set no larger than the
-- signups of one code lifetime: this index keeps that look from scanning
-- the pending rows kept for PendingTTL (node_id NULL) or the customers.
CREATE INDEX customers_pending_slot_idx
    ON customers (tenant_id) WHERE status = 'pending' AND node_id IS NOT NULL;
