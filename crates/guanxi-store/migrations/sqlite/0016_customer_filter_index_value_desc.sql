-- PostgreSQL only: there the filtered list's index (migration 0014) is rebuilt in descending
-- value order with empty values last. SQLite reads the ascending index backwards for that order
-- already; the file keeps the two migration folders in step.
SELECT 1;
