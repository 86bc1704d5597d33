-- Quick search joins each index entry of a term to its customer for the recycle-bin condition
-- and the title (see the SQLite migration of the same number); this index lets PostgreSQL answer
-- that join from the index (an index-only scan once the table is vacuumed) instead of the heap.
CREATE INDEX ix_customers_search_walk ON customers (id, deleted_at, name);
