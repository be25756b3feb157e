-- point_activity keeps only what the writer can merge idempotently per (point, UTC day):
-- good_hours (bit h: a good live sample in UTC hour h), merged by OR. The per-point
-- sample counts and first/last time stamps forced a row update per point in every
-- batch's transaction, which bounded ingest throughput (docs/benchmarks.md, "Ingest");
-- no count read them. Per-device counts stay exact in device_activity; a point's
-- first/last live sample stays on point.first_seen/last_seen.
ALTER TABLE point_activity
    DROP COLUMN samples,
    DROP COLUMN good_samples,
    DROP COLUMN first_ts,
    DROP COLUMN last_ts;

-- A new (point, day) row is written for every point at every UTC midnight; the foreign
-- key's check (a lookup and a row lock on `point` per inserted row) doubled the cost of
-- that insert. The cascade it gave is kept by a trigger: deleting points (directly, or
-- through their device) deletes their rows. Readers join `point`, so a row whose point
-- went away in between is never counted.
ALTER TABLE point_activity DROP CONSTRAINT point_activity_point_id_fkey;

CREATE FUNCTION tally_delete_point_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM point_activity a USING gone WHERE a.point_id = gone.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER point_deleted_point_activity
    AFTER DELETE ON point REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION tally_delete_point_activity();
