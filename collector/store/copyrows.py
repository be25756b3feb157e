"""Binary COPY of many rows with the per-row work in C.

psycopg's ``AsyncCopy.write_row`` costs a coroutine call per row, and its formatter's
``write_row`` a Python call per row. Here rows are formatted by psycopg's C row
formatter mapped over a slice of rows at a time, and each slice is sent as one
block, so the server starts on the first block while later ones are formatted.
The formatter is psycopg-internal; if a psycopg release moves it, the public
formatter is used instead (tests/store/test_writer.py checks both give the same
bytes).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice, repeat
from typing import Any

from psycopg import AsyncCopy, Copy
from psycopg.abc import Transformer

FormatRow = Callable[[Sequence[Any], Transformer, bytearray], None]

_format_row: FormatRow | None
try:
    from psycopg._copy_base import format_row_binary as _format_row
except ImportError:  # pragma: no cover - depends on the psycopg release
    _format_row = None

# PostgreSQL binary COPY framing: signature, flags, header extension length; trailer.
SIGNATURE = b"PGCOPY\n\xff\r\n\0" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)
ROWS_PER_BLOCK = 512


def has_fast_formatter() -> bool:
    """Report whether this psycopg has the C row formatter (else rows go one by one)."""
    return _format_row is not None


def binary_blocks(
    transformer: Transformer, rows: Iterable[Sequence[Any]]
) -> Iterator[bytes | bytearray]:
    """Yield the binary COPY stream of `rows`, signature to trailer, a slice of rows a block."""
    format_row = _format_row
    assert format_row is not None, "check has_fast_formatter() first"
    iterator = iter(rows)
    block = bytearray(SIGNATURE)
    while True:
        size = len(block)
        deque(
            map(format_row, islice(iterator, ROWS_PER_BLOCK), repeat(transformer), repeat(block)),
            maxlen=0,
        )
        if len(block) == size:  # no rows left
            break
        yield block  # a new one follows: never reused
        block = bytearray()
    yield bytes(block) + TRAILER  # the signature too when there were no rows


async def write_rows(copy: AsyncCopy, rows: Iterable[Sequence[Any]], *, fast: bool = True) -> None:
    """Send every row to a binary COPY whose types were set with ``copy.set_types``."""
    if not (fast and has_fast_formatter()):
        for row in rows:
            await copy.write_row(row)
        return
    for block in binary_blocks(copy.formatter.transformer, rows):
        await copy.write(block)


def write_rows_sync(copy: Copy, rows: Iterable[Sequence[Any]]) -> None:
    """Send every row to a binary COPY of a blocking connection, as `write_rows` does."""
    if not has_fast_formatter():
        for row in rows:
            copy.write_row(row)
        return
    for block in binary_blocks(copy.formatter.transformer, rows):
        copy.write(block)
