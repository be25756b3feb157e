"""One simulated OPC UA server: DI-style device Objects with changing and writable Variables.

Every device is an Object under Objects/DeviceSet carrying the OPC UA DI properties
Manufacturer ("Tally Simulator (simulated)"), Model, SerialNumber, DeviceClass,
ProductCode and SoftwareRevision; its points are Variables (nested in sub-objects when
the key has a '/'). Read-only points follow their signal; writable points hold what was
last written. A device with writable points has a method SetValue(point, value) that sets
one of them (for method calls as control operations). `nodeid_offset` changes every
NodeId (namespace index and numeric ids), so a restart with another offset tests
re-resolution by browse path.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from asyncua import Node, Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeValue, NodeData
from asyncua.server.monitored_item_service import MonitoredItemValues
from asyncua.server.standard_address_space.standard_address_space import fill_address_space
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapters.base import Value
from simulators.fleet import SIMULATED_VENDOR
from simulators.opcua.faults import WriteFaults
from simulators.opcua.models import DEVICE_FOLDER, OpcUaFleetDevice, OpcUaFleetPoint
from simulators.signals import ValueKind, point_seed, signal_value

log = logging.getLogger("tally.simulators.opcua")

DEVICES_NAMESPACE = "urn:tally:simulator:devices"
DI_NAMESPACE = "http://opcfoundation.org/UA/DI/"
APPLICATION_URI = "urn:tally:simulator:opcua"
Security = Literal["none", "secure", "both"]

_VARIANT_TYPES = {
    "bool": ua.VariantType.Boolean,
    "int8": ua.VariantType.SByte,
    "uint8": ua.VariantType.Byte,
    "int16": ua.VariantType.Int16,
    "uint16": ua.VariantType.UInt16,
    "int32": ua.VariantType.Int32,
    "uint32": ua.VariantType.UInt32,
    "int64": ua.VariantType.Int64,
    "uint64": ua.VariantType.UInt64,
    "float32": ua.VariantType.Float,
    "float64": ua.VariantType.Double,
    "string": ua.VariantType.String,
}
_INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_UINT_BITS = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}
_POLICIES: dict[str, list[ua.SecurityPolicyType]] = {
    "none": [ua.SecurityPolicyType.NoSecurity],
    "secure": [
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ua.SecurityPolicyType.Basic256Sha256_Sign,
    ],
    "both": [
        ua.SecurityPolicyType.NoSecurity,
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ua.SecurityPolicyType.Basic256Sha256_Sign,
    ],
}


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """The server's application instance certificate (DER) and private key (PEM)."""

    cert_der: bytes
    key_pem: bytes


def generate_certificate(application_uri: str, host: str = "127.0.0.1") -> ServerCertificate:
    """Generate a self-signed server certificate for application_uri."""
    key = cert_gen.generate_private_key()
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(application_uri),
        x509.DNSName(socket.gethostname()),
        x509.DNSName(host),
    ]
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        "Tally OPC UA simulator",
        {"organizationName": "Tally Simulator"},
        names,
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=3650,
    )
    return ServerCertificate(
        cert.public_bytes(serialization.Encoding.DER), cert_gen.dump_private_key_as_pem(key)
    )


def stored_certificate(directory: Path, application_uri: str) -> ServerCertificate:
    """Load the certificate kept in directory, generating and keeping it on first use."""
    cert_path, key_path = directory / "server-cert.der", directory / "server-key.pem"
    if cert_path.is_file() and key_path.is_file():
        return ServerCertificate(cert_path.read_bytes(), key_path.read_bytes())
    certificate = generate_certificate(application_uri)
    directory.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(certificate.key_pem)
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.cert_der)
    return certificate


def _keep_datavalue(values: MonitoredItemValues, current: ua.DataValue) -> None:
    values.old_dvalue = values.current_dvalue
    values.current_dvalue = current


# asyncua's server deep-copies every DataValue for every monitored item on every change,
# in case the writer mutates it later. The simulator never mutates a DataValue once
# written (its values are scalars in fresh DataValues), and at thousands of changes per
# second those copies were most of its CPU (bench/opcua.py); keep the reference instead.
# Only asyncua's server side is affected, and in this code base only simulators run one.
setattr(MonitoredItemValues, "set_current_datavalue", _keep_datavalue)  # noqa: B010

_standard_lock = threading.Lock()
_standard_nodes: dict[Any, NodeData] = {}


def standard_address_space() -> dict[Any, NodeData]:
    """Return a private copy of the OPC UA standard address space (built once per process).

    Filling it takes asyncua seconds; copying the filled nodes takes a fraction of that,
    which is what lets a simulator start (and restart) quickly.
    """
    with _standard_lock:
        if not _standard_nodes:
            template = Server()
            fill_address_space(template.iserver.node_mgt_service)
            _standard_nodes.update(template.iserver.aspace._nodes)
    copy: dict[Any, NodeData] = {}
    for node_id, data in _standard_nodes.items():
        node = NodeData(node_id)
        for attribute, value in data.attributes.items():
            fresh = AttributeValue(value.value)
            fresh.value_callback = value.value_callback
            fresh.value_setter = value.value_setter
            node.attributes[attribute] = fresh
        node.references = list(data.references)
        node.call = data.call
        copy[node_id] = node
    return copy


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on host that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _kind(point: OpcUaFleetPoint) -> ValueKind:
    if point.data_type == "bool":
        return "bool"
    return "string" if point.data_type == "string" else "number"


def typed_value(point: OpcUaFleetPoint, value: Value) -> Any:
    """Shape a signal value to the point's data type (rounded and clamped for integers)."""
    if point.data_type == "bool":
        return bool(value)
    if point.data_type == "string":
        return "" if value is None else str(value)
    number = float(value) if isinstance(value, int | float) else 0.0
    if point.data_type in _INT_BITS:
        bits = _INT_BITS[point.data_type]
        return max(-(2 ** (bits - 1)), min(2 ** (bits - 1) - 1, round(number)))
    if point.data_type in _UINT_BITS:
        return max(0, min(2 ** _UINT_BITS[point.data_type] - 1, round(number)))
    return number if math.isfinite(number) else 0.0


class _Users:
    """Accepts configured username/password pairs and any user certificate."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is not None:
            if username in self.users and self.users[username] == password:
                return User(role=UserRole.User, name=username)
            return None
        # A certificate token, or anonymous (only offered when no users are configured);
        # asyncua passes the channel's client certificate here for both.
        return User(role=UserRole.User, name="certificate" if certificate else None)


@dataclass(slots=True)
class _ServedPoint:
    point: OpcUaFleetPoint
    node: Node
    seed: int
    status: int = ua.StatusCodes.Good
    value: Value = None


@dataclass(slots=True)
class _ServedDevice:
    device: OpcUaFleetDevice
    node: Node
    points: dict[str, _ServedPoint]


class OpcUaSimulatorServer:
    """A running (or stopped) simulated OPC UA server; start() and stop() may repeat."""

    def __init__(
        self,
        devices: Sequence[OpcUaFleetDevice],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "main",
        security: Security = "none",
        users: Mapping[str, str] | None = None,
        nodeid_offset: int = 0,
        subscriptions: bool = True,
        certificate: ServerCertificate | None = None,
        seed: int = 0,
    ) -> None:
        self.devices = list(devices)
        self.host = host
        self.port = port or free_port(host)
        self.name = name
        self.security: Security = security
        self.users = dict(users or {})
        self.nodeid_offset = nodeid_offset
        self.subscriptions = subscriptions
        self.application_uri = f"{APPLICATION_URI}:{name}"
        self.certificate = certificate
        if certificate is None and security != "none":
            self.certificate = generate_certificate(self.application_uri, host)
        self.seed = seed
        self._server: Server | None = None
        self._folder: Node | None = None
        self._served: dict[str, _ServedDevice] = {}
        self._namespace = 0
        self._di_namespace = 0
        self._next_id = 0
        self._animator: asyncio.Task[None] | None = None
        self._started_at = time.monotonic()
        self.faults = WriteFaults()
        """Write failure modes per point (see simulators/opcua/faults.py)."""

    @property
    def endpoint(self) -> str:
        """The opc.tcp URL clients connect to."""
        return f"opc.tcp://{self.host}:{self.port}/"

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    def node_id(self, device_id: str, point: str | None = None) -> str:
        """Return the current NodeId of a device's Object (or of one of its points), as a string."""
        served = self._served[device_id]
        node = served.node if point is None else served.points[point].node
        return str(node.nodeid.to_string())

    def browse_path(self, device_id: str) -> str:
        """Return the browse path of a device's Object."""
        return f"Objects/{DEVICE_FOLDER}/{self._device(device_id).object_name}"

    def _device(self, device_id: str) -> OpcUaFleetDevice:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(f"OPC UA simulator {self.name!r} serves no device {device_id!r}")

    def _nodeid(self) -> ua.NodeId:
        self._next_id += 1
        return ua.NodeId(self._next_id, self._namespace)

    async def start(self) -> None:
        """Build the address space and listen on host:port."""
        if self._server is not None:
            return
        started = time.monotonic()
        server = Server(user_manager=_Users(self.users))
        server.name = f"Tally OPC UA simulator {self.name} (simulated)"
        server.manufacturer_name = SIMULATED_VENDOR
        server.product_uri = "urn:tally:simulator"

        async def load_standard(shelf_file: Path | None = None) -> None:
            server.iserver.aspace._nodes = await asyncio.to_thread(standard_address_space)

        server.iserver.load_standard_address_space = load_standard
        await server.init()
        self.faults.install(server.iserver.attribute_service, self._point_at)
        await server.set_application_uri(self.application_uri)
        server.set_endpoint(self.endpoint)
        server.set_security_policy(_POLICIES[self.security])
        tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken]
        if not self.users:
            tokens.insert(0, ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if self.certificate is not None:
            await server.load_certificate(self.certificate.cert_der, format="der")
            await server.load_private_key(self.certificate.key_pem, format="pem")
        if not self.subscriptions:
            server.iserver.max_subscriptions = 0
        for i in range(self.nodeid_offset % 4):
            await server.register_namespace(f"urn:tally:simulator:padding:{i}")
        self._di_namespace = await server.register_namespace(DI_NAMESPACE)
        self._namespace = await server.register_namespace(DEVICES_NAMESPACE)
        self._next_id = 1000 + self.nodeid_offset * 100_000
        self._server = server
        self._served = {}
        self._folder = await server.nodes.objects.add_folder(self._nodeid(), DEVICE_FOLDER)
        for device in self.devices:
            await self._add(self._folder, device)
        await server.start()
        self._animator = asyncio.create_task(self._animate(), name=f"opcua-sim-{self.name}")
        log.info(
            "OPC UA simulator %s: %d device(s) on %s (security %s, %s) in %.2f s",
            self.name,
            len(self.devices),
            self.endpoint,
            self.security,
            "username/password" if self.users else "anonymous allowed",
            time.monotonic() - started,
        )

    async def stop(self) -> None:
        """Stop the value updates and the server (clients see the connection drop)."""
        task, self._animator = self._animator, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> OpcUaSimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _add(self, folder: Node, device: OpcUaFleetDevice) -> None:
        identity = device.reported_identity()
        obj = await folder.add_object(self._nodeid(), device.object_name)
        if device.name:
            await obj.write_attribute(
                ua.AttributeIds.DisplayName, ua.DataValue(ua.LocalizedText(device.name))
            )
        di = self._di_namespace
        for name, value in (
            ("Manufacturer", ua.LocalizedText(identity["vendor"])),
            ("Model", ua.LocalizedText(identity["model"])),
            ("SerialNumber", f"SIM-{device.id}"),
            ("DeviceClass", device.type or "device"),
            ("ProductCode", identity["product_code"]),
            ("SoftwareRevision", identity["revision"]),
        ):
            await obj.add_property(self._nodeid(), ua.QualifiedName(name, di), value)
        groups: dict[str, Node] = {}
        points: dict[str, _ServedPoint] = {}
        for point in device.points:
            *path, leaf = point.key.split("/")
            parent = obj
            for depth in range(len(path)):
                group_key = "/".join(path[: depth + 1])
                if group_key not in groups:
                    groups[group_key] = await parent.add_object(self._nodeid(), path[depth])
                parent = groups[group_key]
            seed = point_seed(self.seed, device.id, point.key)
            initial = typed_value(point, signal_value(point.signal, 0.0, _kind(point), seed))
            var = await parent.add_variable(
                self._nodeid(), leaf, ua.Variant(initial, _VARIANT_TYPES[point.data_type])
            )
            if point.writable:
                await var.set_writable()
            if point.unit:
                unit = ua.EUInformation(
                    NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                    UnitId=-1,
                    DisplayName=ua.LocalizedText(point.unit),
                    Description=ua.LocalizedText(point.unit),
                )
                await var.add_property(self._nodeid(), "EngineeringUnits", unit)
            points[point.key] = _ServedPoint(point, var, seed, value=initial)
        self._served[device.id] = _ServedDevice(device, obj, points)
        if any(p.writable for p in device.points):
            # arguments declared by hand: asyncua would give their node an id of our range
            method = await obj.add_method(
                self._nodeid(), "SetValue", self._set_value_method(device.id), [], []
            )
            arguments = [
                ua.Argument(Name="point", DataType=ua.NodeId(ua.ObjectIds.String), ValueRank=-1),
                ua.Argument(
                    Name="value", DataType=ua.NodeId(ua.ObjectIds.BaseDataType), ValueRank=-1
                ),
            ]
            await method.add_property(
                self._nodeid(),
                ua.QualifiedName("InputArguments", 0),
                arguments,
                varianttype=ua.VariantType.ExtensionObject,
                datatype=ua.ObjectIds.Argument,
            )

    def _set_value_method(self, device_id: str) -> Any:
        """Return the body of a device's SetValue(point, value) method (writable points only)."""

        async def set_value(parent: ua.NodeId, point: ua.Variant, value: ua.Variant) -> Any:
            refused = self.faults.call_refusal(device_id)
            if refused is not None:
                return ua.StatusCode(refused)
            served = self._served.get(device_id)
            target = served.points.get(str(point.Value)) if served is not None else None
            if target is None or not target.point.writable:
                return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            await self._set(target, value.Value)
            return []

        return set_value

    async def add_device(self, device: OpcUaFleetDevice) -> None:
        """Serve one more device (appears on the next browse)."""
        if self._server is None or self._folder is None:
            raise RuntimeError("start the simulator before adding devices")
        self.devices.append(device)
        await self._add(self._folder, device)

    async def remove_device(self, device_id: str) -> None:
        """Stop serving one device: delete its Object and everything below it."""
        device = self._device(device_id)
        served = self._served.pop(device_id, None)
        self.devices.remove(device)
        if served is not None and self._server is not None:
            for point in served.points.values():
                await self._notify_deleted(point.node)
            await self._server.delete_nodes([served.node], recursive=True)

    async def _notify_deleted(self, node: Node) -> None:
        # asyncua 2.1 calls the (async) monitored-item callbacks of a deleted node without
        # awaiting them, so clients never hear of it. Tell them as servers commonly do: a
        # data change of that item with StatusCode BadNodeIdUnknown and no value (asyncua's
        # own error path would end the whole subscription with a status change instead).
        assert self._server is not None
        aspace = self._server.iserver.aspace
        attribute = aspace[node.nodeid].attributes.get(ua.AttributeIds.Value)
        if attribute is None:
            return
        gone = ua.DataValue(
            StatusCode=ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown),
            ServerTimestamp=datetime.now(UTC),
        )
        for handle, callback in list(attribute.datachange_callbacks.items()):
            result = callback(handle, gone)
            if inspect.isawaitable(result):
                await result
            aspace.delete_datachange_callback(handle)

    async def silence_subscriptions(self) -> int:
        """Stop publishing on every subscription (no data, no keep-alive); return how many."""
        if self._server is None:
            return 0
        subs = list(self._server.iserver.subscription_service.subscriptions.values())
        for sub in subs:
            await sub.stop()
        return len(subs)

    async def remove_point(self, device_id: str, point: str) -> None:
        """Stop serving one Variable of a device (its monitored items get BadNodeIdUnknown)."""
        served = self._served[device_id]
        gone = served.points.pop(point)
        if self._server is not None:
            await self._notify_deleted(gone.node)
            await self._server.delete_nodes([gone.node], recursive=True)

    async def set_status(self, device_id: str, point: str, status: int | str) -> None:
        """Give a point's value this StatusCode (a value or a name such as 'BadSensorFailure').

        The status stays until set again (or the server restarts), across value updates, so a
        point can report Bad or Uncertain quality for as long as a test needs. A Bad value is
        served as null (OPC 10000-4, 7.7.1), so its subscribers hear of it once, not per update.
        """
        code = getattr(ua.StatusCodes, status) if isinstance(status, str) else int(status)
        served = self._served[device_id].points[point]
        served.status = code
        if self._server is not None:
            current = self._server.read_attribute_value(served.node.nodeid).Value
            # a client may have written the point since; a Bad value is null: keep the last one
            held = current.Value if current is not None and current.Value is not None else None
            await self._set(served, served.value if held is None else held)

    def _point_at(self, node_id: ua.NodeId) -> tuple[str, str] | None:
        """Return (device id, point key) of the Variable with this NodeId, if one is served."""
        for device_id, served in self._served.items():
            for key, point in served.points.items():
                if point.node.nodeid == node_id:
                    return device_id, key
        return None

    async def read_value(self, device_id: str, point: str) -> Any:
        """Return the value a point holds now."""
        return await self._served[device_id].points[point].node.read_value()

    async def _set(self, served: _ServedPoint, value: Value) -> None:
        assert self._server is not None
        served.value = value
        now = datetime.now(UTC)
        data = ua.DataValue(
            ua.Variant(typed_value(served.point, value), _VARIANT_TYPES[served.point.data_type]),
            StatusCode=ua.StatusCode(served.status),
            SourceTimestamp=now,
            ServerTimestamp=now,
        )
        await self._server.write_attribute_value(served.node.nodeid, data)

    def update(self, device_id: str, t: float) -> list[tuple[str, Value]]:
        """Return the values of a device's read-only points at t seconds (writable ones hold)."""
        out = []
        for key, served in self._served[device_id].points.items():
            if not served.point.writable:
                out.append(
                    (key, signal_value(served.point.signal, t, _kind(served.point), served.seed))
                )
        return out

    async def _animate(self) -> None:
        """Update every device at its own fixed rate (time spent updating does not add up)."""
        due: dict[str, float] = {}
        while True:
            t = time.monotonic() - self._started_at
            for device_id, served in list(self._served.items()):
                if due.get(device_id, 0.0) > t:
                    continue
                for key, value in self.update(device_id, t):
                    await self._set(served.points[key], value)
                await asyncio.sleep(0)  # let requests in between devices, not after them all
                interval = served.device.update_interval
                # one interval after this update was due; one after now if that is past
                # already (a device that fell behind skips updates rather than bursting)
                next_due = due.get(device_id, t) + interval
                due[device_id] = next_due if next_due > t else t + interval
            pending = [due[d] for d in self._served if d in due]
            now = time.monotonic() - self._started_at
            await asyncio.sleep(max(0.01, min(pending, default=now + 0.5) - now))
