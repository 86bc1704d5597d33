-- The search index is a pure key: store it as a WITHOUT ROWID table so that its primary key is
-- the table itself. The rowid table kept the same entries twice (table and key), and every
-- write of a record touched one B-tree more than it needed (docs/BENCHMARKS.md, dataset
-- generation).
CREATE TABLE search_terms_compact (
    object      TEXT NOT NULL,
    term        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    PRIMARY KEY (object, term, record_id)
) WITHOUT ROWID;
INSERT INTO search_terms_compact (object, term, record_id) SELECT object, term, record_id FROM search_terms;
DROP TABLE search_terms;
ALTER TABLE search_terms_compact RENAME TO search_terms;
CREATE INDEX ix_search_terms_record ON search_terms (object, record_id);
