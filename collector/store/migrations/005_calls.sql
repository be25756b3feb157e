-- Registries and call volumes (issue 8).
--
-- Subscriptions get a key of the operator's choosing, so a re-import updates instead of
-- duplicating; every registry gets updated_at like enterprise and device have.
ALTER TABLE subscription ADD COLUMN key text UNIQUE;
ALTER TABLE subscription ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE app ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE developer ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE platform_user ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX subscription_app_idx ON subscription (app_id);

-- The zone whose calendar months call_monthly counts in. Set by the first ingest from the
-- configured `timezone`; an ingest with another zone is refused, because its months would
-- not add up with the rows already counted.
CREATE TABLE call_zone (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    timezone        text NOT NULL,
    set_at          timestamptz NOT NULL DEFAULT now()
);

-- Who called, per UTC day, maintained at ingest like call_monthly: enterprises (any call)
-- and developers (calls of a development tool). first_ts/last_ts make a window that cuts
-- a day exact: a caller counts when last_ts >= start and first_ts < end. Readers probe
-- the primary key once per enterprise or developer (collector/store/registry_figures.py),
-- so no second index slows the ingest.
CREATE TABLE call_caller_daily (
    caller          text NOT NULL CHECK (caller IN ('enterprise', 'dev_tool_developer')),
    caller_id       bigint NOT NULL,
    day             date NOT NULL,
    calls           bigint NOT NULL DEFAULT 0,
    first_ts        timestamptz NOT NULL,
    last_ts         timestamptz NOT NULL,
    PRIMARY KEY (caller, caller_id, day)
) WITH (fillfactor = 70);
ALTER TABLE call_monthly SET (fillfactor = 70);
