-- The writer rewrites rows of point, point_activity, device and device_activity on every
-- batch. Free space on each page lets PostgreSQL update those rows in place (HOT
-- updates: one WAL record and no new index entries per row) instead of moving every
-- new row version to another page; measured on the ingest benchmark this halves the
-- time of the rollup statements (docs/benchmarks.md). Applies to pages written from
-- now on; `VACUUM FULL` on these tables rewrites an existing database to match.
ALTER TABLE point SET (fillfactor = 50);
ALTER TABLE point_activity SET (fillfactor = 50);
ALTER TABLE device SET (fillfactor = 50);
ALTER TABLE device_activity SET (fillfactor = 50);
