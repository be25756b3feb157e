-- Live spot checks: devices picked from an auditor's seed among the connected ones, read now.
-- One row per spot check, one per device it read; written once, when the reads are done,
-- in the same transaction as the spot check's audit_log entry.
CREATE TABLE spot_check (
    id                bigserial PRIMARY KEY,
    requested_by      text NOT NULL,              -- api-key:<prefix>
    seed              text NOT NULL,
    sample_size       integer NOT NULL CHECK (sample_size > 0),
    window_spec       text NOT NULL,              -- as asked, e.g. 30d
    window_start      timestamptz NOT NULL,       -- aligned bounds used for the candidates
    window_end        timestamptz NOT NULL,
    include_simulated boolean NOT NULL,
    algorithm         text NOT NULL,              -- selection algorithm, e.g. sha256-rank-v1
    candidates        integer NOT NULL CHECK (candidates >= 0),
    candidates_digest text NOT NULL,              -- SHA-256 hex of the sorted candidate keys
    created_at        timestamptz NOT NULL,
    completed_at      timestamptz NOT NULL
);
CREATE INDEX spot_check_created_idx ON spot_check (created_at);

CREATE TABLE spot_check_device (
    spot_check_id     bigint NOT NULL REFERENCES spot_check (id) ON DELETE CASCADE,
    position          integer NOT NULL,           -- 0 = smallest rank
    device_id         bigint REFERENCES device (id) ON DELETE SET NULL,
    device_key        text NOT NULL,
    protocol          text NOT NULL,
    point_key         text,                       -- the point read (null: none to read)
    rank              text NOT NULL,              -- SHA-256 hex of seed, newline, device key
    answered          boolean NOT NULL,
    value             jsonb,
    quality           text CHECK (quality IN ('good', 'uncertain', 'bad')),
    read_at           timestamptz,                -- when the answer arrived
    value_ts          timestamptz,                -- the sample's own time stamp
    latency_ms        double precision,
    error             text,
    PRIMARY KEY (spot_check_id, position)
);
