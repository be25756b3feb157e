"""The GB/T 4754-2017 division table and its process/discrete marks."""

from __future__ import annotations

import pytest

from criteria import industries
from criteria.industries import UnknownIndustryError


def test_table_covers_mining_manufacturing_and_utilities_without_gaps() -> None:
    codes = [d.code for d in industries.load_industries().divisions]
    expected = (
        [f"B{n:02d}" for n in range(6, 13)]
        + [f"C{n:02d}" for n in range(13, 44)]
        + [f"D{n:02d}" for n in range(44, 47)]
    )
    assert codes == expected


def test_every_division_has_names_and_a_mark() -> None:
    for division in industries.load_industries().divisions:
        assert division.name and division.name_en
        assert division.kind in ("process", "discrete")


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("B06", "煤炭开采和洗选业"),
        ("B11", "开采专业及辅助性活动"),
        ("C13", "农副食品加工业"),
        ("C25", "石油、煤炭及其他燃料加工业"),
        ("C26", "化学原料和化学制品制造业"),
        ("C29", "橡胶和塑料制品业"),
        ("C36", "汽车制造业"),
        ("C37", "铁路、船舶、航空航天和其他运输设备制造业"),
        ("C39", "计算机、通信和其他电子设备制造业"),
        ("C43", "金属制品、机械和设备修理业"),
        ("D44", "电力、热力生产和供应业"),
        ("D46", "水的生产和供应业"),
    ],
)
def test_standard_division_names(code: str, name: str) -> None:
    assert industries.lookup(code).name == name


@pytest.mark.parametrize(
    "code",
    ["C22", "C25", "C26", "C27", "C28", "C30", "C31", "C32", "B07", "D44", "D45", "D46"],
)
def test_process_industries(code: str) -> None:
    assert industries.is_process(code)
    assert not industries.is_discrete(code)


@pytest.mark.parametrize(
    "code", ["C18", "C21", "C33", "C34", "C35", "C36", "C37", "C38", "C39", "C40"]
)
def test_discrete_industries(code: str) -> None:
    assert industries.is_discrete(code)
    assert not industries.is_process(code)


@pytest.mark.parametrize("code", ["C17", "C29", "C42", "B06", "B11"])
def test_debatable_marks_carry_a_note(code: str) -> None:
    notes = industries.lookup(code).notes
    assert notes is not None
    assert notes.strip()


def test_textiles_follow_the_jiangsu_notice() -> None:
    # The Jiangsu 2018 notice lists 纺织服装 among 离散制造行业; chemical fibres are C28.
    assert industries.is_discrete("C17")
    assert industries.is_discrete("C18")
    assert industries.is_process("C28")


@pytest.mark.parametrize("code", ["C26", "c26", "C261", "C2614", "26", "261", "2614", " C26 "])
def test_codes_at_any_level_roll_up_to_the_division(code: str) -> None:
    assert industries.division_code(code) == "C26"
    assert industries.is_process(code)


def test_bare_digits_get_their_section_letter() -> None:
    assert industries.division_code("07") == "B07"
    assert industries.division_code("4411") == "D44"


@pytest.mark.parametrize("code", ["", "C", "X26", "B26", "C2", "C26145", "abc", "26-1"])
def test_unparseable_or_mismatched_codes_raise(code: str) -> None:
    with pytest.raises(UnknownIndustryError):
        industries.division_code(code)


def test_divisions_outside_the_table_raise_with_what_it_covers() -> None:
    with pytest.raises(UnknownIndustryError, match="mining") as excinfo:
        industries.is_process("E47")
    assert "E47" in str(excinfo.value)


def test_classify_returns_none_for_unknown_codes() -> None:
    assert industries.classify("I65") is None
    assert industries.classify("nonsense") is None
    assert industries.classify("C3611") == "discrete"


def test_codes_lie_within_their_parents() -> None:
    assert industries.full_code("2614") == "C2614"
    assert industries.full_code("c26") == "C26"
    assert industries.full_code("Z99") is None
    assert industries.within("2614", "C26")
    assert industries.within("C2614", "26")
    assert industries.within("C26", "C26")
    assert not industries.within("C26", "C2614")
    assert not industries.within("C34", "C26")
    assert industries.within("X-custom", "x-custom")  # unparseable codes compare as given
