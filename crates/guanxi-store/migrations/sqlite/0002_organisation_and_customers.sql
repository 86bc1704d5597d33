-- Departments, customers and contacts: the first standard objects of the record engine.
-- Every object table carries the same system columns (id … custom).
CREATE TABLE departments (
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
    code            TEXT,
    parent_id       TEXT REFERENCES departments (id),
    manager_name    TEXT,
    sort_order      BIGINT,
    remark          TEXT
);
CREATE UNIQUE INDEX uq_departments_code ON departments (code) WHERE deleted_at IS NULL;
CREATE INDEX ix_departments_parent ON departments (parent_id);

CREATE TABLE customers (
    id                  TEXT PRIMARY KEY,
    version             BIGINT NOT NULL,
    owner_id            TEXT,
    department_id       TEXT REFERENCES departments (id),
    created_at          TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    updated_by          TEXT NOT NULL,
    deleted_at          TEXT,
    deleted_by          TEXT,
    custom              TEXT NOT NULL DEFAULT '{}',
    number              TEXT NOT NULL,
    name                TEXT NOT NULL,
    customer_type       TEXT,
    level               TEXT,
    industry            TEXT,
    source              TEXT,
    credit_status       TEXT,
    status              TEXT NOT NULL,
    phone               TEXT,
    email               TEXT,
    website             TEXT,
    province            TEXT,
    city                TEXT,
    district            TEXT,
    address             TEXT,
    credit_code         TEXT,
    registered_capital  BIGINT,
    registered_capital_currency TEXT,
    established_on      TEXT,
    employee_count      BIGINT,
    is_key_account      INTEGER,
    last_contacted_at   TEXT,
    tags                TEXT,
    attachments         TEXT,
    extra               TEXT,
    remark              TEXT
);
CREATE UNIQUE INDEX uq_customers_number ON customers (number);
CREATE UNIQUE INDEX uq_customers_credit_code ON customers (credit_code) WHERE deleted_at IS NULL;
CREATE INDEX ix_customers_name ON customers (name);
CREATE INDEX ix_customers_owner ON customers (owner_id);
CREATE INDEX ix_customers_department ON customers (department_id);
CREATE INDEX ix_customers_created_at ON customers (created_at);
CREATE INDEX ix_customers_region ON customers (province, city, district);

CREATE TABLE contacts (
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
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    name            TEXT NOT NULL,
    title           TEXT,
    gender          TEXT,
    mobile          TEXT,
    phone           TEXT,
    email           TEXT,
    birthday        TEXT,
    is_key_person   INTEGER,
    notes           TEXT
);
CREATE INDEX ix_contacts_customer ON contacts (customer_id);
CREATE INDEX ix_contacts_mobile ON contacts (mobile);

-- Data dictionaries used by the select fields above (seed 000 §3.1 classification).
INSERT INTO dictionary_items (dict, value, label_zh, label_en, sort_order) VALUES
    ('customer_type', 'enterprise', '企业', 'Enterprise', 1),
    ('customer_type', 'individual', '个人', 'Individual', 2),
    ('customer_type', 'government', '政府机关', 'Government', 3),
    ('customer_type', 'institution', '事业单位', 'Public institution', 4),
    ('customer_type', 'distributor', '经销商', 'Distributor', 5),
    ('customer_level', 'A', 'A类（重要）', 'A (key)', 1),
    ('customer_level', 'B', 'B类（普通）', 'B (regular)', 2),
    ('customer_level', 'C', 'C类（一般）', 'C (minor)', 3),
    ('customer_level', 'C1', 'C1类', 'C1', 4),
    ('customer_level', 'C2', 'C2类', 'C2', 5),
    ('industry', 'energy', '能源', 'Energy', 1),
    ('industry', 'manufacturing', '制造业', 'Manufacturing', 2),
    ('industry', 'retail', '零售', 'Retail', 3),
    ('industry', 'finance', '金融', 'Finance', 4),
    ('industry', 'it', '信息技术', 'Information technology', 5),
    ('industry', 'construction', '建筑', 'Construction', 6),
    ('industry', 'logistics', '物流', 'Logistics', 7),
    ('industry', 'other', '其他', 'Other', 99),
    ('customer_source', 'referral', '客户介绍', 'Referral', 1),
    ('customer_source', 'exhibition', '展会', 'Exhibition', 2),
    ('customer_source', 'website', '官网', 'Website', 3),
    ('customer_source', 'phone', '电话营销', 'Telemarketing', 4),
    ('customer_source', 'event', '市场活动', 'Marketing event', 5),
    ('customer_source', 'other', '其他', 'Other', 99),
    ('credit_status', 'good', '良好', 'Good', 1),
    ('credit_status', 'normal', '一般', 'Normal', 2),
    ('credit_status', 'poor', '较差', 'Poor', 3),
    ('credit_status', 'blacklisted', '黑名单', 'Blacklisted', 4),
    ('customer_tag', 'vip', 'VIP', 'VIP', 1),
    ('customer_tag', 'strategic', '战略合作', 'Strategic', 2),
    ('customer_tag', 'new', '新客户', 'New', 3),
    ('customer_tag', 'at_risk', '流失风险', 'At risk', 4),
    ('gender', 'male', '男', 'Male', 1),
    ('gender', 'female', '女', 'Female', 2);
