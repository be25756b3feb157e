"""The read planner issues the minimum number of requests under the 125/2000 and gap rules."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.modbus.config import ModbusPoint, Table
from adapters.modbus.planner import MAX_BITS, MAX_REGISTERS, ReadRequest, plan_reads, split


def pt(key: str, address: int, data_type: str = "uint16", **extra: Any) -> ModbusPoint:
    return ModbusPoint.model_validate(
        {"key": key, "address": address, "data_type": data_type, **extra}
    )


def spans(requests: list[ReadRequest]) -> list[tuple[str, int, int]]:
    return [(r.table.value, r.address, r.count) for r in requests]


def test_scattered_map_is_read_in_the_minimum_number_of_requests() -> None:
    points = [
        pt("a", 0),
        pt("b", 1, "float32"),  # 1..2
        pt("c", 8),  # gap of 5 after b: merged with max_gap 8
        pt("d", 30, "float64"),  # gap of 21: new request
        pt("e", 34, "string", length=4),  # contiguous with d
        pt("f", 200, table="input"),
        pt("g", 209, table="input"),  # gap 8 exactly: merged
        pt("h", 219, table="input"),  # gap 9: new request
        pt("i", 5, "bool", table="coil"),
        pt("j", 900, "bool", table="coil"),  # gap 894 bits > 8: new request
        pt("k", 0, "bool", table="discrete_input"),
    ]
    requests = plan_reads(points, max_gap=8)
    assert spans(requests) == [
        ("holding", 0, 9),
        ("holding", 30, 8),
        ("input", 200, 10),
        ("input", 219, 1),
        ("coil", 5, 1),
        ("coil", 900, 1),
        ("discrete_input", 0, 1),
    ]
    covered = sorted(p.key for r in requests for p in r.points)
    assert covered == sorted(p.key for p in points)


def test_gap_zero_merges_only_contiguous_points() -> None:
    points = [pt("a", 0), pt("b", 1), pt("c", 3), pt("d", 4, "int32")]
    assert spans(plan_reads(points, max_gap=0)) == [("holding", 0, 2), ("holding", 3, 3)]
    assert spans(plan_reads(points, max_gap=1)) == [("holding", 0, 6)]


def test_requests_never_exceed_125_registers() -> None:
    points = [pt(f"r{i}", i) for i in range(300)]
    requests = plan_reads(points, max_gap=8)
    assert spans(requests) == [("holding", 0, 125), ("holding", 125, 125), ("holding", 250, 50)]
    assert max(r.count for r in requests) == MAX_REGISTERS


def test_a_multi_register_point_is_never_cut_at_the_limit() -> None:
    points = [pt(f"r{i}", i) for i in range(124)] + [pt("wide", 124, "float32")]
    requests = plan_reads(points, max_gap=0)
    assert spans(requests) == [("holding", 0, 124), ("holding", 124, 2)]


def test_bit_tables_allow_2000_bits_per_request() -> None:
    points = [pt(f"c{i}", i, "bool", table="coil") for i in range(4500)]
    requests = plan_reads(points, max_gap=0)
    assert spans(requests) == [("coil", 0, 2000), ("coil", 2000, 2000), ("coil", 4000, 500)]
    assert max(r.count for r in requests) == MAX_BITS


def test_tables_are_never_mixed_even_at_the_same_address() -> None:
    points = [pt("h", 10), pt("i", 10, table="input"), pt("i2", 11, table="input")]
    assert spans(plan_reads(points, max_gap=8)) == [("holding", 10, 1), ("input", 10, 2)]


def test_overlapping_points_share_a_request() -> None:
    points = [pt("whole", 0, "uint32"), pt("low", 1), pt("flag", 0, "bool")]
    requests = plan_reads(points, max_gap=0)
    assert spans(requests) == [("holding", 0, 2)]
    request = requests[0]
    assert list(request.values_of(points[1], [7, 9])) == [9]


def test_unsorted_input_gives_the_same_plan() -> None:
    points = [pt("c", 40), pt("a", 0), pt("b", 5)]
    assert spans(plan_reads(points, max_gap=8)) == [("holding", 0, 6), ("holding", 40, 1)]


def test_negative_gap_is_refused() -> None:
    with pytest.raises(ValueError, match="max_gap"):
        plan_reads([pt("a", 0)], max_gap=-1)


def test_split_breaks_at_gaps_then_point_by_point() -> None:
    points = (pt("a", 0), pt("b", 1), pt("c", 5), pt("d", 6))
    request = ReadRequest(Table.HOLDING, 0, 7, points)
    halves = split(request)
    assert spans(halves) == [("holding", 0, 2), ("holding", 5, 2)]
    assert spans(split(halves[0])) == [("holding", 0, 1), ("holding", 1, 1)]
    single = split(split(halves[0])[0])
    assert spans(single) == [("holding", 0, 1)]
