"""GB/T 4754-2017 industry divisions and their process (流程) or discrete (离散) mark."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

IndustryKind = Literal["process", "discrete"]

# Division number ranges of every GB/T 4754-2017 section, so that a bare number
# ("26", "2614") can be given its section letter.
_SECTION_RANGES: tuple[tuple[str, int, int], ...] = (
    ("A", 1, 5),
    ("B", 6, 12),
    ("C", 13, 43),
    ("D", 44, 46),
    ("E", 47, 50),
    ("F", 51, 52),
    ("G", 53, 60),
    ("H", 61, 62),
    ("I", 63, 65),
    ("J", 66, 69),
    ("K", 70, 70),
    ("L", 71, 72),
    ("M", 73, 75),
    ("N", 76, 79),
    ("O", 80, 82),
    ("P", 83, 83),
    ("Q", 84, 85),
    ("R", 86, 90),
    ("S", 91, 96),
    ("T", 97, 97),
)
_CODE = re.compile(r"^(?P<section>[A-Ta-t])?(?P<digits>\d{2,4})$")


class UnknownIndustryError(KeyError):
    """An industry code that cannot be parsed or is not in the bundled table."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown industry"


class Section(BaseModel):
    """A GB/T 4754-2017 section (门类)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[A-T]$")
    name: str
    name_en: str


class Division(BaseModel):
    """A GB/T 4754-2017 division (大类) with its process or discrete mark."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[A-T]\d{2}$")
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    kind: IndustryKind
    notes: str | None = None

    @property
    def section(self) -> str:
        """Return the section letter, e.g. ``C`` for ``C26``."""
        return self.code[0]


class IndustryTable(BaseModel):
    """The bundled division table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    standard: str
    level: Literal["division"]
    sections: tuple[Section, ...]
    divisions: tuple[Division, ...]

    @model_validator(mode="after")
    def _consistent(self) -> IndustryTable:
        sections = {s.code for s in self.sections}
        seen: set[str] = set()
        for division in self.divisions:
            if division.code in seen:
                raise ValueError(f"division {division.code} is listed twice")
            seen.add(division.code)
            if division.section not in sections:
                raise ValueError(
                    f"division {division.code}: section {division.section} is not listed"
                )
            if _section_of(int(division.code[1:])) != division.section:
                raise ValueError(
                    f"division {division.code}: number is outside section {division.section}"
                )
        return self

    def get(self, code: str) -> Division | None:
        """Return the division with this exact code (``C26``), or None."""
        for division in self.divisions:
            if division.code == code:
                return division
        return None


def _section_of(number: int) -> str | None:
    for letter, low, high in _SECTION_RANGES:
        if low <= number <= high:
            return letter
    return None


@cache
def load_industries() -> IndustryTable:
    """Load and validate the bundled ``industries.yaml``."""
    source = resources.files("criteria").joinpath("industries.yaml")
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    try:
        return IndustryTable.model_validate(data)
    except ValidationError as exc:  # pragma: no cover - the bundled file is tested
        raise ValueError(f"criteria/industries.yaml is invalid: {exc}") from exc


def division_code(code: str) -> str:
    """Normalise an industry code to its division: ``C2614``, ``2614``, ``c26`` -> ``C26``.

    Raises UnknownIndustryError when the code cannot be parsed, its letter does not
    match its number, or its division is not in the bundled table.
    """
    match = _CODE.match(code.strip())
    if match is None:
        raise UnknownIndustryError(
            f"industry code {code!r} is not a GB/T 4754-2017 code; expected a section letter "
            "and 2-4 digits such as 'C26' or 'C2614', or the digits alone"
        )
    digits = match.group("digits")
    section = _section_of(int(digits[:2]))
    given = match.group("section")
    if section is None or (given is not None and given.upper() != section):
        raise UnknownIndustryError(
            f"industry code {code!r}: division {digits[:2]} does not belong to section "
            f"{(given or '?').upper()}"
        )
    division = f"{section}{digits[:2]}"
    if division not in _by_code():
        raise UnknownIndustryError(
            f"industry code {code!r}: division {division} is not in the bundled table, which "
            "covers mining (B06-B12), manufacturing (C13-C43) and utilities (D44-D46)"
        )
    return division


def full_code(code: str) -> str | None:
    """Return a code with its section letter (``2614`` -> ``C2614``), or None if unparseable."""
    match = _CODE.match(code.strip())
    if match is None:
        return None
    digits = match.group("digits")
    section = _section_of(int(digits[:2]))
    given = match.group("section")
    if section is None or (given is not None and given.upper() != section):
        return None
    return f"{section}{digits}"


def within(code: str, area: str) -> bool:
    """Tell whether an industry code lies inside another (``C2614`` within ``C26``, ``26``)."""
    inner, outer = full_code(code), full_code(area)
    if inner is None or outer is None:
        return code.strip().upper() == area.strip().upper()
    return inner.startswith(outer)


@cache
def _by_code() -> dict[str, Division]:
    return {d.code: d for d in load_industries().divisions}


def lookup(code: str) -> Division:
    """Return the division that a code at any level belongs to."""
    return _by_code()[division_code(code)]


def classify(code: str) -> IndustryKind | None:
    """Return ``process`` or ``discrete`` for a code, or None when it is unknown."""
    try:
        return lookup(code).kind
    except UnknownIndustryError:
        return None


def is_process(code: str) -> bool:
    """Tell whether a code belongs to a process (流程) industry; unknown codes raise."""
    return lookup(code).kind == "process"


def is_discrete(code: str) -> bool:
    """Tell whether a code belongs to a discrete (离散) industry; unknown codes raise."""
    return lookup(code).kind == "discrete"
