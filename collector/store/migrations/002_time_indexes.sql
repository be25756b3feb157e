-- Time indexes for plain PostgreSQL. On TimescaleDB the hypertables carry their own
-- time index per chunk; BRIN stays cheap either way because rows arrive in time order.
CREATE INDEX sample_ts_brin ON sample USING brin (ts) WITH (pages_per_range = 32);
CREATE INDEX call_event_ts_brin ON call_event USING brin (ts) WITH (pages_per_range = 32);
CREATE INDEX call_event_app_ts_idx ON call_event (app_id, ts);
