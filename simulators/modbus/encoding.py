"""The simulator's own register encoder: values to 16-bit words and back.

Written independently of the adapter's codec (adapters/modbus/codec.py) so that tests
can check one against the other. The value's bytes are laid out big-endian, cut into
words, the words reversed for word_order "little" and each word's two bytes swapped for
byte_order "little". Strings keep their words in address order. Values out of a type's
range are clamped: a simulator serves the nearest value it can.
"""

from __future__ import annotations

import math
import struct

from adapters.base import Value
from adapters.modbus.config import BIT_TABLES, DataType, ModbusPoint

_SIZES = {
    DataType.INT16: 2,
    DataType.UINT16: 2,
    DataType.INT32: 4,
    DataType.UINT32: 4,
    DataType.INT64: 8,
    DataType.UINT64: 8,
}
_FLOAT_FORMATS = {DataType.FLOAT32: ">f", DataType.FLOAT64: ">d"}


def _layout(value_bytes: bytes, byte_order: str, word_order: str) -> list[int]:
    words = [int.from_bytes(value_bytes[i : i + 2], "big") for i in range(0, len(value_bytes), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words


def _unlayout(words: list[int], byte_order: str, word_order: str) -> bytes:
    if byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    if word_order == "little":
        words = list(reversed(words))
    return b"".join(w.to_bytes(2, "big") for w in words)


def _clamped_integer(value: float | int, data_type: DataType) -> int:
    size = _SIZES[data_type]
    signed = not data_type.value.startswith("u")
    low = -(1 << (size * 8 - 1)) if signed else 0
    high = (1 << (size * 8 - 1)) - 1 if signed else (1 << (size * 8)) - 1
    if isinstance(value, float) and math.isnan(value):
        return 0
    if isinstance(value, float) and math.isinf(value):
        return high if value > 0 else low
    return max(low, min(high, round(value)))


def encode_point(point: ModbusPoint, value: Value) -> list[int] | list[bool]:
    """Encode an engineering value into the words (or the bit) the point occupies."""
    if point.table in BIT_TABLES:
        return [bool(value)]
    if point.data_type is DataType.BOOL:
        return [1 if value else 0]
    if point.data_type is DataType.STRING:
        capacity = point.register_count * 2
        text = str(value if value is not None else "").encode("utf-8")[:capacity]
        return _layout(text + b"\x00" * (capacity - len(text)), point.byte_order, "big")
    raw: float | int
    if isinstance(value, int) and point.scale == 1.0 and point.offset == 0.0:
        raw = value  # exact, even beyond the 53 bits of a float
    else:
        number = float(value) if isinstance(value, int | float) else 0.0
        raw = (number - point.offset) / point.scale
    if point.data_type in _FLOAT_FORMATS:
        if point.data_type is DataType.FLOAT32 and math.isfinite(raw):
            raw = max(-3.4028234663852886e38, min(3.4028234663852886e38, raw))
        value_bytes = struct.pack(_FLOAT_FORMATS[point.data_type], raw)
    else:
        size = _SIZES[point.data_type]
        integer = _clamped_integer(raw, point.data_type)
        value_bytes = integer.to_bytes(size, "big", signed=integer < 0)
    return _layout(value_bytes, point.byte_order, point.word_order)


def decode_point(point: ModbusPoint, words: list[int] | list[bool]) -> Value:
    """Decode the words (or the bit) of a point back into its engineering value."""
    if point.table in BIT_TABLES:
        return bool(words[0])
    if point.data_type is DataType.BOOL:
        return bool(words[0])
    registers = [int(w) for w in words]
    if point.data_type is DataType.STRING:
        text = _unlayout(registers, point.byte_order, "big")
        return text.partition(b"\x00")[0].decode("utf-8", errors="replace").rstrip(" ")
    value_bytes = _unlayout(registers, point.byte_order, point.word_order)
    raw: int | float
    if point.data_type in _FLOAT_FORMATS:
        raw = struct.unpack(_FLOAT_FORMATS[point.data_type], value_bytes)[0]
    else:
        raw = int.from_bytes(value_bytes, "big", signed=not point.data_type.value.startswith("u"))
    if point.scale == 1.0 and point.offset == 0.0:
        return raw
    return raw * point.scale + point.offset
