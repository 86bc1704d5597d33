-- Identity and access: users, roles, sessions, tokens, sign-in throttling and logs.
ALTER TABLE departments ADD COLUMN is_external BOOLEAN;

CREATE TABLE roles (
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
    description     TEXT,
    permissions     TEXT,
    field_rules     TEXT,
    require_2fa     BOOLEAN
);
CREATE UNIQUE INDEX uq_roles_name ON roles (name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX uq_roles_code ON roles (code) WHERE deleted_at IS NULL;

CREATE TABLE users (
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
    username            TEXT NOT NULL,
    display_name        TEXT NOT NULL,
    email               TEXT,
    mobile              TEXT,
    manager_id          TEXT REFERENCES users (id),
    role_ids            TEXT,
    status              TEXT NOT NULL,
    last_login_at       TEXT,
    password_changed_at TEXT,
    locked_until        TEXT,
    email_verified_at   TEXT,
    totp_enabled        BOOLEAN,
    -- Secrets: columns, not fields. The record engine never selects them.
    password_hash       TEXT,
    password_history    TEXT NOT NULL DEFAULT '[]',
    totp_secret         TEXT,
    totp_pending_secret TEXT,
    recovery_codes      TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX uq_users_username ON users (username);
CREATE UNIQUE INDEX uq_users_email ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX ix_users_manager ON users (manager_id);
CREATE INDEX ix_users_department ON users (department_id);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    csrf_token      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    remembered      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX ix_sessions_user ON sessions (user_id);

CREATE TABLE remember_tokens (
    selector        TEXT PRIMARY KEY,
    validator_hash  TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id),
    expires_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX ix_remember_tokens_user ON remember_tokens (user_id);

CREATE TABLE login_challenges (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    kind            TEXT NOT NULL,
    remember        BOOLEAN NOT NULL DEFAULT FALSE,
    email_code_hash TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    expires_at      TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT,
    last_used_at    TEXT,
    revoked_at      TEXT
);
CREATE UNIQUE INDEX uq_api_tokens_hash ON api_tokens (token_hash);
CREATE INDEX ix_api_tokens_user ON api_tokens (user_id);

CREATE TABLE auth_tokens (
    token_hash      TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    purpose         TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT,
    created_at      TEXT NOT NULL
);

CREATE TABLE captchas (
    id              TEXT PRIMARY KEY,
    answer_hash     TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);

CREATE TABLE login_attempts (
    login_key       TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    window_start    TEXT NOT NULL,
    locked_until    TEXT
);

CREATE TABLE login_log (
    id              TEXT PRIMARY KEY,
    at              TEXT NOT NULL,
    user_id         TEXT,
    login           TEXT NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    result          TEXT NOT NULL,
    reason          TEXT
);
CREATE INDEX ix_login_log_at ON login_log (at);
CREATE INDEX ix_login_log_user ON login_log (user_id, at);

-- Default roles (PRODUCT.md "Who uses it"); administrators edit them like any record.
INSERT INTO roles (id, version, created_at, created_by, updated_at, updated_by, name, code, description, permissions, field_rules, require_2fa) VALUES
 ('00000000-0000-7000-8000-000000000001', 1, '2026-01-01T00:00:00.000000Z', 'system', '2026-01-01T00:00:00.000000Z', 'system',
  '系统管理员', 'admin', '用户、部门、角色、字典、参数、日志、备份', '{"*":{"*":"all"}}', '{}', FALSE),
 ('00000000-0000-7000-8000-000000000002', 1, '2026-01-01T00:00:00.000000Z', 'system', '2026-01-01T00:00:00.000000Z', 'system',
  '销售经理', 'sales_manager', '管理本部门及下级部门的客户与联系人',
  '{"customer":{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree","export":"department_tree","import":"department_tree","sign":"department_tree","make_dormant":"department_tree","reactivate":"department_tree","mark_lost":"department_tree"},"contact":{"read":"department_tree","create":"department_tree","update":"department_tree","delete":"department_tree","export":"department_tree","import":"department_tree"},"department":{"read":"all"},"user":{"read":"all"}}',
  '{}', FALSE),
 ('00000000-0000-7000-8000-000000000003', 1, '2026-01-01T00:00:00.000000Z', 'system', '2026-01-01T00:00:00.000000Z', 'system',
  '销售员', 'salesperson', '查看本部门客户，维护自己负责的客户',
  '{"customer":{"read":"department","create":"self","update":"self","delete":"self","export":"self","sign":"self"},"contact":{"read":"department","create":"self","update":"self","delete":"self"},"department":{"read":"all"},"user":{"read":"all"}}',
  '{"customer":{"credit_status":"read_only"}}', FALSE),
 ('00000000-0000-7000-8000-000000000004', 1, '2026-01-01T00:00:00.000000Z', 'system', '2026-01-01T00:00:00.000000Z', 'system',
  '客服坐席', 'service_agent', '查询客户资料，维护联系人',
  '{"customer":{"read":"all"},"contact":{"read":"all","create":"all","update":"all"},"department":{"read":"all"},"user":{"read":"all"}}',
  '{"customer":{"registered_capital":"hidden","credit_code":"hidden"}}', FALSE),
 ('00000000-0000-7000-8000-000000000005', 1, '2026-01-01T00:00:00.000000Z', 'system', '2026-01-01T00:00:00.000000Z', 'system',
  '市场专员', 'marketing', '查看客户，登记新客户',
  '{"customer":{"read":"all","create":"self","update":"self"},"contact":{"read":"all","create":"self"},"department":{"read":"all"},"user":{"read":"all"}}',
  '{"customer":{"credit_code":"hidden"}}', FALSE),
 ('00000000-0000-7000-8000-000000000006', 1, '2026-01-01T00:00:00.000000Z', 'system', '2026-01-01T00:00:00.000000Z', 'system',
  '决策分析', 'analyst', '查看与导出全部客户数据',
  '{"customer":{"read":"all","export":"all"},"contact":{"read":"all","export":"all"},"department":{"read":"all"},"user":{"read":"all"},"audit":{"read":"all"}}',
  '{}', FALSE),
 ('00000000-0000-7000-8000-000000000007', 1, '2026-01-01T00:00:00.000000Z', 'system', '2026-01-01T00:00:00.000000Z', 'system',
  '服务商', 'partner', '外部合作单位：只看本单位的记录',
  '{"customer":{"read":"department"},"contact":{"read":"department"}}',
  '{"customer":{"credit_code":"hidden","registered_capital":"hidden","credit_status":"hidden"}}', FALSE);
