-- Platform tables: audit trail, state history, numbering, jobs, custom fields, dictionaries.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    object      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    title       TEXT,
    changes     TEXT NOT NULL DEFAULT '[]',
    request_id  TEXT
);
CREATE INDEX ix_audit_log_record ON audit_log (object, record_id, id);
CREATE INDEX ix_audit_log_at ON audit_log (at);
CREATE INDEX ix_audit_log_actor ON audit_log (actor_id, at);

CREATE TABLE state_history (
    id          TEXT PRIMARY KEY,
    object      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    at          TEXT NOT NULL,
    remark      TEXT
);
CREATE INDEX ix_state_history_record ON state_history (object, record_id, id);

CREATE TABLE number_sequences (
    rule_key    TEXT NOT NULL,
    period      TEXT NOT NULL,
    last_value  BIGINT NOT NULL,
    PRIMARY KEY (rule_key, period)
);

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    run_at          TEXT NOT NULL,
    locked_until    TEXT,
    progress_done   BIGINT NOT NULL DEFAULT 0,
    progress_total  BIGINT,
    last_error      TEXT,
    result          TEXT,
    created_by      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX ix_jobs_due ON jobs (status, run_at);

CREATE TABLE custom_fields (
    object      TEXT NOT NULL,
    key         TEXT NOT NULL,
    definition  TEXT NOT NULL,
    position    BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (object, key)
);

CREATE TABLE dictionary_items (
    dict        TEXT NOT NULL,
    value       TEXT NOT NULL,
    label_zh    TEXT NOT NULL,
    label_en    TEXT NOT NULL,
    sort_order  BIGINT NOT NULL DEFAULT 0,
    enabled     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (dict, value)
);

CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
