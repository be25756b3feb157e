"""Configuration model of a Modbus device and its register map."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.common import DeviceDeclaration
from adapters.modbus.endpoint import Endpoint


class Table(enum.StrEnum):
    """The four Modbus data tables."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"


class DataType(enum.StrEnum):
    """How the registers of a point are decoded."""

    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


REGISTER_COUNT = {
    DataType.BOOL: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}

BIT_TABLES = frozenset({Table.COIL, Table.DISCRETE_INPUT})
NON_NUMERIC = frozenset({DataType.BOOL, DataType.STRING})


class ModbusPoint(BaseModel):
    """One point of a register map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=200)
    table: Table = Table.HOLDING
    address: int = Field(ge=0, le=65535)
    data_type: DataType = DataType.UINT16
    length: int | None = Field(None, ge=1, le=125, description="Registers of a string point.")
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    writable: bool = False
    description: str | None = None
    min: float | None = Field(
        None, description="Lowest value a control write may set (engineering units)."
    )
    max: float | None = Field(
        None, description="Highest value a control write may set (engineering units)."
    )
    allowed: list[bool | int | float | str] | None = Field(
        None, min_length=1, description="The only values a control write may set."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModbusPoint:
        if self.table in BIT_TABLES and self.data_type is not DataType.BOOL:
            raise ValueError(f"{self.table.value} points hold single bits: data_type must be bool")
        if self.data_type is DataType.STRING and self.length is None:
            raise ValueError("string points need 'length' (number of registers)")
        if self.writable and self.table in {Table.INPUT, Table.DISCRETE_INPUT}:
            raise ValueError(f"{self.table.value} table is read-only in Modbus: cannot be writable")
        numeric = self.table not in BIT_TABLES and self.data_type not in NON_NUMERIC
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError("min/max bound numeric points only; use 'allowed' for this point")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if self.address + self.register_count > 65536:
            raise ValueError(
                f"point spans addresses {self.address}..{self.address + self.register_count - 1}"
                ": the last Modbus address is 65535"
            )
        return self

    @property
    def register_count(self) -> int:
        """Registers (or bits) this point occupies."""
        if self.table in BIT_TABLES:
            return 1
        if self.data_type is DataType.STRING:
            return self.length or 1
        return REGISTER_COUNT[self.data_type]


class ModbusDevice(DeviceDeclaration):
    """A Modbus device: one unit id behind one connection."""

    protocol: Literal["modbus"]
    endpoint: str = Field(
        description="tcp://host:port, rtu+tcp://host:port (RTU framing over TCP), "
        "rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1&bytesize=8 (serial RTU) or "
        "rtu://socket://host:port (serial RTU through a pyserial URL)"
    )
    device_id: int = Field(1, ge=0, le=255, description="Modbus unit id.")
    poll_interval: float = Field(1.0, gt=0, le=86_400)
    timeout: float = Field(1.0, gt=0, le=60)
    max_gap: int = Field(8, ge=0, le=100, description="Unused registers a read may span.")
    identify: bool = Field(True, description="Ask Read Device Identification (43/14).")
    points: list[ModbusPoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_points(self) -> ModbusDevice:
        keys = [p.key for p in self.points]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"point keys must be unique within a device: {', '.join(dupes)}")
        Endpoint.parse(self.endpoint)  # raises ValueError naming what is wrong
        return self
