-- Each indexed record's current terms, one row per record (a JSON array, in no particular
-- order). Reindexing a record now reads its row, deletes the entries it no longer has by their
-- primary key and inserts the ones it gains, so `search_terms` needs no second index by record:
-- that index doubled the B-tree work of every entry written (imports, creates, the bulk
-- rebuild's sort) for the sake of deletes that are rare. Decision record 0009.
CREATE TABLE search_docs (
    object      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    terms       TEXT NOT NULL,
    PRIMARY KEY (object, record_id)
) WITHOUT ROWID;
INSERT INTO search_docs (object, record_id, terms)
    SELECT object, record_id, json_group_array(term) FROM search_terms GROUP BY object, record_id;
DROP INDEX IF EXISTS ix_search_terms_record;
