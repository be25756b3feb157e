"""Plain records of an OPC UA address space, free of any OPC UA library."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from adapters.base import Quality, Value
from adapters.opcua.errors import WriteError

SEPARATOR = "/"
OBJECTS_NODE_ID = "i=85"  # the standard Objects folder (OPC 10000-5), where browse paths start

# Namespace-0 DataType ids (OPC 10000-6) and the type names points carry, shared with
# the other protocols (bool, int16, float32, ... as in the Modbus register maps).
BUILTIN_TYPES: dict[int, str] = {
    1: "bool",
    2: "int8",
    3: "uint8",
    4: "int16",
    5: "uint16",
    6: "int32",
    7: "uint32",
    8: "int64",
    9: "uint64",
    10: "float32",
    11: "float64",
    12: "string",
    13: "datetime",
    14: "guid",
    15: "bytes",
    16: "xml",
    17: "nodeid",
    18: "nodeid",
    19: "statuscode",
    20: "string",  # QualifiedName: its name
    21: "string",  # LocalizedText: its text
    22: "structure",
    26: "float64",  # Number (abstract)
    27: "int64",  # Integer (abstract)
    28: "uint64",  # UInteger (abstract)
    29: "int32",  # Enumeration
}
NUMERIC_TYPES = frozenset(
    {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"}
)
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


class NodeKind(enum.StrEnum):
    """The node classes discovery looks at."""

    OBJECT = "object"
    VARIABLE = "variable"


@dataclass(frozen=True, slots=True)
class Reference:
    """A hierarchical forward reference from one node to a child."""

    node_id: str
    name: str
    kind: NodeKind
    is_property: bool
    namespace: int
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """A value read or notified, with its status code and timestamps."""

    value: Value
    status: int
    source_ts: datetime | None = None
    server_ts: datetime | None = None

    @property
    def quality(self) -> Quality:
        """The sample quality of this reading's status code."""
        return quality_of(self.status)


@dataclass(frozen=True, slots=True)
class VariableAttributes:
    """What a point needs from a Variable: its data type and whether this user may write it."""

    data_type: str
    writable: bool


def quality_of(status: int) -> Quality:
    """Map an OPC UA StatusCode to a quality: Good→GOOD, Uncertain→UNCERTAIN, Bad→BAD."""
    severity = (status >> 30) & 0b11
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def escape_name(name: str) -> str:
    """Escape a browse name so that it can be one segment of a path."""
    return name.replace("\\", "\\\\").replace(SEPARATOR, "\\" + SEPARATOR)


def join_path(names: Sequence[str]) -> str:
    """Join browse names into a path such as 'Objects/Plant/Boiler-01'."""
    return SEPARATOR.join(escape_name(n) for n in names)


def split_path(path: str) -> list[str]:
    """Split a path into browse names, honouring backslash escapes."""
    names: list[str] = []
    current: list[str] = []
    escaped = False
    for char in path:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == SEPARATOR:
            names.append("".join(current))
            current = []
        else:
            current.append(char)
    names.append("".join(current))
    return names


def normalize_for_write(value: Value, data_type: str, where: str) -> bool | int | float | str:
    """Check that value fits a point of data_type and return it as that type's Python value."""
    if data_type == "bool":
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        raise WriteError(f"{where}: expected a boolean (true/false or 0/1), got {value!r}")
    if data_type == "string":
        if isinstance(value, str):
            return value
        raise WriteError(f"{where}: expected a string, got {value!r}")
    if data_type not in NUMERIC_TYPES:
        raise WriteError(f"{where}: writing points of data type {data_type!r} is not supported")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WriteError(f"{where}: expected a number for a {data_type} point, got {value!r}")
    if data_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[data_type]
        if isinstance(value, float) and not value.is_integer():
            raise WriteError(f"{where}: expected an integer for a {data_type} point, got {value!r}")
        if not low <= int(value) <= high:
            raise WriteError(f"{where}: {value!r} is outside the {data_type} range {low}..{high}")
        return int(value)
    return float(value)
