-- Saved list views shared between users (issue 4 §5) and uploaded files of attachment fields
-- (issue 5 §1). See docs/API-DESIGN.md ("Saved views", "Files").

-- A view: a list's filter (the list API's grammar, JSON), quick search, sort, columns and page
-- size. Personal views are seen by their owner only; shared ones by everyone, or by the members
-- of one department, among the users who may read the object.
CREATE TABLE saved_views (
    id              TEXT PRIMARY KEY,
    object          TEXT NOT NULL,
    name            TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    visibility      TEXT NOT NULL,
    department_id   TEXT,
    q               TEXT,
    filter          TEXT,
    sort            TEXT,
    columns         TEXT NOT NULL DEFAULT '[]',
    page_size       BIGINT,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX ux_saved_views_owner_name ON saved_views (owner_id, object, name);
CREATE INDEX ix_saved_views_object ON saved_views (object, visibility);

-- A stored file: the bytes live under data_dir/files/attachments/, named by id. `record_id` is
-- the record that keeps the file (set when a record first saves it in an attachment field).
CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    object          TEXT NOT NULL,
    field           TEXT NOT NULL,
    name            TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    content_type    TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    storage_path    TEXT NOT NULL,
    record_id       TEXT,
    uploaded_by     TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX ix_files_record ON files (record_id);
CREATE INDEX ix_files_uploader ON files (uploaded_by, created_at);
