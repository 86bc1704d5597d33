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

UPDATE roles SET permissions = json_set(permissions, '$.customer_group', json('{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree"}')) WHERE code = 'sales_manager' AND json_valid(permissions);
UPDATE roles SET permissions = json_set(permissions, '$.customer_group', json('{"read":"department","create":"self","update":"self","delete":"self"}')) WHERE code = 'salesperson' AND json_valid(permissions);
UPDATE roles SET permissions = json_set(permissions, '$.customer_group', json('{"read":"all"}')) WHERE code IN ('service_agent', 'marketing', 'analyst') AND json_valid(permissions);
