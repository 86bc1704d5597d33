-- Customer groups (客户分组, seed 004 §9.2.1): named sets of customers; a customer lists its
-- groups in `groups` (a JSON array of group ids, like every multi-relation). Default roles reach
-- groups by data scope like other records.
CREATE TABLE customer_groups (
    id              TEXT PRIMARY KEY,
    version         BIGINT NOT NULL,
    owner_id        TEXT,
    department_id   TEXT REFERENCES departments (id),
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    deleted_at      TEXT,
    deleted_by      TEXT,
    custom          TEXT NOT NULL DEFAULT '{}',
    name            TEXT NOT NULL,
    description     TEXT
);
CREATE INDEX ix_customer_groups_department ON customer_groups (department_id, id);
ALTER TABLE customers ADD COLUMN "groups" TEXT;

UPDATE roles SET permissions = jsonb_set(permissions::jsonb, '{customer_group}', '{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree"}'::jsonb)::text WHERE code = 'sales_manager';
UPDATE roles SET permissions = jsonb_set(permissions::jsonb, '{customer_group}', '{"read":"department","create":"self","update":"self","delete":"self"}'::jsonb)::text WHERE code = 'salesperson';
UPDATE roles SET permissions = jsonb_set(permissions::jsonb, '{customer_group}', '{"read":"all"}'::jsonb)::text WHERE code IN ('service_agent', 'marketing', 'analyst');
