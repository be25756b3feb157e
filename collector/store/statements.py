"""The SQL the store writer runs: ingest log, COPY, rollups, first seen and latest values.

Per batch (in its transaction): the ingest log, the sample COPY, and the hourly
``device_activity`` rollup, read from a temporary staging table with one row per
(device, UTC hour) of the batch (collector/store/rollup.py builds the rows). Only when
the writer's cache says they are needed: the good-hour bits of ``point_activity`` and
the first-seen time stamps of points and devices, from a second staging table. Every one of
those is an idempotent merge (OR, LEAST) guarded so that a row already holding the
value is not rewritten.

Outside the batch transactions, coalesced: the latest value of each point and the last
seen time of each device, guarded by time so that they only move forward.

Rows are upserted in key order where the statement allows it, so concurrent writers
lock them alike; a deadlock that still happens surfaces as StoreUnavailable and the
batch is replayed.
"""

from __future__ import annotations

from collector.store.rollup import DEVICE_HOUR_COLUMNS, SAMPLE_COLUMNS

DEVICE_STAGE = "tally_batch_devices"
LATEST_STAGE = "tally_latest_points"
KEYS_STAGE = "tally_batch_keys"

CREATE_DEVICE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {DEVICE_STAGE} (
    device_id bigint NOT NULL,
    hour timestamptz NOT NULL,
    samples bigint NOT NULL,
    good_samples bigint NOT NULL,
    imported_samples bigint NOT NULL,
    first_ts timestamptz,
    last_ts timestamptz,
    first_good_ts timestamptz,
    last_good_ts timestamptz
) ON COMMIT DELETE ROWS
"""
CREATE_LATEST_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {LATEST_STAGE} (
    point_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    value double precision,
    value_text text,
    quality smallint NOT NULL
) ON COMMIT DELETE ROWS
"""
# (kind, id, time stamp) rows: what the cache lacks, and devices' last-seen times.
CREATE_KEYS_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {KEYS_STAGE} (
    kind smallint NOT NULL,
    id bigint NOT NULL,
    ts timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""
GOOD_HOUR = 1  # point id, UTC hour with a good live sample
POINT_FIRST = 2  # point id, first live time stamp in the batch
DEVICE_FIRST = 3  # device id, first live time stamp in the batch
DEVICE_LAST = 4  # device id, last live time stamp since the last flush
KEY_TYPES = ("int2", "int8", "timestamptz")
CREATE_STAGES = (CREATE_DEVICE_STAGE, CREATE_LATEST_STAGE, CREATE_KEYS_STAGE)

# Returns the ids that were not logged yet: those batches are applied, the rest skipped.
LOG_BATCHES = """
INSERT INTO ingest_log (batch_id, samples, events, source)
SELECT b, s, e, %s FROM unnest(%s::uuid[], %s::integer[], %s::integer[]) AS t(b, s, e)
ON CONFLICT (batch_id) DO NOTHING
RETURNING batch_id
"""
CORRECT_LOGGED_SAMPLES = "UPDATE ingest_log SET samples = %s WHERE batch_id = %s"

COPY_SAMPLES = f"COPY sample ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
COPY_DEVICE_STAGE = (
    f"COPY {DEVICE_STAGE} ({', '.join(DEVICE_HOUR_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)
COPY_KEYS_STAGE = f"COPY {KEYS_STAGE} (kind, id, ts) FROM STDIN (FORMAT BINARY)"
COPY_LATEST_STAGE = (
    f"COPY {LATEST_STAGE} (point_id, ts, value, value_text, quality) FROM STDIN (FORMAT BINARY)"
)

# device_activity per (device, UTC hour). Existing rows are updated first, by a plain
# UPDATE: cheaper than INSERT .. ON CONFLICT (no speculative insertion, no tuple lock).
# Only when it touched fewer rows than were staged, the rest are inserted; ON CONFLICT
# stays for a row another writer inserted meanwhile.
_MERGE_DEVICE_ACTIVITY = """
    samples = a.samples + {s}.samples,
    good_samples = a.good_samples + {s}.good_samples,
    imported_samples = a.imported_samples + {s}.imported_samples,
    first_ts = LEAST(a.first_ts, {s}.first_ts),
    last_ts = GREATEST(a.last_ts, {s}.last_ts),
    first_good_ts = LEAST(a.first_good_ts, {s}.first_good_ts),
    last_good_ts = GREATEST(a.last_good_ts, {s}.last_good_ts)
"""
UPDATE_DEVICE_ACTIVITY = f"""
UPDATE device_activity AS a SET {_MERGE_DEVICE_ACTIVITY.format(s="s")}
FROM {DEVICE_STAGE} AS s
WHERE a.device_id = s.device_id AND a.hour = s.hour
"""
INSERT_DEVICE_ACTIVITY = f"""
INSERT INTO device_activity AS a (device_id, hour, samples, good_samples, imported_samples,
                                  first_ts, last_ts, first_good_ts, last_good_ts)
SELECT device_id, hour, samples, good_samples, imported_samples,
       first_ts, last_ts, first_good_ts, last_good_ts
FROM {DEVICE_STAGE} AS s
WHERE NOT EXISTS (SELECT FROM device_activity x
                  WHERE x.device_id = s.device_id AND x.hour = s.hour)
ORDER BY device_id, hour
ON CONFLICT (device_id, hour) DO UPDATE SET {_MERGE_DEVICE_ACTIVITY.format(s="EXCLUDED")}
"""

# Good-hour bits, from (point id, UTC hour) pairs the writer does not know to be stored.
# Rows that hold the bits already are left alone (not rewritten); missing (point, day)
# rows are inserted. The UPDATE's changes are invisible to the INSERT's NOT EXISTS, but
# that sees the rows the UPDATE found, which is what keeps the two apart.
ADD_GOOD_HOURS = f"""
WITH s AS (
    SELECT id AS point_id, (ts AT TIME ZONE 'UTC')::date AS day,
           bit_or(1 << extract(hour FROM ts AT TIME ZONE 'UTC')::integer) AS bits
    FROM {KEYS_STAGE} WHERE kind = {GOOD_HOUR}
    GROUP BY 1, 2
), updated AS (
    UPDATE point_activity AS a SET good_hours = a.good_hours | s.bits
    FROM s
    WHERE a.point_id = s.point_id AND a.day = s.day AND a.good_hours & s.bits <> s.bits
)
INSERT INTO point_activity AS a (point_id, day, good_hours)
SELECT point_id, day, bits FROM s
WHERE NOT EXISTS (SELECT FROM point_activity x WHERE x.point_id = s.point_id AND x.day = s.day)
ORDER BY point_id, day
ON CONFLICT (point_id, day) DO UPDATE SET good_hours = a.good_hours | EXCLUDED.good_hours
"""

# First live sample ever, from (id, first time stamp in the batch) pairs; only moves back.
_FIRST_SEEN = f"""
UPDATE {{table}} AS t SET first_seen = s.ts
FROM {KEYS_STAGE} AS s
WHERE s.kind = {{kind}} AND t.id = s.id AND (t.first_seen IS NULL OR t.first_seen > s.ts)
"""
POINT_FIRST_SEEN = _FIRST_SEEN.format(table="point", kind=POINT_FIRST)
DEVICE_FIRST_SEEN = _FIRST_SEEN.format(table="device", kind=DEVICE_FIRST)

# Latest values and last seen, coalesced across batches; they only move forward, so an
# older batch applied later (or a repeated flush) never moves them back.
POINT_LATEST = f"""
UPDATE point AS p SET
    last_seen = s.ts,
    last_value = s.value,
    last_value_text = s.value_text,
    last_quality = s.quality
FROM {LATEST_STAGE} AS s
WHERE p.id = s.point_id AND (p.last_seen IS NULL OR p.last_seen < s.ts)
"""
DEVICE_LAST_SEEN = f"""
UPDATE device AS d SET last_seen = s.ts
FROM {KEYS_STAGE} AS s
WHERE s.kind = {DEVICE_LAST} AND d.id = s.id AND (d.last_seen IS NULL OR d.last_seen < s.ts)
"""
