-- Import and export of records (crates/guanxi-server/src/modules/transfer): import batches with
-- their per-row errors and the records they created or changed (for undo), header mappings saved
-- per user and object, and export files.
CREATE TABLE import_batches (
    id              TEXT PRIMARY KEY,
    object          TEXT NOT NULL,
    status          TEXT NOT NULL,
    file_name       TEXT NOT NULL,
    file_path       TEXT NOT NULL,
    file_type       TEXT NOT NULL,
    encoding        TEXT,
    sheet           TEXT,
    columns         TEXT NOT NULL,
    mapping         TEXT NOT NULL,
    options         TEXT NOT NULL DEFAULT '{}',
    total_rows      BIGINT,
    next_row        BIGINT NOT NULL DEFAULT 0,
    inflight_since  TEXT,
    summary         TEXT,
    job_id          TEXT,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX ix_import_batches_creator ON import_batches (created_by, id);

CREATE TABLE import_batch_records (
    batch_id        TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    row_no          BIGINT NOT NULL,
    action          TEXT NOT NULL,
    version         BIGINT NOT NULL,
    before_values   TEXT,
    PRIMARY KEY (batch_id, record_id)
);

CREATE TABLE import_errors (
    batch_id        TEXT NOT NULL,
    phase           TEXT NOT NULL,
    row_no          BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    column_name     TEXT,
    field           TEXT,
    code            TEXT NOT NULL,
    message_zh      TEXT NOT NULL,
    message_en      TEXT NOT NULL,
    value           TEXT,
    PRIMARY KEY (batch_id, phase, row_no, seq)
);

CREATE TABLE import_mappings (
    user_id         TEXT NOT NULL,
    object          TEXT NOT NULL,
    column_name     TEXT NOT NULL,
    field           TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, object, column_name)
);

CREATE TABLE export_files (
    id              TEXT PRIMARY KEY,
    object          TEXT NOT NULL,
    format          TEXT NOT NULL,
    status          TEXT NOT NULL,
    file_name       TEXT NOT NULL,
    file_path       TEXT NOT NULL,
    request         TEXT NOT NULL,
    row_count       BIGINT,
    size_bytes      BIGINT,
    job_id          TEXT,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX ix_export_files_creator ON export_files (created_by, id);
