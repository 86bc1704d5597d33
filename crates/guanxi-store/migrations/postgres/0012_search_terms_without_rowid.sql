-- SQLite only: there the search index becomes a WITHOUT ROWID table. A PostgreSQL table is a
-- heap plus its primary key already, so nothing changes here; the file keeps the two migration
-- folders in step.
SELECT 1;
