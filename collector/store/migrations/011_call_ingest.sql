-- Cheaper call ingest (docs/benchmarks.md, "Call volumes"), measured per batch of 1,000:
--
-- * call_event's (app_id, ts) b-tree of migration 002 is read by nothing (the monthly
--   figures read call_monthly, callers read call_caller_daily or a short time range by
--   the BRIN index) and cost PostgreSQL 4.5 ms of CPU per batch, 80 % of the insert.
-- * Event ids are opaque keys compared for equality only: in the "C" collation the
--   dedupe index compares bytes instead of calling the locale's strcoll on every probe.
--   The staging table (collector/store/calls.py) uses the same collation. The unique
--   key stays byte-wise exact, as it already was for every deterministic collation.
DROP INDEX IF EXISTS call_event_app_ts_idx;
ALTER TABLE call_event_seen ALTER COLUMN event_id TYPE text COLLATE "C";
