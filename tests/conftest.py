"""Shared fixtures: a real PostgreSQL and Mosquitto for the run, a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from collector.embedded.mosquitto import ThrowawayMosquitto
from collector.embedded.postgres import ThrowawayPostgres
from collector.store.migrate import migrate

TEMPLATE_DB = "tally_test_template"


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server the test run may create databases on."""

    dsn: str

    def database_dsn(self, name: str) -> str:
        """Return a DSN for database `name` on this server."""
        return _with_database(self.dsn, name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Use TALLY_TEST_DATABASE_URL when set, else a throwaway cluster for the whole run."""
    given = os.environ.get("TALLY_TEST_DATABASE_URL")
    if given:
        server = PostgresServer(given)
        cluster = None
    else:
        cluster = ThrowawayPostgres(durable=False)
        cluster.start()
        server = PostgresServer(cluster.dsn)
    admin = server.database_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    migrate(server.database_dsn(TEMPLATE_DB))
    try:
        yield server
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        if cluster is not None:
            cluster.remove()


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """Return the DSN of a fresh, migrated database that is dropped after the test."""
    name = f"tally_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.database_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    try:
        yield postgres_server.database_dsn(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_postgres() -> Iterator[ThrowawayPostgres]:
    """Return a cluster of the test's own, which the test may stop and restart."""
    cluster = ThrowawayPostgres(durable=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """Use TALLY_TEST_MQTT_URL when set, else a throwaway Mosquitto for the whole run."""
    given = os.environ.get("TALLY_TEST_MQTT_URL")
    if given:
        yield given
        return
    broker = ThrowawayMosquitto()
    broker.start()
    try:
        yield broker.url
    finally:
        broker.remove()
