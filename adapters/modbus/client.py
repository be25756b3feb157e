"""The Modbus wire: the only adapter module that imports pymodbus.

Wraps one pymodbus client per connection and turns its results into plain values and the
adapter's own errors. Automatic reconnects and retries of pymodbus are switched off: the
adapter's poll loop decides when to retry and reconnect (with backoff).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.constants import DeviceInformation, MoreData
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType

from adapters.modbus.config import Table
from adapters.modbus.endpoint import Endpoint, Framing
from adapters.modbus.errors import ModbusConnectionError, ModbusExceptionResponse, ModbusTimeout

# pymodbus logs every failed connect and timeout; the adapter reports state changes once
# itself. Leave pymodbus's own messages to whoever configures its logger explicitly.
_PYMODBUS_LOGGER = logging.getLogger("pymodbus")
if _PYMODBUS_LOGGER.level == logging.NOTSET:
    _PYMODBUS_LOGGER.setLevel(logging.CRITICAL)

_MAX_IDENTIFICATION_ROUNDS = 8

Response = Any  # a pymodbus PDU; typed loosely so that pymodbus types stay in this module


class ModbusClient:
    """One Modbus connection (TCP, RTU over TCP, or a serial line) shared by its unit ids."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.requests = 0

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self._client is not None and self._client.connected

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        ep = self.endpoint
        common: dict[str, Any] = {
            "timeout": self.timeout,
            "retries": 0,
            "reconnect_delay": 0,
            "name": ep.url,
        }
        if ep.framing is Framing.RTU:
            return AsyncModbusSerialClient(
                ep.serial_port,
                framer=FramerType.RTU,
                baudrate=ep.baudrate,
                bytesize=ep.bytesize,
                parity=ep.parity,
                stopbits=ep.stopbits,
                **common,
            )
        framer = FramerType.RTU if ep.framing is Framing.RTU_OVER_TCP else FramerType.SOCKET
        return AsyncModbusTcpClient(ep.host, port=ep.port, framer=framer, **common)

    async def connect(self) -> None:
        """Open the connection; raise ModbusConnectionError when it cannot be opened."""
        self.close()
        client = self._new_client()
        try:
            ok = await client.connect()
        except (OSError, ConnectionException) as exc:
            client.close()
            raise ModbusConnectionError(f"{self.endpoint}: cannot connect: {exc}") from None
        if not ok or not client.connected:
            client.close()
            raise ModbusConnectionError(f"{self.endpoint}: cannot connect")
        # A unit that never answers must not make pymodbus drop the shared connection.
        client.set_max_no_responses(1_000_000)
        self._client = client

    def close(self) -> None:
        """Close the connection (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _call(self, what: str, request: Callable[[Any], Awaitable[Response]]) -> Response:
        client = self._client
        if client is None or not client.connected:
            raise ModbusConnectionError(f"{self.endpoint}: not connected")
        self.requests += 1
        try:
            response = await request(client)
        except ModbusIOException:
            if not client.connected:
                raise ModbusConnectionError(f"{self.endpoint}: connection lost ({what})") from None
            raise ModbusTimeout(f"{what}: no response within {self.timeout:g} s") from None
        except (ConnectionException, OSError) as exc:
            raise ModbusConnectionError(f"{self.endpoint}: {what}: {exc}") from None
        if response.isError():
            raise ModbusExceptionResponse(int(getattr(response, "exception_code", 0)), what)
        return response

    async def read(
        self, unit: int, table: Table, address: int, count: int, label: str = ""
    ) -> list[int] | list[bool]:
        """Read `count` registers (or bits) of a table; raise a ModbusError on failure."""
        span = f"{address}..{address + count - 1}"
        what = f"{label}{self.endpoint} unit {unit}: read {table.value} {span}"
        kwargs = {"count": count, "device_id": unit}
        if table is Table.HOLDING:
            response = await self._call(what, lambda c: c.read_holding_registers(address, **kwargs))
        elif table is Table.INPUT:
            response = await self._call(what, lambda c: c.read_input_registers(address, **kwargs))
        elif table is Table.COIL:
            response = await self._call(what, lambda c: c.read_coils(address, **kwargs))
        else:
            response = await self._call(what, lambda c: c.read_discrete_inputs(address, **kwargs))
        if table in {Table.COIL, Table.DISCRETE_INPUT}:
            bits = [bool(b) for b in response.bits[:count]]
            if len(bits) != count:
                raise ModbusTimeout(f"{what}: short response ({len(bits)} of {count} bits)")
            return bits
        registers = [int(r) for r in response.registers]
        if len(registers) != count:
            raise ModbusTimeout(f"{what}: short response ({len(registers)} of {count} registers)")
        return registers

    async def write_registers(
        self, unit: int, address: int, words: Sequence[int], label: str = ""
    ) -> None:
        """Write holding registers (function 6 for one, 16 for several)."""
        span = f"{address}..{address + len(words) - 1}"
        what = f"{label}{self.endpoint} unit {unit}: write holding {span}"
        values = [int(w) for w in words]
        if len(values) == 1:
            await self._call(what, lambda c: c.write_register(address, values[0], device_id=unit))
        else:
            await self._call(what, lambda c: c.write_registers(address, values, device_id=unit))

    async def write_coil(self, unit: int, address: int, value: bool, label: str = "") -> None:
        """Write one coil (function 5)."""
        what = f"{label}{self.endpoint} unit {unit}: write coil {address}"
        await self._call(what, lambda c: c.write_coil(address, value, device_id=unit))

    async def identify(self, unit: int) -> dict[int, bytes]:
        """Read Device Identification (43/14, regular objects); object id to raw bytes."""
        what = f"{self.endpoint} unit {unit}: read device identification"
        objects: dict[int, bytes] = {}
        object_id = 0
        for _ in range(_MAX_IDENTIFICATION_ROUNDS):
            request = functools.partial(_read_identification, object_id=object_id, device_id=unit)
            response = await self._call(what, request)
            for key, raw in response.information.items():
                objects[int(key)] = raw[0] if isinstance(raw, list) else bytes(raw)
            if response.more_follows != MoreData.KEEP_READING or not response.next_object_id:
                break
            object_id = int(response.next_object_id)
        return objects


def _read_identification(client: Any, object_id: int, device_id: int) -> Awaitable[Response]:
    return client.read_device_information(  # type: ignore[no-any-return]
        read_code=DeviceInformation.REGULAR, object_id=object_id, device_id=device_id
    )
