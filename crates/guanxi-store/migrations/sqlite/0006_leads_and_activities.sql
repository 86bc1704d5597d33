-- Leads, follow-ups and care actions (customers issue).
CREATE TABLE leads (
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
    number          TEXT NOT NULL,
    name            TEXT NOT NULL,
    company         TEXT,
    title           TEXT,
    mobile          TEXT,
    phone           TEXT,
    email           TEXT,
    source          TEXT,
    industry        TEXT,
    province        TEXT,
    city            TEXT,
    district        TEXT,
    address         TEXT,
    status          TEXT NOT NULL,
    converted_customer_id TEXT REFERENCES customers (id),
    converted_contact_id  TEXT REFERENCES contacts (id),
    converted_at    TEXT,
    remark          TEXT
);
CREATE UNIQUE INDEX uq_leads_number ON leads (number);
CREATE INDEX ix_leads_owner ON leads (owner_id);
CREATE INDEX ix_leads_department ON leads (department_id);

CREATE TABLE follow_ups (
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
    contact_id      TEXT REFERENCES contacts (id),
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    place           TEXT,
    purpose         TEXT,
    content         TEXT,
    feedback        TEXT,
    next_step       TEXT,
    remind_at       TEXT,
    done            INTEGER
);
CREATE INDEX ix_follow_ups_customer ON follow_ups (customer_id, occurred_at);
CREATE INDEX ix_follow_ups_remind ON follow_ups (remind_at);

CREATE TABLE care_actions (
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
    contact_id      TEXT REFERENCES contacts (id),
    occasion        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    planned_on      TEXT NOT NULL,
    done_on         TEXT,
    content         TEXT,
    cost            BIGINT,
    cost_currency   TEXT
);
CREATE INDEX ix_care_actions_customer ON care_actions (customer_id, planned_on);

INSERT INTO dictionary_items (dict, value, label_zh, label_en, sort_order) VALUES
    ('activity_kind', 'call', '电话', 'Call', 1),
    ('activity_kind', 'visit', '拜访', 'Visit', 2),
    ('activity_kind', 'email', '邮件', 'Email', 3),
    ('activity_kind', 'meeting', '会议', 'Meeting', 4),
    ('activity_kind', 'note', '备注', 'Note', 5),
    ('activity_kind', 'task', '任务', 'Task', 6),
    ('care_occasion', 'birthday', '生日', 'Birthday', 1),
    ('care_occasion', 'holiday', '节日', 'Holiday', 2),
    ('care_occasion', 'custom', '其他', 'Custom', 3),
    ('care_channel', 'phone', '电话', 'Phone', 1),
    ('care_channel', 'sms', '短信', 'SMS', 2),
    ('care_channel', 'email', '邮件', 'Email', 3),
    ('care_channel', 'gift', '礼品', 'Gift', 4);

-- Default roles get the new objects like customers.
UPDATE roles SET permissions = '{"customer":{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree","export":"department_tree","import":"department_tree","sign":"department_tree","make_dormant":"department_tree","reactivate":"department_tree","mark_lost":"department_tree"},"contact":{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree","export":"department_tree","import":"department_tree"},"lead":{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree","export":"department_tree","import":"department_tree","contact":"department_tree","qualify":"department_tree","convert":"department_tree","disqualify":"department_tree","reopen":"department_tree"},"follow_up":{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree","export":"department_tree"},"care_action":{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree"},"department":{"read":"all"},"user":{"read":"all"}}' WHERE code = 'sales_manager';
UPDATE roles SET permissions = '{"customer":{"read":"department","create":"self","update":"self","delete":"self","export":"self","sign":"self"},"contact":{"read":"department","create":"self","update":"self","delete":"self"},"lead":{"read":"department","create":"self","update":"self","delete":"self","contact":"self","qualify":"self","convert":"self","disqualify":"self","reopen":"self"},"follow_up":{"read":"department","create":"self","update":"self","delete":"self"},"care_action":{"read":"department","create":"self","update":"self","delete":"self"},"department":{"read":"all"},"user":{"read":"all"}}' WHERE code = 'salesperson';
UPDATE roles SET permissions = '{"customer":{"read":"all"},"contact":{"read":"all","create":"all","update":"all"},"lead":{"read":"all"},"follow_up":{"read":"all","create":"self","update":"self"},"care_action":{"read":"all","create":"self","update":"self"},"department":{"read":"all"},"user":{"read":"all"}}' WHERE code = 'service_agent';
UPDATE roles SET permissions = '{"customer":{"read":"all","create":"self","update":"self"},"contact":{"read":"all","create":"self"},"lead":{"read":"all","create":"self","update":"self","contact":"self","qualify":"self"},"follow_up":{"read":"all"},"care_action":{"read":"all","create":"self","update":"self"},"department":{"read":"all"},"user":{"read":"all"}}' WHERE code = 'marketing';
UPDATE roles SET permissions = '{"customer":{"read":"all","export":"all"},"contact":{"read":"all","export":"all"},"lead":{"read":"all","export":"all"},"follow_up":{"read":"all","export":"all"},"care_action":{"read":"all"},"department":{"read":"all"},"user":{"read":"all"},"audit":{"read":"all"}}' WHERE code = 'analyst';
