from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import AsyncCopy
from psycopg.abc import Buffer
from psycopg.copy import AsyncWriter

from adapters.base import Quality
from collector.store.copyrows import ROWS_PER_BLOCK, has_fast_formatter, write_rows
from collector.store.rollup import SAMPLE_COLUMNS, SAMPLE_TYPES

T0 = datetime(2024, 5, 1, tzinfo=UTC)


class Captured(AsyncWriter):
    """Keeps the COPY stream instead of sending it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, data: Buffer) -> None:
        self.data += data
        self.writes += 1


async def stream(dsn: str, rows: Sequence[Sequence[Any]], fast: bool) -> Captured:
    captured = Captured()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        copy = AsyncCopy(conn.cursor(), binary=True, writer=captured)
        copy.set_types(list(SAMPLE_TYPES))
        async with copy:
            await write_rows(copy, rows, fast=fast)
    return captured


def sample_rows(n: int) -> list[tuple[Any, ...]]:
    return [
        (T0 + timedelta(milliseconds=i), i + 1, None if i % 3 else i * 0.5,
         "on" if i % 3 == 1 else None, Quality(i % 3), bool(i % 2))
        for i in range(n)
    ]  # fmt: skip


def test_this_psycopg_has_the_fast_formatter() -> None:
    # If this fails after a psycopg upgrade, the writer still works (row by row) but
    # loses most of its COPY speed: look for the new home of format_row_binary.
    assert has_fast_formatter()


@pytest.mark.integration
@pytest.mark.parametrize("n", [0, 1, ROWS_PER_BLOCK, 3 * ROWS_PER_BLOCK + 7])
async def test_fast_path_streams_the_same_bytes_as_psycopg_row_by_row(
    database_url: str, n: int
) -> None:
    rows = sample_rows(n)
    fast = await stream(database_url, rows, fast=True)
    slow = await stream(database_url, rows, fast=False)
    assert fast.data == slow.data
    assert fast.data.startswith(b"PGCOPY\n\xff\r\n\0") and fast.data.endswith(b"\xff\xff")


@pytest.mark.integration
async def test_fast_path_rows_arrive_intact(database_url: str) -> None:
    rows = sample_rows(2 * ROWS_PER_BLOCK + 1)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = conn.cursor()
        columns = ", ".join(SAMPLE_COLUMNS)
        async with cur.copy(f"COPY sample ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(SAMPLE_TYPES))
            await write_rows(copy, rows)
        got = await (await conn.execute(f"SELECT {columns} FROM sample ORDER BY ts")).fetchall()
    assert got == [tuple(r) for r in rows]
