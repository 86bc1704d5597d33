-- Quick-search index: Chinese bigrams, pinyin and Latin/digit tokens per record (see
-- guanxi-core/src/search.rs). Kept in step with writes by the record engine.
CREATE TABLE search_terms (
    object      TEXT NOT NULL,
    term        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    PRIMARY KEY (object, term, record_id)
);
CREATE INDEX ix_search_terms_record ON search_terms (object, record_id);
