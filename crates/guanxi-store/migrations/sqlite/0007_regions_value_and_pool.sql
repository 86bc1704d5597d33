-- Regions, customer value tiers and the customer public pool (issue 5 §2 and §6).

-- Provinces, cities and districts from a published data package (seed 001 M1 §2.6.5), loaded
-- by `guanxi import-regions` and automatically into an empty table at start-up.
CREATE TABLE regions (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       BIGINT NOT NULL,
    parent_code TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX ix_regions_parent ON regions (parent_code, code);
CREATE INDEX ix_regions_name ON regions (name);

-- Value classification (seed 000 §3.1.5) and the public pool (公海).
ALTER TABLE customers ADD COLUMN value_tier TEXT;
ALTER TABLE customers ADD COLUMN total_amount BIGINT;
ALTER TABLE customers ADD COLUMN total_amount_currency TEXT;
ALTER TABLE customers ADD COLUMN claimed_at TEXT;
ALTER TABLE customers ADD COLUMN released_at TEXT;
ALTER TABLE customers ADD COLUMN release_reason TEXT;
CREATE INDEX ix_customers_value_tier ON customers (value_tier);
CREATE INDEX ix_customers_last_contacted ON customers (last_contacted_at);

INSERT INTO dictionary_items (dict, value, label_zh, label_en, sort_order) VALUES
    ('customer_value_tier', 'A', 'A类（高价值）', 'A (high value)', 1),
    ('customer_value_tier', 'B', 'B类（中价值）', 'B (medium value)', 2),
    ('customer_value_tier', 'C', 'C类（低价值）', 'C (low value)', 3);

-- The last contact follows the follow-ups from now on (a hook); catch up with existing ones.
UPDATE customers SET last_contacted_at = (
    SELECT MAX(f.occurred_at) FROM follow_ups f
    WHERE f.customer_id = customers.id AND f.deleted_at IS NULL AND f.occurred_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
WHERE EXISTS (
    SELECT 1 FROM follow_ups f
    WHERE f.customer_id = customers.id AND f.deleted_at IS NULL AND f.occurred_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
      AND (customers.last_contacted_at IS NULL OR f.occurred_at > customers.last_contacted_at));

-- Salespeople and sales managers may claim customers from the pool (and so see it).
UPDATE roles SET permissions = json_set(permissions, '$.customer.claim', 'self') WHERE code = 'salesperson' AND json_valid(permissions) AND json_type(permissions, '$.customer') = 'object';
UPDATE roles SET permissions = json_set(permissions, '$.customer.claim', 'department_tree') WHERE code = 'sales_manager' AND json_valid(permissions) AND json_type(permissions, '$.customer') = 'object';
