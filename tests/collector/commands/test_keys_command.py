"""`tally keys create|list|revoke` in-process against a real PostgreSQL."""

import asyncio
import uuid

import psycopg
import pytest
from psycopg import AsyncConnection

from api.auth import KeyRejected, Role, authenticate, hash_key
from collector.cli import main
from tests.conftest import PostgresServer

pytestmark = pytest.mark.integration


async def _role_of(dsn: str, token: str) -> Role:
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        return (await authenticate(conn, token)).role


def test_create_prints_only_the_key_and_stores_its_hash(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["keys", "create", "--role", "auditor", "--label", "audit firm", "--dsn",
                 database_url])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    token = out.strip()
    assert out == token + "\n" and token.startswith("tly_")
    prefix = token.split("_")[1]
    assert prefix in err and "shown once" in err
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT secret_hash, role, label FROM api_key WHERE prefix = %s", (prefix,)
        ).fetchone()
    assert row is not None
    assert (bytes(row[0]), row[1], row[2]) == (hash_key(token), "auditor", "audit firm")
    assert asyncio.run(_role_of(database_url, token)) is Role.AUDITOR


def test_list_and_revoke(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for role in ("admin", "operator"):
        assert main(["keys", "create", "--role", role, "--dsn", database_url]) == 0
    admin, operator = capsys.readouterr().out.split()
    assert main(["keys", "list", "--dsn", database_url]) == 0
    listing = capsys.readouterr().out
    lines = listing.splitlines()
    assert lines[0].startswith("PREFIX") and len(lines) == 3
    assert admin.split("_")[1] in lines[1] and "admin" in lines[1] and "active" in lines[1]
    assert admin not in listing and operator not in listing

    op_prefix = operator.split("_")[1]
    assert main(["keys", "revoke", op_prefix, "--dsn", database_url]) == 0
    assert f"revoked operator key {op_prefix}" in capsys.readouterr().out
    assert main(["keys", "list", "--dsn", database_url]) == 0
    assert "revoked" in capsys.readouterr().out.splitlines()[2]
    with pytest.raises(KeyRejected, match="revoked"):
        asyncio.run(_role_of(database_url, operator))
    assert asyncio.run(_role_of(database_url, admin)) is Role.ADMIN

    assert main(["keys", "revoke", "ffffffff", "--dsn", database_url]) == 1
    assert "no key with prefix 'ffffffff'" in capsys.readouterr().err


def test_bad_role_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["keys", "create", "--role", "root", "--dsn", "postgresql://127.0.0.1:1/x"])
    assert info.value.code == 2
    assert "invalid choice: 'root'" in capsys.readouterr().err


def test_unmigrated_database_says_to_migrate(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"tally_empty_{uuid.uuid4().hex[:10]}"
    admin = postgres_server.database_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        code = main(["keys", "create", "--role", "admin", "--dsn",
                     postgres_server.database_dsn(name)])  # fmt: skip
        captured = capsys.readouterr()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert code == 1
    assert captured.out == ""
    assert "run `tally db migrate`" in captured.err
