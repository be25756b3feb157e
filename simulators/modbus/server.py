"""The simulator's transport: a pymodbus TCP server (MBAP or RTU framing) over a ServerStore."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pymodbus.constants import DeviceInformation, ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest, ReadDeviceInformationResponse
from pymodbus.server import ModbusTcpServer

from adapters.modbus.config import Table
from simulators.modbus.datastore import ModbusFault, ServerStore, UnknownUnit

Framing = Literal["tcp", "rtu+tcp"]

_TABLE_OF_FUNCTION = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE_INPUT,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    22: Table.HOLDING,
    23: Table.HOLDING,
    4: Table.INPUT,
}
_READ_DEVICE_IDENTIFICATION = 0x0E


class _StoreContext(ModbusServerContext):
    """Presents a ServerStore to pymodbus's request handlers."""

    def __init__(self, store: ServerStore) -> None:
        # The base initialiser only builds pymodbus's own deprecated stores; not needed.
        self.store = store
        self.old_simulator = True  # tells pymodbus to call this context directly
        self.simdevices = []

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        """Read from the store, mapping faults to exception codes."""
        try:
            unit = self.store.unit(device_id)
            table = _TABLE_OF_FUNCTION[func_code]
            held = unit.delay_for(table, address, count, writing=False)
            if held > 0:
                await asyncio.sleep(held)
            return unit.read(table, address, count)
        except UnknownUnit as exc:
            raise NoSuchIdException(str(exc)) from None
        except ModbusFault as exc:
            return ExcCodes(exc.code)
        except KeyError:
            return ExcCodes.ILLEGAL_FUNCTION

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        """Write to the store, mapping faults to exception codes."""
        try:
            unit = self.store.unit(device_id)
            table = _TABLE_OF_FUNCTION[func_code]
            held = unit.delay_for(table, address, len(values), writing=True)
            if held > 0:
                await asyncio.sleep(held)
            unit.write(table, address, values)
        except UnknownUnit as exc:
            raise NoSuchIdException(str(exc)) from None
        except ModbusFault as exc:
            return ExcCodes(exc.code)
        except KeyError:
            return ExcCodes.ILLEGAL_FUNCTION
        return None

    def device_ids(self) -> list[int]:
        """Return the unit ids served."""
        return sorted(self.store.units)


class _IdentificationRequest(ReadDeviceInformationRequest):
    """Read Device Identification (43/14) answered per unit from the store.

    pymodbus answers 43/14 from one process-wide identity; a fleet needs one per device.
    """

    @classmethod
    def decode_sub_function_code(cls, data: bytes) -> int:
        """Handle every MEI type here (others are refused in datastore_update)."""
        return -1

    def decode(self, data: bytes) -> None:
        """Decode, keeping the MEI type aside so pymodbus does not swap in its own class."""
        super().decode(data)
        self.mei_type = self.sub_function_code
        self.sub_function_code = -1

    async def datastore_update(self, context: ModbusServerContext, device_id: int) -> ModbusPDU:
        """Answer from the identity of the addressed unit."""
        if getattr(self, "mei_type", None) != _READ_DEVICE_IDENTIFICATION or not isinstance(
            context, _StoreContext
        ):
            return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION)
        try:
            identity = context.store.unit(device_id).identity
        except UnknownUnit as exc:
            raise NoSuchIdException(str(exc)) from None
        if not identity:  # a device without identification objects refuses 43/14
            return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION)
        code, first = int(self.read_code), int(self.object_id)
        if code == DeviceInformation.SPECIFIC:
            if first not in identity:
                return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_ADDRESS)
            wanted = [first]
        else:
            top = 0x03 if code == DeviceInformation.BASIC else 0x07
            ids = [*range(top), *(range(0x80, 0x100) if code == DeviceInformation.EXTENDED else ())]
            wanted = [i for i in ids if i >= first and i in identity] or [
                i for i in ids if i in identity
            ]
        return ReadDeviceInformationResponse(
            read_code=code,
            information={i: identity[i] for i in wanted},
            dev_id=device_id,
            transaction_id=self.transaction_id,
        )


class SimulatorServer:
    """One listening Modbus server on loopback (or any host), serving a ServerStore."""

    def __init__(
        self,
        store: ServerStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        framing: Framing = "tcp",
        name: str = "main",
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.framing: Framing = framing
        self.name = name
        self._server: ModbusTcpServer | None = None

    @property
    def endpoint(self) -> str:
        """URL the adapter connects to, e.g. rtu+tcp://127.0.0.1:15020."""
        return f"{self.framing}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while listening."""
        return self._server is not None

    async def start(self) -> None:
        """Listen (on the same port as before when restarted; a free one the first time)."""
        if self._server is not None:
            return
        server = ModbusTcpServer(
            _StoreContext(self.store),
            framer=FramerType.RTU if self.framing == "rtu+tcp" else FramerType.SOCKET,
            address=(self.host, self.port),
            custom_pdu=[_IdentificationRequest],
        )
        await server.serve_forever(background=True)
        listener = server.transport
        sockets = getattr(listener, "sockets", None) or ()
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._server = server

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        server, self._server = self._server, None
        if server is None:
            return
        listener = server.transport
        await server.shutdown()  # type: ignore[no-untyped-call]
        if isinstance(listener, asyncio.Server):
            await listener.wait_closed()
