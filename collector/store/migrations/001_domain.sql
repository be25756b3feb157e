-- Tally domain schema, version 1.
-- Plain PostgreSQL 15+; TimescaleDB features are added by collector/store/timescale.py when present.

CREATE TABLE enterprise (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    name            text NOT NULL,
    kind            text,                       -- e.g. large, sme, park operator
    industry        text,                       -- GB/T 4754-2017 code
    region          text,                       -- GB/T 2260 administrative code
    park            text,
    device_inventory integer CHECK (device_inventory IS NULL OR device_inventory >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE,       -- stable identity (configured or derived from the protocol)
    name            text,
    protocol        text NOT NULL,              -- modbus, opcua, mqtt, sparkplug
    endpoint        text NOT NULL,
    device_type     text,                       -- 设备种类 label
    industry        text,                       -- GB/T 4754-2017 code (overrides the enterprise's)
    region          text,                       -- GB/T 2260 administrative code
    park            text,
    enterprise_id   bigint REFERENCES enterprise (id) ON DELETE SET NULL,
    simulated       boolean NOT NULL DEFAULT false,
    identity        jsonb NOT NULL DEFAULT '{}'::jsonb,  -- vendor, product code, model, serial, application URI
    status          text NOT NULL DEFAULT 'unknown'
                    CHECK (status IN ('unknown', 'online', 'offline', 'vanished')),
    status_changed_at timestamptz,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    first_seen      timestamptz,                -- first live sample ever
    last_seen       timestamptz                 -- last live sample ever
);
CREATE INDEX device_industry_idx ON device (industry);
CREATE INDEX device_type_idx ON device (device_type);

CREATE TABLE point (
    id              bigserial PRIMARY KEY,
    device_id       bigint NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    key             text NOT NULL,
    address         text NOT NULL,
    data_type       text NOT NULL,
    unit            text,
    writable        boolean NOT NULL DEFAULT false,
    description     text,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    first_seen      timestamptz,
    last_seen       timestamptz,
    last_value      double precision,
    last_value_text text,
    last_quality    smallint,
    UNIQUE (device_id, key)
);

-- Raw telemetry. No foreign key and no b-tree: rows arrive by binary COPY and are
-- read only by drill-downs and retention; counts come from the rollups below.
CREATE TABLE sample (
    ts              timestamptz NOT NULL,
    point_id        bigint NOT NULL,
    value           double precision,           -- numbers; booleans as 0/1
    value_text      text,                       -- strings
    quality         smallint NOT NULL,          -- 0 good, 1 uncertain, 2 bad
    live            boolean NOT NULL DEFAULT true
);

-- Hourly per-device rollup maintained by the writer in the same transaction as the samples.
CREATE TABLE device_activity (
    device_id       bigint NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    hour            timestamptz NOT NULL,
    samples         bigint NOT NULL DEFAULT 0,  -- live samples
    good_samples    bigint NOT NULL DEFAULT 0,  -- live samples of good quality
    imported_samples bigint NOT NULL DEFAULT 0, -- bulk-imported history: never makes a device connected
    first_ts        timestamptz,
    last_ts         timestamptz,
    first_good_ts   timestamptz,
    last_good_ts    timestamptz,
    PRIMARY KEY (device_id, hour)
);
CREATE INDEX device_activity_hour_idx ON device_activity (hour);

-- Daily per-point rollup; good_hours has bit h set when the point had a good live
-- sample in UTC hour h of that day, so point counts are exact to the hour.
CREATE TABLE point_activity (
    point_id        bigint NOT NULL REFERENCES point (id) ON DELETE CASCADE,
    day             date NOT NULL,
    samples         bigint NOT NULL DEFAULT 0,
    good_samples    bigint NOT NULL DEFAULT 0,
    good_hours      integer NOT NULL DEFAULT 0,
    first_ts        timestamptz,
    last_ts         timestamptz,
    PRIMARY KEY (point_id, day)
);
CREATE INDEX point_activity_day_idx ON point_activity (day);

-- Batches already applied: a replayed batch is skipped, so every sample is stored exactly once.
CREATE TABLE ingest_log (
    batch_id        uuid PRIMARY KEY,
    applied_at      timestamptz NOT NULL DEFAULT now(),
    samples         integer NOT NULL,
    events          integer NOT NULL,
    source          text NOT NULL DEFAULT 'live'  -- live, spool, import
);

CREATE TABLE control_op (
    id              bigserial PRIMARY KEY,
    device_id       bigint NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    point_id        bigint REFERENCES point (id) ON DELETE SET NULL,
    kind            text NOT NULL CHECK (kind IN ('write', 'method', 'command', 'probe')),
    requested_value jsonb,
    value_before    jsonb,
    read_back       jsonb,
    requested_by    text NOT NULL,               -- API key id or 'schedule'
    requested_at    timestamptz NOT NULL,
    completed_at    timestamptz,
    latency_ms      double precision,
    outcome         text NOT NULL CHECK (outcome IN (
                        'verified', 'rejected', 'mismatch', 'timeout', 'not_allowed', 'error')),
    detail          text
);
CREATE INDEX control_op_device_time_idx ON control_op (device_id, requested_at);
CREATE INDEX control_op_verified_idx ON control_op (requested_at) WHERE outcome = 'verified';

CREATE TABLE developer (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    name            text NOT NULL,
    third_party     boolean NOT NULL,
    languages       text[] NOT NULL DEFAULT '{}',
    enterprise_id   bigint REFERENCES enterprise (id) ON DELETE SET NULL,
    registered_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform_user (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    kind            text NOT NULL,               -- e.g. enterprise staff, individual, developer
    enterprise_id   bigint REFERENCES enterprise (id) ON DELETE SET NULL,
    registered_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN (
                        'mechanism_model', 'algorithm', 'industrial_app', 'cloud_software', 'dev_tool')),
    category        text,
    industry        text,                        -- GB/T 4754-2017 code
    domain          text CHECK (domain IS NULL OR domain IN (
                        '研发设计', '供应链', '生产制造', '运营管理', '企业管理', '仓储物流', '产品服务')),
    provider        text,
    developer_id    bigint REFERENCES developer (id) ON DELETE SET NULL,
    cross_platform  boolean NOT NULL DEFAULT false,
    registered_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscription (
    id              bigserial PRIMARY KEY,
    app_id          bigint NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    enterprise_id   bigint REFERENCES enterprise (id) ON DELETE CASCADE,
    user_id         bigint REFERENCES platform_user (id) ON DELETE CASCADE,
    subscribed_at   timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    CHECK (enterprise_id IS NOT NULL OR user_id IS NOT NULL)
);

-- One row per invocation. Idempotency by event id lives in call_event_seen, because a
-- hypertable's unique keys must include its time column.
CREATE TABLE call_event (
    ts              timestamptz NOT NULL,
    event_id        text NOT NULL,
    app_id          bigint NOT NULL,
    enterprise_id   bigint,
    user_id         bigint,
    developer_id    bigint,
    outcome         text NOT NULL,
    duration_ms     double precision
);

CREATE TABLE call_event_seen (
    event_id        text PRIMARY KEY,
    ts              timestamptz NOT NULL
);

-- Monthly rollup per app maintained at ingest; months are calendar months in the configured zone.
CREATE TABLE call_monthly (
    app_id          bigint NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    month           date NOT NULL,
    calls           bigint NOT NULL DEFAULT 0,
    ok_calls        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, month)
);

CREATE TABLE declaration (
    id              bigserial PRIMARY KEY,
    program         text NOT NULL,
    tier            text NOT NULL,
    clause          text NOT NULL,
    metric          text,
    value           jsonb NOT NULL,
    evidence_ref    text NOT NULL,
    declared_by     text NOT NULL,
    declared_at     timestamptz NOT NULL DEFAULT now(),
    note            text
);

CREATE TABLE api_key (
    id              bigserial PRIMARY KEY,
    prefix          text NOT NULL UNIQUE,        -- public part shown in logs
    secret_hash     bytea NOT NULL,              -- SHA-256 of the whole key
    role            text NOT NULL CHECK (role IN ('auditor', 'operator', 'admin')),
    label           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    last_used_at    timestamptz
);

CREATE TABLE audit_log (
    seq             bigserial PRIMARY KEY,
    ts              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    action          text NOT NULL,
    subject         text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash       bytea,
    hash            bytea NOT NULL UNIQUE
);
