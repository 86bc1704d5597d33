-- Customer duplicates, merges and their undo (issue 5 §5).
--
-- customer_duplicate_keys: the normalised name, phone, email and credit code of every customer
-- (guanxi-core/src/dedup.rs), written by the customer hook in the same transaction as the
-- customer, so a duplicate lookup is an index probe on (kind, norm), never a table scan. Rows
-- of customers written before this migration are filled by the start-up rebuild (and by
-- `guanxi reindex`), because the normalisation is Rust code, not SQL.
CREATE TABLE customer_duplicate_keys (
    customer_id     TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    norm            TEXT NOT NULL,
    PRIMARY KEY (customer_id, kind)
);
CREATE INDEX ix_customer_duplicate_keys_norm ON customer_duplicate_keys (kind, norm);

-- A merged customer sits in the recycle bin and points at the customer it was merged into.
ALTER TABLE customers ADD COLUMN merged_into_id TEXT;

-- One row per merge: what it changed, so that it can be undone.
CREATE TABLE record_merges (
    id              TEXT PRIMARY KEY,
    object          TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    -- JSON array of the merged (now deleted) record ids, in request order.
    source_ids      TEXT NOT NULL,
    -- JSON object: field → {"from": source id, "old": value before, "new": value set}.
    fields          TEXT NOT NULL,
    -- JSON object: source id → its version after the merge (to detect later changes).
    source_versions TEXT NOT NULL,
    moved_count     BIGINT NOT NULL,
    status          TEXT NOT NULL,
    merged_by       TEXT NOT NULL,
    merged_by_name  TEXT NOT NULL,
    merged_at       TEXT NOT NULL,
    undone_by       TEXT,
    undone_at       TEXT
);
CREATE INDEX ix_record_merges_target ON record_merges (object, target_id);

-- The related records a merge moved (contacts, follow-ups, care actions, converted leads…).
CREATE TABLE record_merge_moves (
    merge_id        TEXT NOT NULL REFERENCES record_merges (id),
    object          TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    field           TEXT NOT NULL,
    from_id         TEXT NOT NULL,
    PRIMARY KEY (merge_id, object, record_id, field)
);
