"""Decode Modbus registers and bits into point values, and encode values for writes.

Registers travel as 16-bit words. `byte_order` says how the two bytes of each word are
arranged ("big": high byte first, as on the wire), `word_order` which word holds the most
significant part of a multi-word value ("big": the first). Strings use `byte_order` only:
their words are in address order. Numeric values are scaled: value = raw * scale + offset.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from adapters.base import Value
from adapters.modbus.config import BIT_TABLES, DataType, ModbusPoint

_STRUCT = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
_INTEGERS = frozenset(
    {
        DataType.INT16,
        DataType.UINT16,
        DataType.INT32,
        DataType.UINT32,
        DataType.INT64,
        DataType.UINT64,
    }
)
_FLOATS = frozenset({DataType.FLOAT32, DataType.FLOAT64})


class CodecError(ValueError):
    """A value that cannot be decoded from, or encoded into, a point's registers."""


def words_to_bytes(words: Sequence[int], byte_order: str, word_order: str) -> bytes:
    """Arrange register words into big-endian value bytes per the byte and word order."""
    ordered = list(reversed(words)) if word_order == "little" else list(words)
    out = bytearray()
    for word in ordered:
        hi, lo = (word >> 8) & 0xFF, word & 0xFF
        out += bytes((lo, hi)) if byte_order == "little" else bytes((hi, lo))
    return bytes(out)


def bytes_to_words(data: bytes, byte_order: str, word_order: str) -> list[int]:
    """Split big-endian value bytes into register words per the byte and word order."""
    words = []
    for i in range(0, len(data), 2):
        first, second = data[i], data[i + 1]
        words.append(second << 8 | first if byte_order == "little" else first << 8 | second)
    return list(reversed(words)) if word_order == "little" else words


def _integer_range(data_type: DataType) -> tuple[int, int]:
    bits = struct.calcsize(_STRUCT[data_type]) * 8
    if data_type.value.startswith("u"):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def decode(point: ModbusPoint, data: Sequence[int] | Sequence[bool]) -> Value:
    """Decode the registers (or bits) of one point into its engineering value."""
    count = point.register_count
    if len(data) != count:
        raise CodecError(
            f"point {point.key!r}: expected {count} value(s) for {point.data_type.value}, "
            f"got {len(data)}"
        )
    if point.table in BIT_TABLES:
        return bool(data[0])
    words = [int(w) for w in data]
    if point.data_type is DataType.BOOL:
        return words[0] != 0
    if point.data_type is DataType.STRING:
        raw = words_to_bytes(words, point.byte_order, "big")
        return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip(" ")
    value: int | float = struct.unpack(
        ">" + _STRUCT[point.data_type], words_to_bytes(words, point.byte_order, point.word_order)
    )[0]
    if point.scale == 1.0 and point.offset == 0.0:
        return value
    return value * point.scale + point.offset


def encode(point: ModbusPoint, value: Value) -> list[int] | list[bool]:
    """Encode an engineering value into the registers (or bit) of one point."""
    where = f"point {point.key!r} ({point.data_type.value})"
    if point.table in BIT_TABLES or point.data_type is DataType.BOOL:
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise CodecError(f"{where}: expected a boolean, got {value!r}")
        return [bool(value)] if point.table in BIT_TABLES else [int(bool(value))]
    if point.data_type is DataType.STRING:
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected a string, got {value!r}")
        raw = value.encode("utf-8")
        capacity = point.register_count * 2
        if len(raw) > capacity:
            raise CodecError(f"{where}: {len(raw)} bytes do not fit in {capacity} bytes")
        return bytes_to_words(raw.ljust(capacity, b"\x00"), point.byte_order, "big")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CodecError(f"{where}: expected a number, got {value!r}")
    unscaled = point.scale == 1.0 and point.offset == 0.0
    raw_value = value if unscaled else (value - point.offset) / point.scale
    fmt = ">" + _STRUCT[point.data_type]
    if point.data_type in _INTEGERS:
        if isinstance(raw_value, float) and not math.isfinite(raw_value):
            raise CodecError(f"{where}: {value!r} is not a finite number")
        integer = round(raw_value)
        low, high = _integer_range(point.data_type)
        if not low <= integer <= high:
            raise CodecError(
                f"{where}: {value!r} is raw {integer}, outside {low}..{high}"
                + ("" if unscaled else f" (scale {point.scale}, offset {point.offset})")
            )
        packed = struct.pack(fmt, integer)
    else:
        try:
            packed = struct.pack(fmt, float(raw_value))
        except OverflowError:
            raise CodecError(f"{where}: {value!r} is out of range") from None
    return bytes_to_words(packed, point.byte_order, point.word_order)
