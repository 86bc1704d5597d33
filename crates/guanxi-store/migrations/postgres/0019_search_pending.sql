-- Records whose search entries are staged, not yet written: a large import writes each record's
-- term list to `search_docs` and a row here, and every so many rows and when it ends has the
-- database expand the lists into `search_terms` entries, thousands of records per transaction
-- (instead of ~15 entries per row built, bound and inserted with each import chunk). A reindex
-- or delete of a listed record takes it off the list and writes its entries itself; a server
-- that starts with rows here merges them. Decision record 0014.
CREATE TABLE search_pending (
    object      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    PRIMARY KEY (object, record_id)
);
