"""Decoding and encoding of every data type and byte/word order, against hand-computed words."""

from __future__ import annotations

import math
from typing import Any

import pytest

from adapters.base import Value
from adapters.modbus.codec import CodecError, bytes_to_words, decode, encode, words_to_bytes
from adapters.modbus.config import DataType, ModbusPoint, Table
from simulators.modbus.encoding import decode_point, encode_point

ORDERS = [("big", "big"), ("big", "little"), ("little", "big"), ("little", "little")]


def point(data_type: str, **extra: Any) -> ModbusPoint:
    return ModbusPoint.model_validate({"key": "p", "address": 0, "data_type": data_type, **extra})


# (data type, value, {(byte_order, word_order): words}) — words computed by hand from the
# big-endian bytes of the value: reverse the words for word_order little, swap the two bytes
# of each word for byte_order little.
CASES: list[tuple[str, Value, dict[tuple[str, str], list[int]]]] = [
    ("int16", -2, {("big", "big"): [0xFFFE], ("little", "big"): [0xFEFF]}),
    ("uint16", 40000, {("big", "big"): [0x9C40], ("little", "little"): [0x409C]}),
    (
        "int32",
        -123456,  # 0xFFFE1DC0
        {
            ("big", "big"): [0xFFFE, 0x1DC0],
            ("big", "little"): [0x1DC0, 0xFFFE],
            ("little", "big"): [0xFEFF, 0xC01D],
            ("little", "little"): [0xC01D, 0xFEFF],
        },
    ),
    (
        "uint32",
        3_000_000_000,  # 0xB2D05E00
        {("big", "big"): [0xB2D0, 0x5E00], ("big", "little"): [0x5E00, 0xB2D0]},
    ),
    (
        "int64",
        -2,
        {
            ("big", "big"): [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE],
            ("big", "little"): [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF],
            ("little", "little"): [0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF],
        },
    ),
    (
        "uint64",
        0x0102030405060708,
        {
            ("big", "big"): [0x0102, 0x0304, 0x0506, 0x0708],
            ("big", "little"): [0x0708, 0x0506, 0x0304, 0x0102],
            ("little", "big"): [0x0201, 0x0403, 0x0605, 0x0807],
            ("little", "little"): [0x0807, 0x0605, 0x0403, 0x0201],
        },
    ),
    (
        "float32",
        -12.375,  # 0xC1460000
        {
            ("big", "big"): [0xC146, 0x0000],
            ("big", "little"): [0x0000, 0xC146],
            ("little", "big"): [0x46C1, 0x0000],
            ("little", "little"): [0x0000, 0x46C1],
        },
    ),
    (
        "float64",
        1.0,  # 0x3FF0000000000000
        {
            ("big", "big"): [0x3FF0, 0, 0, 0],
            ("big", "little"): [0, 0, 0, 0x3FF0],
            ("little", "big"): [0xF03F, 0, 0, 0],
            ("little", "little"): [0, 0, 0, 0xF03F],
        },
    ),
]


@pytest.mark.parametrize(
    ("data_type", "value", "orders", "words"),
    [(t, v, o, w) for t, v, table in CASES for o, w in table.items()],
)
def test_numbers_decode_and_encode_to_hand_computed_words(
    data_type: str, value: Value, orders: tuple[str, str], words: list[int]
) -> None:
    p = point(data_type, byte_order=orders[0], word_order=orders[1])
    assert decode(p, words) == value
    assert encode(p, value) == words
    assert encode_point(p, value) == words  # the simulator's encoder agrees


@pytest.mark.parametrize(
    ("text", "byte_order", "words"),
    [
        ("AB C", "big", [0x4142, 0x2043, 0x0000]),
        ("AB C", "little", [0x4241, 0x4320, 0x0000]),
        ("ABCDEF", "big", [0x4142, 0x4344, 0x4546]),
        ("", "big", [0, 0, 0]),
    ],
)
def test_strings_use_byte_order_and_nul_padding(
    text: str, byte_order: str, words: list[int]
) -> None:
    p = point("string", length=3, byte_order=byte_order, word_order="little")
    assert decode(p, words) == text
    assert encode(p, text) == words
    assert encode_point(p, text) == words


def test_string_decode_stops_at_nul_and_trims_trailing_spaces() -> None:
    p = point("string", length=4)
    assert decode(p, [0x4F4B, 0x2020, 0x0058, 0x5858]) == "OK"


@pytest.mark.parametrize(
    ("data_type", "words", "scale", "offset", "expected"),
    [
        ("uint16", [1234], 0.1, -40.0, 83.4),
        ("int16", [0xFFCE], 0.5, 10.0, -15.0),  # raw -50
        ("int32", [0x0001, 0x86A0], 0.001, 0.0, 100.0),  # raw 100000
        ("float32", [0x3FC0, 0x0000], 2.0, 1.0, 4.0),  # raw 1.5
    ],
)
def test_scale_and_offset(
    data_type: str, words: list[int], scale: float, offset: float, expected: float
) -> None:
    p = point(data_type, scale=scale, offset=offset)
    assert decode(p, words) == pytest.approx(expected)
    assert encode(p, expected) == words


def test_unscaled_integers_stay_integers() -> None:
    value = decode(point("uint16"), [7])
    assert value == 7
    assert isinstance(value, int)


def test_booleans_in_bit_tables_and_registers() -> None:
    coil = point("bool", table="coil", writable=True)
    assert decode(coil, [True]) is True
    assert encode(coil, False) == [False]
    register = point("bool")
    assert decode(register, [0]) is False
    assert decode(register, [5]) is True
    assert encode(register, True) == [1]
    assert encode_point(register, True) == [1]


@pytest.mark.parametrize(
    ("data_type", "extra", "value", "message"),
    [
        ("int16", {}, 40000, "outside -32768..32767"),
        ("uint16", {}, -1, "outside 0..65535"),
        ("uint16", {"scale": 0.1}, 7000.0, "raw 70000"),
        ("uint32", {}, "12", "expected a number"),
        ("int32", {}, True, "expected a number"),
        ("int16", {}, math.inf, "not a finite number"),
        ("float32", {}, 1e39, "out of range"),
        ("string", {"length": 1}, "abc", "do not fit"),
        ("string", {"length": 1}, 5, "expected a string"),
        ("bool", {}, 2, "expected a boolean"),
    ],
)
def test_encode_refuses_values_that_do_not_fit(
    data_type: str, extra: dict[str, Any], value: Value, message: str
) -> None:
    with pytest.raises(CodecError, match=message):
        encode(point(data_type, **extra), value)


def test_decode_refuses_the_wrong_number_of_words() -> None:
    with pytest.raises(CodecError, match="expected 2 value"):
        decode(point("float32"), [1])


@pytest.mark.parametrize("orders", ORDERS)
@pytest.mark.parametrize(
    ("data_type", "values"),
    [
        ("int16", [-32768, -1, 0, 32767]),
        ("uint16", [0, 1, 65535]),
        ("int32", [-(2**31), -5, 2**31 - 1]),
        ("uint32", [0, 2**32 - 1]),
        ("int64", [-(2**63), 2**63 - 1]),
        ("uint64", [0, 2**64 - 1]),
        ("float32", [0.0, -1.5, 2.0**40, 1024.625]),
        ("float64", [math.pi, -1e300]),
    ],
)
def test_round_trip_with_the_simulator_encoder(
    data_type: str, values: list[Value], orders: tuple[str, str]
) -> None:
    p = point(data_type, byte_order=orders[0], word_order=orders[1])
    for value in values:
        words = encode_point(p, value)
        assert decode(p, words) == value
        assert decode_point(p, encode(p, value)) == value


@pytest.mark.parametrize("orders", ORDERS)
def test_scaled_round_trip_with_the_simulator_encoder(orders: tuple[str, str]) -> None:
    p = point("int32", byte_order=orders[0], word_order=orders[1], scale=0.01, offset=-273.15)
    for value in (-273.15, 0.0, 25.37, 1000.5):
        assert decode(p, encode_point(p, value)) == pytest.approx(value, abs=0.005)
        assert decode_point(p, encode(p, value)) == pytest.approx(value, abs=0.005)


def test_word_helpers_are_inverse() -> None:
    data = bytes(range(1, 9))
    for byte_order, word_order in ORDERS:
        assert (
            words_to_bytes(bytes_to_words(data, byte_order, word_order), byte_order, word_order)
            == data
        )


def test_point_map_tables_are_validated() -> None:
    with pytest.raises(ValueError, match="data_type must be bool"):
        point("uint16", table=Table.COIL.value)
    with pytest.raises(ValueError, match="last Modbus address is 65535"):
        ModbusPoint(key="x", address=65535, data_type=DataType.FLOAT32)
