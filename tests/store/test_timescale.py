"""TimescaleDB setup, without TimescaleDB.

TimescaleDB cannot be installed on the machines that run this suite, so its path is
covered in two honest halves:

- unit: a recording connection proves which statements `setup` issues, in order, for
  a 2.13+ and a pre-2.13 server, with and without retention, and that nothing is
  issued when the extension is unavailable;
- contract: on a real PostgreSQL, a schema `timescale_contract` holds PL/pgSQL
  functions with the names, argument names, argument types and defaults of the
  documented TimescaleDB 2.x API (taken from timescaledb's sql/ddl_api.sql and
  sql/policy_api.sql), so the named-argument calls in collector/store/timescale.py
  are resolved by PostgreSQL's own parser against those signatures. Differences
  from the real functions, all forced by PL/pgSQL: `"any"` arguments are declared
  `anyelement` (PL/pgSQL cannot take "any"; for a single polymorphic argument given
  an explicitly cast value both resolve alike) and the dimension type lives in
  `timescale_contract` instead of `_timescaledb_internal`. `ALTER TABLE .. SET
  (timescaledb.compress ..)` is parsed by the real server, which then stops at the
  unknown `timescaledb` option namespace: that error proves the syntax was accepted.
"""

import re
from collections.abc import Iterator, Sequence
from typing import Any, cast

import psycopg
import pytest
from psycopg import sql

from collector.config import TimescaleConfig
from collector.store import timescale


class Rows:
    """The cursor a fake execute returns."""

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._rows = list(rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None


def render(query: str | sql.Composable) -> str:
    text = query if isinstance(query, str) else query.as_string()
    return re.sub(r"\s+", " ", text).strip()


class Recorder:
    """A connection that records statements and answers the probes `setup` makes."""

    def __init__(
        self, *, available: bool = True, preloaded: bool = True, version: str = "2.14.2"
    ) -> None:
        self.available, self.preloaded, self.version = available, preloaded, version
        self.statements: list[tuple[str, tuple[Any, ...] | None]] = []

    def execute(self, query: str | sql.Composable, params: Any = None) -> Rows:
        text = render(query)
        self.statements.append((text, tuple(params) if params is not None else None))
        if "pg_available_extensions" in text:
            return Rows([(self.preloaded,)] if self.available else [])
        if "FROM pg_extension" in text:
            return Rows([(self.version,)])
        return Rows([])  # not a hypertable yet; every other statement returns nothing

    def calls(self) -> list[tuple[str, tuple[Any, ...] | None]]:
        """Statements after the probes: what setup changes."""
        probes = ("pg_available_extensions", "FROM pg_extension", "timescaledb_information")
        return [s for s in self.statements if not any(p in s[0] for p in probes)]


def run_setup(recorder: Recorder, settings: TimescaleConfig) -> bool:
    return timescale.setup(cast(psycopg.Connection[tuple[object, ...]], recorder), settings)


def compression(table: str, segment_by: str) -> list[tuple[str, tuple[Any, ...] | None]]:
    return [
        (
            f'ALTER TABLE "{table}" SET (timescaledb.compress, timescaledb.compress_segmentby'
            f" = '{segment_by}', timescaledb.compress_orderby = 'ts DESC')",
            None,
        ),
        (
            "SELECT add_compression_policy(%s::regclass, compress_after => %s::interval, "
            "if_not_exists => true)",
            (table, "7 days"),
        ),
    ]


GENERAL = (
    "SELECT create_hypertable(%s::regclass, by_range(%s, %s::interval), "
    "if_not_exists => true, migrate_data => true)"
)
LEGACY = (
    "SELECT create_hypertable(%s::regclass, %s, chunk_time_interval => %s::interval, "
    "if_not_exists => true, migrate_data => true)"
)
REMOVE_RETENTION = ("SELECT remove_retention_policy(%s::regclass, if_exists => true)", ("sample",))


def test_213_and_later_use_the_generalised_create_hypertable() -> None:
    recorder = Recorder(version="2.14.2")
    assert run_setup(recorder, TimescaleConfig(chunk_interval="6 hours"))
    assert recorder.calls() == [
        ("CREATE EXTENSION IF NOT EXISTS timescaledb", None),
        (GENERAL, ("sample", "ts", "6 hours")),
        *compression("sample", "point_id"),
        (GENERAL, ("call_event", "ts", "6 hours")),
        *compression("call_event", "app_id"),
        REMOVE_RETENTION,
    ]


def test_before_213_the_legacy_create_hypertable_and_retention_when_configured() -> None:
    recorder = Recorder(version="2.11.2-dev")
    assert run_setup(recorder, TimescaleConfig(retention="90 days"))
    assert recorder.calls() == [
        ("CREATE EXTENSION IF NOT EXISTS timescaledb", None),
        (LEGACY, ("sample", "ts", "1 day")),
        *compression("sample", "point_id"),
        (LEGACY, ("call_event", "ts", "1 day")),
        *compression("call_event", "app_id"),
        REMOVE_RETENTION,
        (
            "SELECT add_retention_policy(%s::regclass, drop_after => %s::interval, "
            "if_not_exists => true)",
            ("sample", "90 days"),
        ),
    ]


def test_compression_settings_are_not_altered_again_once_enabled() -> None:
    # TimescaleDB refuses ALTER TABLE .. SET (timescaledb.compress ..) while compressed
    # chunks exist, even with unchanged settings; a second migrate must not issue it.
    class Compressed(Recorder):
        def execute(self, query: str | sql.Composable, params: Any = None) -> Rows:
            if "timescaledb_information.hypertables" in render(query):
                self.statements.append((render(query), params))
                return Rows([(True,)])
            return super().execute(query, params)

    recorder = Compressed()
    assert run_setup(recorder, TimescaleConfig())
    assert not any(s.startswith(("ALTER TABLE", "SELECT create_")) for s, _ in recorder.calls())
    assert sum("add_compression_policy" in s for s, _ in recorder.calls()) == 2


@pytest.mark.parametrize(("available", "preloaded"), [(False, False), (True, False)])
def test_nothing_happens_without_a_usable_extension(available: bool, preloaded: bool) -> None:
    recorder = Recorder(available=available, preloaded=preloaded)
    assert run_setup(recorder, TimescaleConfig(retention="30 days")) is False
    assert len(recorder.statements) == 1 and "pg_available_extensions" in recorder.statements[0][0]


# --- contract: the documented signatures, resolved by PostgreSQL ---------------------------

CONTRACT = """
CREATE SCHEMA timescale_contract;
CREATE TABLE timescale_contract.calls (seq serial, fn text, args jsonb);
CREATE TYPE timescale_contract.dimension_info AS
    (column_name name, partition_interval text, partition_func regproc);

-- timescaledb_information.hypertables (the columns timescale.py reads).
CREATE SCHEMA timescaledb_information;
CREATE TABLE timescaledb_information.hypertables (
    hypertable_schema name, hypertable_name name, compression_enabled boolean);

CREATE FUNCTION timescale_contract.by_range(
    column_name name,
    partition_interval anyelement = NULL::bigint,
    partition_func regproc = NULL
) RETURNS timescale_contract.dimension_info LANGUAGE plpgsql AS $$
BEGIN
    RETURN ROW(column_name, partition_interval::text, partition_func);
END $$;

-- 2.13+ generalised form.
CREATE FUNCTION timescale_contract.create_hypertable(
    relation regclass,
    dimension timescale_contract.dimension_info,
    create_default_indexes boolean = true,
    if_not_exists boolean = false,
    migrate_data boolean = false
) RETURNS TABLE(hypertable_id integer, created boolean) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO timescale_contract.calls (fn, args) VALUES ('create_hypertable', jsonb_build_object(
        'relation', relation::text, 'column', (dimension).column_name,
        'interval', (dimension).partition_interval, 'if_not_exists', if_not_exists,
        'migrate_data', migrate_data));
    INSERT INTO timescaledb_information.hypertables
        VALUES (current_schema(), relation::text, false);
    RETURN QUERY SELECT 1, true;
END $$;

-- The deprecated form, still present next to the generalised one.
CREATE FUNCTION timescale_contract.create_hypertable(
    relation regclass,
    time_column_name name,
    partitioning_column name = NULL,
    number_partitions integer = NULL,
    associated_schema_name name = NULL,
    associated_table_prefix name = NULL,
    chunk_time_interval anyelement = NULL::bigint,
    create_default_indexes boolean = true,
    if_not_exists boolean = false,
    partitioning_func regproc = NULL,
    migrate_data boolean = false,
    chunk_target_size text = NULL,
    chunk_sizing_func regproc = NULL,
    time_partitioning_func regproc = NULL
) RETURNS TABLE(hypertable_id integer, schema_name name, table_name name, created boolean)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO timescale_contract.calls (fn, args) VALUES ('create_hypertable', jsonb_build_object(
        'relation', relation::text, 'column', time_column_name,
        'interval', chunk_time_interval::text, 'if_not_exists', if_not_exists,
        'migrate_data', migrate_data));
    INSERT INTO timescaledb_information.hypertables
        VALUES (current_schema(), relation::text, false);
    RETURN QUERY SELECT 1, current_schema()::name, relation::text::name, true;
END $$;

CREATE FUNCTION timescale_contract.add_compression_policy(
    hypertable regclass,
    compress_after anyelement = NULL,
    if_not_exists boolean = false,
    schedule_interval interval = NULL,
    initial_start timestamptz = NULL,
    timezone text = NULL,
    compress_created_before interval = NULL
) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO timescale_contract.calls (fn, args) VALUES ('add_compression_policy',
        jsonb_build_object('relation', hypertable::text, 'after', compress_after::text,
                           'if_not_exists', if_not_exists));
    RETURN 1000;
END $$;

CREATE FUNCTION timescale_contract.add_retention_policy(
    relation regclass,
    drop_after anyelement = NULL,
    if_not_exists boolean = false,
    schedule_interval interval = NULL,
    initial_start timestamptz = NULL,
    timezone text = NULL,
    drop_created_before interval = NULL
) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO timescale_contract.calls (fn, args) VALUES ('add_retention_policy',
        jsonb_build_object('relation', relation::text, 'after', drop_after::text,
                           'if_not_exists', if_not_exists));
    RETURN 1001;
END $$;

CREATE FUNCTION timescale_contract.remove_retention_policy(
    relation regclass,
    if_exists boolean = false
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO timescale_contract.calls (fn, args) VALUES ('remove_retention_policy',
        jsonb_build_object('relation', relation::text, 'if_exists', if_exists));
END $$;
"""


class ContractConnection:
    """Runs setup's statements on a real server whose search path finds the contract."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], version: str) -> None:
        self.conn, self.version = conn, version
        self.altered: list[str] = []

    def execute(self, query: str | sql.SQL | sql.Composed, params: Any = None) -> Any:
        text = render(query)
        if "pg_available_extensions" in text:
            return Rows([(True,)])
        if text.startswith("CREATE EXTENSION"):
            return Rows([])
        if "FROM pg_extension" in text:
            return Rows([(self.version,)])
        if text.startswith("ALTER TABLE"):
            with pytest.raises(
                psycopg.errors.InvalidParameterValue,
                match='unrecognized parameter namespace "timescaledb"',
            ):
                self.conn.execute(query)
            self.altered.append(text)
            return Rows([])
        return self.conn.execute(query, params)


@pytest.fixture
def contract_db(database_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(CONTRACT.encode())
        conn.execute("SET search_path = public, timescale_contract")
        yield conn


def contract_calls(conn: psycopg.Connection[tuple[Any, ...]]) -> list[tuple[str, Any]]:
    return [(fn, args) for fn, args in conn.execute(
        "SELECT fn, args FROM timescale_contract.calls ORDER BY seq")]  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("version", ["2.14.2", "2.11.2"])
def test_calls_resolve_against_the_documented_signatures(
    contract_db: psycopg.Connection[tuple[Any, ...]], version: str
) -> None:
    conn = ContractConnection(contract_db, version)
    settings = TimescaleConfig(chunk_interval="12 hours", retention="90 days")
    assert timescale.setup(cast(psycopg.Connection[tuple[object, ...]], conn), settings)
    hypertable = {"if_not_exists": True, "migrate_data": True, "interval": "12:00:00"}
    compress = {"after": "7 days", "if_not_exists": True}
    assert contract_calls(contract_db) == [
        ("create_hypertable", {"relation": "sample", "column": "ts", **hypertable}),
        ("add_compression_policy", {"relation": "sample", **compress}),
        ("create_hypertable", {"relation": "call_event", "column": "ts", **hypertable}),
        ("add_compression_policy", {"relation": "call_event", **compress}),
        ("remove_retention_policy", {"relation": "sample", "if_exists": True}),
        ("add_retention_policy", {"relation": "sample", "after": "90 days", "if_not_exists": True}),
    ]
    assert [a.split(" SET ")[0] for a in conn.altered] == [
        'ALTER TABLE "sample"',
        'ALTER TABLE "call_event"',
    ]


@pytest.mark.integration
def test_a_second_setup_leaves_existing_hypertables_alone(
    contract_db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    conn = ContractConnection(contract_db, "2.14.2")
    timescale.setup(cast(psycopg.Connection[tuple[object, ...]], conn), TimescaleConfig())
    contract_db.execute("UPDATE timescaledb_information.hypertables SET compression_enabled = true")
    contract_db.execute("TRUNCATE timescale_contract.calls")
    conn.altered.clear()
    timescale.setup(cast(psycopg.Connection[tuple[object, ...]], conn), TimescaleConfig())
    assert [fn for fn, _ in contract_calls(contract_db)] == [
        "add_compression_policy",
        "add_compression_policy",
        "remove_retention_policy",
    ]
    assert conn.altered == []


@pytest.mark.integration
def test_the_contract_catches_a_wrong_argument_name(
    contract_db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    # The contract is only worth something if a misspelt or undocumented name fails.
    with pytest.raises(psycopg.errors.UndefinedFunction):
        contract_db.execute(
            "SELECT add_compression_policy('sample'::regclass, older_than => '7 days'::interval)"
        )
    with pytest.raises(psycopg.errors.UndefinedFunction):
        contract_db.execute(
            "SELECT create_hypertable('sample'::regclass, by_range('ts', '1 day'::interval),"
            " chunk_time_interval => '1 day'::interval)"
        )
