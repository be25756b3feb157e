-- Hours with a good live sample, per device: the counts API asks "does this device have a
-- good hour in the window?" once per device (collector/store/queries.py). Without this
-- index a device that had no good sample probes every hour of the window (720 rows for
-- 30 days); with it, one index probe. The predicate column first_good_ts is set once per
-- hour row (with its first good sample) and then keeps its value, so the writer's later
-- updates of the row stay HOT updates (003_rollup_fillfactor.sql).
CREATE INDEX device_activity_good_idx ON device_activity (device_id, hour)
    WHERE first_good_ts IS NOT NULL;
