"""The SQL the store writer runs for every batch: ingest log, COPY and rollup upserts.

The rollups read a temporary staging table with one row per (point, UTC hour) of
the batch (collector/store/rollup.py builds the rows). Rows are upserted in key
order where the statement allows it, so concurrent writers lock them alike; a
deadlock that still happens surfaces as StoreUnavailable and the batch is replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.store.rollup import ACTIVITY_COLUMNS, SAMPLE_COLUMNS

STAGE_TABLE = "tally_batch_activity"

CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (
    point_id bigint NOT NULL,
    device_id bigint NOT NULL,
    hour timestamptz NOT NULL,
    samples integer NOT NULL,
    good_samples integer NOT NULL,
    imported_samples integer NOT NULL,
    first_ts timestamptz,
    last_ts timestamptz,
    first_good_ts timestamptz,
    last_good_ts timestamptz,
    last_value double precision,
    last_value_text text,
    last_quality smallint,
    point_last boolean,
    point_first_ts timestamptz
) ON COMMIT DELETE ROWS
"""

# Returns the ids that were not logged yet: those batches are applied, the rest skipped.
LOG_BATCHES = """
INSERT INTO ingest_log (batch_id, samples, events, source)
SELECT b, s, e, %s FROM unnest(%s::uuid[], %s::integer[], %s::integer[]) AS t(b, s, e)
ON CONFLICT (batch_id) DO NOTHING
RETURNING batch_id
"""
CORRECT_LOGGED_SAMPLES = "UPDATE ingest_log SET samples = %s WHERE batch_id = %s"

COPY_SAMPLES = f"COPY sample ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
COPY_STAGE = f"COPY {STAGE_TABLE} ({', '.join(ACTIVITY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

UPSERT_DEVICE_ACTIVITY = f"""
INSERT INTO device_activity AS a (device_id, hour, samples, good_samples, imported_samples,
                                  first_ts, last_ts, first_good_ts, last_good_ts)
SELECT device_id, hour, sum(samples), sum(good_samples), sum(imported_samples),
       min(first_ts), max(last_ts), min(first_good_ts), max(last_good_ts)
FROM {STAGE_TABLE}
GROUP BY device_id, hour
ORDER BY device_id, hour
ON CONFLICT (device_id, hour) DO UPDATE SET
    samples = a.samples + EXCLUDED.samples,
    good_samples = a.good_samples + EXCLUDED.good_samples,
    imported_samples = a.imported_samples + EXCLUDED.imported_samples,
    first_ts = LEAST(a.first_ts, EXCLUDED.first_ts),
    last_ts = GREATEST(a.last_ts, EXCLUDED.last_ts),
    first_good_ts = LEAST(a.first_good_ts, EXCLUDED.first_good_ts),
    last_good_ts = GREATEST(a.last_good_ts, EXCLUDED.last_good_ts)
"""

# point_activity per (point, UTC day). Existing rows are updated first, by a plain
# UPDATE: cheaper than INSERT .. ON CONFLICT (no speculative insertion, no tuple lock).
# Only when it touched fewer rows than the batch has (point, day) pairs, the rest are
# inserted; ON CONFLICT stays for a row another writer inserted meanwhile.
_UPDATE_POINT_ACTIVITY = """
UPDATE point_activity AS a SET
    samples = a.samples + s.samples,
    good_samples = a.good_samples + s.good_samples,
    good_hours = a.good_hours | s.good_hours,
    first_ts = LEAST(a.first_ts, s.first_ts),
    last_ts = GREATEST(a.last_ts, s.last_ts)
FROM ({source}) AS s
WHERE a.point_id = s.point_id AND a.day = s.day
"""
_INSERT_POINT_ACTIVITY = """
INSERT INTO point_activity AS a (point_id, day, samples, good_samples, good_hours,
                                 first_ts, last_ts)
SELECT point_id, day, samples, good_samples, good_hours, first_ts, last_ts
FROM ({source}) AS s
WHERE NOT EXISTS (SELECT FROM point_activity x WHERE x.point_id = s.point_id AND x.day = s.day)
ORDER BY point_id, day
ON CONFLICT (point_id, day) DO UPDATE SET
    samples = a.samples + EXCLUDED.samples,
    good_samples = a.good_samples + EXCLUDED.good_samples,
    good_hours = a.good_hours | EXCLUDED.good_hours,
    first_ts = LEAST(a.first_ts, EXCLUDED.first_ts),
    last_ts = GREATEST(a.last_ts, EXCLUDED.last_ts)
"""
_DAY = "(hour AT TIME ZONE 'UTC')::date"
_HOUR_BIT = (
    "CASE WHEN good_samples > 0 "
    "THEN 1 << extract(hour FROM hour AT TIME ZONE 'UTC')::integer ELSE 0 END"
)
# All samples in one hour: staged rows are already one per point and day.
_ONE_HOUR = f"""SELECT point_id, {_DAY} AS day, samples, good_samples,
                       {_HOUR_BIT} AS good_hours, first_ts, last_ts
                FROM {STAGE_TABLE} WHERE samples > 0"""
_HOURS = f"""SELECT point_id, {_DAY} AS day, sum(samples) AS samples,
                    sum(good_samples) AS good_samples, bit_or({_HOUR_BIT}) AS good_hours,
                    min(first_ts) AS first_ts, max(last_ts) AS last_ts
             FROM {STAGE_TABLE} WHERE samples > 0
             GROUP BY point_id, {_DAY}"""
UPDATE_POINT_ACTIVITY_ONE_HOUR = _UPDATE_POINT_ACTIVITY.format(source=_ONE_HOUR)
UPDATE_POINT_ACTIVITY_HOURS = _UPDATE_POINT_ACTIVITY.format(source=_HOURS)
INSERT_POINT_ACTIVITY_ONE_HOUR = _INSERT_POINT_ACTIVITY.format(source=_ONE_HOUR)
INSERT_POINT_ACTIVITY_HOURS = _INSERT_POINT_ACTIVITY.format(source=_HOURS)

# A point's last value moves only forward in time: a replayed older batch keeps it.
_UPDATE_POINTS = f"""
UPDATE point AS p SET
    first_seen = LEAST(p.first_seen, s.{{first_ts}}),
    last_seen = GREATEST(p.last_seen, s.last_ts),
    last_value = CASE WHEN p.last_seen IS NULL OR s.last_ts >= p.last_seen
                      THEN s.last_value ELSE p.last_value END,
    last_value_text = CASE WHEN p.last_seen IS NULL OR s.last_ts >= p.last_seen
                           THEN s.last_value_text ELSE p.last_value_text END,
    last_quality = CASE WHEN p.last_seen IS NULL OR s.last_ts >= p.last_seen
                        THEN s.last_quality ELSE p.last_quality END
FROM {STAGE_TABLE} AS s
WHERE {{which}} AND p.id = s.point_id
"""
# Within one hour each point has one staged row; across hours, the one marked point_last.
UPDATE_POINTS_ONE_HOUR = _UPDATE_POINTS.format(first_ts="first_ts", which="s.samples > 0")
UPDATE_POINTS_HOURS = _UPDATE_POINTS.format(first_ts="point_first_ts", which="s.point_last")

UPDATE_DEVICES = f"""
UPDATE device AS d SET
    first_seen = LEAST(d.first_seen, s.first_ts),
    last_seen = GREATEST(d.last_seen, s.last_ts)
FROM (SELECT device_id, min(first_ts) AS first_ts, max(last_ts) AS last_ts
      FROM {STAGE_TABLE}
      WHERE samples > 0
      GROUP BY device_id) AS s
WHERE d.id = s.device_id
"""


@dataclass(frozen=True)
class Rollups:
    """The rollup statements for one shape of batch (within one hour, or across hours)."""

    device_activity: str
    update_point_activity: str
    insert_point_activity: str
    points: str
    devices: str


ONE_HOUR = Rollups(
    UPSERT_DEVICE_ACTIVITY,
    UPDATE_POINT_ACTIVITY_ONE_HOUR,
    INSERT_POINT_ACTIVITY_ONE_HOUR,
    UPDATE_POINTS_ONE_HOUR,
    UPDATE_DEVICES,
)
HOURS = Rollups(
    UPSERT_DEVICE_ACTIVITY,
    UPDATE_POINT_ACTIVITY_HOURS,
    INSERT_POINT_ACTIVITY_HOURS,
    UPDATE_POINTS_HOURS,
    UPDATE_DEVICES,
)
