"""One OPC UA session through asyncua: the only adapter module that imports asyncua.

Everything crossing this module's boundary is a plain record from `nodes.py`
(NodeIds are strings such as 'ns=2;i=1005'), so discovery and the adapter stay
free of the library.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncua
from asyncua import Client, Node, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent
from asyncua.common.subscription import Subscription as UaSubscription
from asyncua.crypto import security_policies
from asyncua.ua import ua_binary
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from adapters.base import Value
from adapters.opcua.config import (
    AuthKind,
    Deadband,
    DeadbandKind,
    OpcUaSource,
    SecurityMode,
    SecurityPolicy,
)
from adapters.opcua.nodes import (
    BUILTIN_TYPES,
    NodeKind,
    Reading,
    Reference,
    VariableAttributes,
)
from adapters.opcua.pki import ClientCertificate, TrustStore

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_POLICY_URIS = {
    SecurityPolicy.NONE: security_policies.SecurityPolicyNone.URI,
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256.URI,
}
_MODES = {
    SecurityMode.NONE: ua.MessageSecurityMode.None_,
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}
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
_FILTER_REFUSED = frozenset(
    {
        ua.StatusCodes.BadFilterNotAllowed,
        ua.StatusCodes.BadMonitoredItemFilterUnsupported,
        ua.StatusCodes.BadMonitoredItemFilterInvalid,
        ua.StatusCodes.BadDeadbandFilterInvalid,
    }
)
_CURRENT_WRITE = 0x02
_MAX_CONTINUATIONS = 10_000
_MAX_SUPERTYPE_HOPS = 16

WIRE_ERRORS: tuple[type[BaseException], ...] = (UaError, OSError, ConnectionError)
"""What a request can fail with on the wire besides TimeoutError (for callers outside)."""


class ConnectError(Exception):
    """The session could not be established; the message says why and what to check."""


class SubscriptionsUnsupported(Exception):
    """The server refused to create a subscription."""


class SubscriptionLost(Exception):
    """The server reported the subscription gone (status change) or it was closed."""


@dataclass(frozen=True, slots=True)
class MonitorRequest:
    """One point to monitor: the caller's handle, its NodeId and whether it is numeric."""

    handle: int
    node_id: str
    numeric: bool


def node_gone_statuses() -> frozenset[int]:
    """StatusCodes saying that a monitored or read node no longer exists on the server."""
    return frozenset({ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid})


def status_name(status: int) -> str:
    """Return the symbolic name of a StatusCode value, e.g. 'BadNodeIdUnknown'."""
    return str(ua.StatusCode(status).name)


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


_PLAIN_TYPES = frozenset({float, int, bool, str, type(None)})


def plain_value(value: Any) -> Value:
    """Turn a Variant's value into a sample value (number, bool, text or None)."""
    if type(value) in _PLAIN_TYPES:  # nearly every notification: no isinstance chain
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.name)
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        aware = _aware(value)
        return aware.isoformat() if aware else None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, ua.LocalizedText):
        return None if value.Text is None else str(value.Text)
    if isinstance(value, ua.QualifiedName):
        return str(value.Name)
    if isinstance(value, ua.EUInformation):
        return plain_value(value.DisplayName) if value.DisplayName else None
    if isinstance(value, ua.NodeId):
        return str(value.to_string())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(plain_value(v)) for v in value) + "]"
    return str(value)


# --- A fast path for asyncua's decoding of DataValues -------------------------------
#
# asyncua decodes every structure with a generic, field-by-field decoder; a DataValue
# (every monitored-item notification carries one) costs ≈30 µs that way on the shared
# development machine. `_decode_data_value` decodes the common shape (a scalar number or
# Boolean, a status code, source and server time stamps, no picoseconds) directly into
# the very same objects (`ua.DataValue`, `ua.Variant`, `ua.StatusCode`, time stamps
# from asyncua's own conversion); anything else (arrays, strings, picoseconds, other
# types) is decoded by asyncua's generic decoder from the same position. It is
# installed once, into asyncua 2.1's decoder factory (`_create_dataclass_deserializer`,
# whose caches are cleared so that every decoder built from now on uses it); for
# another asyncua version it is left out and asyncua decodes as before.

_SCALAR_FORMATS = {
    ua.VariantType.Boolean: "?",
    ua.VariantType.SByte: "b",
    ua.VariantType.Byte: "B",
    ua.VariantType.Int16: "h",
    ua.VariantType.UInt16: "H",
    ua.VariantType.Int32: "i",
    ua.VariantType.UInt32: "I",
    ua.VariantType.Int64: "q",
    ua.VariantType.UInt64: "Q",
    ua.VariantType.Float: "f",
    ua.VariantType.Double: "d",
}
_SCALAR_CODES = {vtype.value: vtype for vtype in _SCALAR_FORMATS}
_DATA_VALUE_MASKS = 0x0F  # Value, StatusCode, SourceTimestamp, ServerTimestamp
_Layout = tuple[int, Any, ua.VariantType | None]
_layouts: dict[tuple[int, int], _Layout] = {}  # (mask, variant type) -> size, unpack, type
_generic_data_value: Any = None  # asyncua's own DataValue decoder, built on first need
_win_epoch_to_datetime = ua.win_epoch_to_datetime


def _layout(mask: int, code: int) -> _Layout:
    """Return the size and struct unpacker of a DataValue's fields after its mask byte."""
    vtype = _SCALAR_CODES[code] if mask & 0x01 else None
    fmt = "<" + (_SCALAR_FORMATS[vtype] if vtype is not None else "")
    fmt += "I" if mask & 0x02 else ""
    fmt += "q" * ((mask >> 2) & 1) + "q" * ((mask >> 3) & 1)
    layout = _layouts[(mask, code)] = (struct.calcsize(fmt), struct.Struct(fmt).unpack, vtype)
    return layout


def _decode_data_value(data: Any) -> ua.DataValue:
    """Decode one binary DataValue from an asyncua Buffer (see the comment above)."""
    start = data.cur_pos
    read = data.read
    mask = read(1)[0]
    if mask & ~_DATA_VALUE_MASKS:
        return _generic_decode(data, start)
    code = 0
    if mask & 0x01:
        code = read(1)[0]
        if code not in _SCALAR_CODES:  # arrays (bit 7), dimensions (bit 6), other types
            return _generic_decode(data, start)
    size, unpack, vtype = _layouts.get((mask, code)) or _layout(mask, code)
    values = unpack(read(size))
    fields: dict[str, Any] = {}
    index = 0
    if vtype is not None:
        fields["Value"] = ua.Variant(values[0], vtype, None, is_array=False)
        index = 1
    if mask & 0x02:
        fields["StatusCode"] = ua.StatusCode(values[index])
        index += 1
    if mask & 0x04:
        fields["SourceTimestamp"] = _win_epoch_to_datetime(values[index])
        index += 1
    if mask & 0x08:
        fields["ServerTimestamp"] = _win_epoch_to_datetime(values[index])
    return ua.DataValue(**fields)


def _generic_decode(data: Any, start: int) -> ua.DataValue:
    global _generic_data_value  # noqa: PLW0603 (built once, on first need)
    data.rewind(start)
    if _generic_data_value is None:
        _generic_data_value = _GENERIC_FACTORY(ua.DataValue)
    return _generic_data_value(data)


def _install_fast_data_value() -> Any:
    """Route asyncua's DataValue decoding through `_decode_data_value`; return the old factory."""
    factory = getattr(ua_binary, "_create_dataclass_deserializer", None)
    caches: list[Any] = [getattr(ua_binary, name, None) for name in _DECODER_CACHES]
    if factory is None or not all(hasattr(c, "cache_clear") for c in caches):
        log.info("asyncua %s: no fast DataValue decoding", getattr(asyncua, "__version__", "?"))
        return factory

    @functools.cache
    def with_fast_data_value(objtype: type | str) -> Any:
        if objtype is ua.DataValue or objtype == "DataValue":
            return _decode_data_value
        return factory(objtype)

    ua_binary._create_dataclass_deserializer = with_fast_data_value
    for cache in caches:
        cache.cache_clear()
    return factory


_DECODER_CACHES = (
    "_create_dataclass_deserializer",
    "_create_type_deserializer",
    "_create_uatype_deserializer",
    "_create_list_deserializer",
)
_GENERIC_FACTORY = _install_fast_data_value()


def to_reading(data: ua.DataValue) -> Reading:
    """Convert a DataValue to a Reading."""
    variant = data.Value
    status = data.StatusCode.value if data.StatusCode is not None else 0
    return Reading(
        value=plain_value(variant.Value if variant is not None else None),
        status=status,
        source_ts=_aware(data.SourceTimestamp),
        server_ts=_aware(data.ServerTimestamp),
    )


class DataSubscription:
    """A live subscription whose data changes arrive as (handle, Reading)."""

    def __init__(self, subscription: UaSubscription, keepalive_timeout: float) -> None:
        self._sub = subscription
        self._created = time.monotonic()
        self._lost: SubscriptionLost | None = None
        self.keepalive_timeout = keepalive_timeout

    @property
    def silent_for(self) -> float:
        """Seconds since the server last published (data or keep-alive)."""
        last = self._sub.last_publish_at or self._created
        return time.monotonic() - max(last, self._created)

    async def next_changes(self, within: float, limit: int = 10_000) -> list[tuple[int, Reading]]:
        """Return the data changes queued now, else wait up to `within` seconds for some.

        Raises SubscriptionLost when the server reported the subscription gone or it was
        closed, after the changes that arrived before that were returned.
        """
        if self._lost is not None:
            raise self._lost
        events = self._drain(limit)
        if not events:
            # asyncua's only public accessor; it costs a task and a timer (wait_for), so it
            # is used once per wait, never per queued notification.
            try:
                first = await self._sub.next_event(within)
            except StopAsyncIteration:
                raise SubscriptionLost("the subscription was closed") from None
            if first is None:
                return []
            events = [first, *self._drain(limit - 1)]
        out: list[tuple[int, Reading]] = []
        for event in events:
            if event is None:
                self._lost = SubscriptionLost("the subscription was closed")
                break
            if isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                self._lost = SubscriptionLost(
                    f"the server reported subscription status {status.name}"
                )
                break
            if not isinstance(event, DataChangeEvent):
                continue
            handle = event.data.subscription_data.client_handle
            value = event.data.monitored_item.Value
            if handle is not None and value is not None:
                out.append((int(handle), to_reading(value)))
        if not out and self._lost is not None:
            raise self._lost
        return out

    def _drain(self, limit: int) -> list[Any]:
        """Take up to `limit` queued events without waiting.

        asyncua 2.1 keeps iterator-mode events in `Subscription._event_queue` (an
        asyncio.Queue) and offers no bulk accessor; reading it directly keeps the cost per
        notification to a queue pop. Without that attribute, nothing is drained here and
        next_changes() falls back to one next_event() per change.
        """
        queue = getattr(self._sub, "_event_queue", None)
        if not isinstance(queue, asyncio.Queue):
            return []
        events: list[Any] = []
        while len(events) < limit:
            try:
                events.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return events

    async def close(self) -> None:
        """Delete the subscription on the server (best effort)."""
        try:
            await asyncio.wait_for(self._sub.delete(), timeout=2.0)
        except (TimeoutError, UaError, OSError, ConnectionError):
            log.debug("deleting subscription failed", exc_info=True)


class OpcUaClient:
    """A session with one OPC UA server, with secure channel, user identity and trust."""

    def __init__(
        self, source: OpcUaSource, certificate: ClientCertificate, trust: TrustStore
    ) -> None:
        self.source = source
        self._certificate = certificate
        self._trust = trust
        self._client: Client | None = None
        self._lost = asyncio.Event()
        self._supertypes: dict[str, str] = {}
        self.application_uri: str | None = None

    @property
    def alive(self) -> bool:
        """True while the session is up and no connection loss was reported."""
        return (
            self._client is not None
            and not self._lost.is_set()
            and self._client.state.value == "connected"
        )

    @property
    def lost(self) -> asyncio.Event:
        """Set when asyncua reports the connection lost."""
        return self._lost

    def _session(self) -> Client:
        if self._client is None:
            raise ConnectionError(f"OPC UA {self.source.endpoint}: not connected")
        return self._client

    async def connect(self) -> str:
        """Open the secure channel and session; return the server's ApplicationUri."""
        url = self.source.endpoint
        # asyncua probes the server every watchdog interval and declares the connection lost
        # when the probe takes longer than that interval: a busy server must get the same
        # time as any request. A closed connection is noticed at once either way.
        client = Client(url, timeout=self.source.timeout, watchdog_intervall=self.source.timeout)
        client.application_uri = self.source.application_uri
        client.name = client.description = "Tally collector"
        client.product_uri = "urn:tally"
        client.session_timeout = 120_000
        try:
            endpoints = await client.connect_and_get_server_endpoints()
        except (OSError, TimeoutError, UaError) as exc:
            raise ConnectError(f"OPC UA {url}: cannot reach the server: {exc!r}") from exc
        security = self.source.security
        wanted = (_POLICY_URIS[security.policy], _MODES[security.mode])
        chosen = next(
            (e for e in endpoints if (e.SecurityPolicyUri, e.SecurityMode) == wanted), None
        )
        if chosen is None:
            offered = ", ".join(
                f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints
            )
            raise ConnectError(
                f"OPC UA {url}: the server offers no endpoint with security policy "
                f"{security.policy.value} and mode {security.mode.value}; it offers: {offered}"
            )
        application_uri = str(chosen.Server.ApplicationUri)
        if security.policy is not SecurityPolicy.NONE:
            server_der = _first_certificate(chosen.ServerCertificate)
            if not server_der:
                raise ConnectError(f"OPC UA {url}: secured endpoint without a server certificate")
            self._trust.check(url, application_uri, server_der)
            await client.set_security(
                security_policies.SecurityPolicyBasic256Sha256,
                certificate=str(self._certificate.cert_path),
                private_key=str(self._certificate.key_path),
                server_certificate=server_der,
                mode=_MODES[security.mode],
            )
        await self._set_identity(client)
        client.connection_lost_callback = self._on_lost
        try:
            await client.connect()
        except UaStatusCodeError as exc:
            raise ConnectError(
                f"OPC UA {url}: the server refused the session ({exc.__class__.__name__}); "
                f"check auth (kind {self.source.auth.kind.value}) and security settings"
            ) from exc
        except (OSError, TimeoutError, UaError) as exc:
            raise ConnectError(f"OPC UA {url}: connecting failed: {exc!r}") from exc
        self._client = client
        self._lost.clear()
        self.application_uri = application_uri
        return application_uri

    async def _set_identity(self, client: Client) -> None:
        auth = self.source.auth
        if auth.kind is AuthKind.USERNAME:
            assert auth.username is not None and auth.password is not None
            client.set_user(auth.username)
            client.set_password(auth.password.get_secret_value())
        elif auth.kind is AuthKind.CERTIFICATE:
            cert = auth.certificate or self._certificate.cert_path
            key = auth.private_key or self._certificate.key_path
            await client.load_client_certificate(str(cert))
            await client.load_private_key(key)

    async def _on_lost(self, exc: Exception) -> None:
        log.info("OPC UA %s: connection lost: %r", self.source.endpoint, exc)
        self._lost.set()

    async def disconnect(self) -> None:
        """Close the session and channel; never raises."""
        client, self._client = self._client, None
        self._lost.set()
        if client is None:
            return
        try:
            await asyncio.wait_for(client.disconnect(), timeout=3.0)
        except Exception:
            log.debug("OPC UA %s: disconnect failed", self.source.endpoint, exc_info=True)
            client.disconnect_socket()

    async def browse(self, node_ids: Sequence[str]) -> dict[str, list[Reference]]:
        """Return the hierarchical Object and Variable children of each node."""
        client = self._session()
        out: dict[str, list[Reference]] = {}
        for chunk in _chunks(node_ids, self.source.data.max_items_per_request):
            params = ua.BrowseParameters()
            params.View = ua.ViewDescription()
            params.RequestedMaxReferencesPerNode = 1000
            params.NodesToBrowse = [
                ua.BrowseDescription(
                    NodeId=ua.NodeId.from_string(n),
                    BrowseDirection=ua.BrowseDirection.Forward,
                    ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),
                    IncludeSubtypes=True,
                    NodeClassMask=ua.NodeClass.Object | ua.NodeClass.Variable,
                    ResultMask=ua.BrowseResultMask.All,
                )
                for n in chunk
            ]
            results = await client.uaclient.browse(params)
            for node_id, result in zip(chunk, results, strict=True):
                refs = list(result.References or [])
                point = result.ContinuationPoint
                for _ in range(_MAX_CONTINUATIONS):
                    if not point:
                        break
                    more = await client.uaclient.browse_next(
                        ua.BrowseNextParameters(
                            ReleaseContinuationPoints=False, ContinuationPoints=[point]
                        )
                    )
                    refs.extend(more[0].References or [])
                    point = more[0].ContinuationPoint
                out[node_id] = [r for r in map(_reference, refs) if r is not None]
        return out

    async def browse_name(self, node_id: str) -> str | None:
        """Return the browse name of a node, or None when the server does not know it."""
        try:
            nid = ua.NodeId.from_string(node_id)
        except (ValueError, UaError):
            return None
        [data] = await self._session().uaclient.read_attributes([nid], ua.AttributeIds.BrowseName)
        if data.StatusCode is not None and not data.StatusCode.is_good():
            return None
        if data.Value is None or not isinstance(data.Value.Value, ua.QualifiedName):
            return None
        return str(data.Value.Value.Name)

    async def read(self, node_ids: Sequence[str]) -> list[Reading]:
        """Read the Value attribute of nodes, in order."""
        client = self._session()
        out: list[Reading] = []
        for chunk in _chunks(node_ids, self.source.data.max_items_per_request):
            nids = [ua.NodeId.from_string(n) for n in chunk]
            out.extend(
                to_reading(d)
                for d in await client.uaclient.read_attributes(nids, ua.AttributeIds.Value)
            )
        return out

    async def variable_attributes(self, node_ids: Sequence[str]) -> list[VariableAttributes]:
        """Read data type and write access (for this user) of Variables, in order."""
        client = self._session()
        attrs = (
            ua.AttributeIds.DataType,
            ua.AttributeIds.AccessLevel,
            ua.AttributeIds.UserAccessLevel,
        )
        out: list[VariableAttributes] = []
        size = max(1, self.source.data.max_items_per_request // len(attrs))
        for chunk in _chunks(node_ids, size):
            params = ua.ReadParameters()
            for node_id in chunk:
                for attr in attrs:
                    params.NodesToRead.append(
                        ua.ReadValueId(NodeId=ua.NodeId.from_string(node_id), AttributeId=attr)
                    )
            results = await client.uaclient.read(params)
            for i in range(len(chunk)):
                data_type, access, user_access = results[i * 3 : i * 3 + 3]
                level = _good_int(user_access)
                if level is None:
                    level = _good_int(access) or 0
                type_id = data_type.Value.Value if data_type.Value is not None else None
                name = await self._type_name(type_id) if isinstance(type_id, ua.NodeId) else "other"
                out.append(
                    VariableAttributes(data_type=name, writable=bool(level & _CURRENT_WRITE))
                )
        return out

    async def _type_name(self, type_id: ua.NodeId) -> str:
        key = type_id.to_string()
        if key in self._supertypes:
            return self._supertypes[key]
        current = type_id
        name = "other"
        for _ in range(_MAX_SUPERTYPE_HOPS):
            if current.NamespaceIndex == 0 and isinstance(current.Identifier, int):
                known = BUILTIN_TYPES.get(current.Identifier)
                if known is not None:
                    name = known
                    break
            parent = await self._supertype(current)
            if parent is None:
                break
            current = parent
        self._supertypes[key] = name
        return name

    async def _supertype(self, type_id: ua.NodeId) -> ua.NodeId | None:
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.NodesToBrowse = [
            ua.BrowseDescription(
                NodeId=type_id,
                BrowseDirection=ua.BrowseDirection.Inverse,
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasSubtype),
                IncludeSubtypes=False,
                NodeClassMask=ua.NodeClass.DataType,
                ResultMask=ua.BrowseResultMask.All,
            )
        ]
        [result] = await self._session().uaclient.browse(params)
        for ref in result.References or []:
            return ua.NodeId(
                ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType
            )
        return None

    async def write(self, node_id: str, value: bool | int | float | str, data_type: str) -> int:
        """Write a value (see nodes.normalize_for_write) as data_type; return the StatusCode."""
        variant = ua.Variant(value, _VARIANT_TYPES[data_type])
        client = self._session()
        [status] = await client.uaclient.write_attributes(
            [ua.NodeId.from_string(node_id)], [ua.DataValue(Value=variant)], ua.AttributeIds.Value
        )
        return int(status.value)

    async def call(
        self, start: str | None, path: Sequence[str], method: str, arguments: Sequence[Value]
    ) -> tuple[int, list[Value]]:
        """Call a method found by browse names: `method` of the Object at `path` below `start`.

        `start` is a NodeId (None: the Objects folder). Returns the StatusCode and the output
        arguments; raises LookupError when a browse name is not found.
        """
        client = self._session()
        parent = client.nodes.objects if start is None else client.get_node(start)
        for name in path:
            parent = await _named_child(client, parent, name)
        target = await _named_child(client, parent, method)
        request = ua.CallMethodRequest(
            ObjectId=parent.nodeid,
            MethodId=target.nodeid,
            InputArguments=[ua.Variant(a) for a in arguments],
        )
        [result] = await client.uaclient.call([request])
        outputs = [plain_value(v.Value) for v in result.OutputArguments or []]
        return int(result.StatusCode.value), outputs

    async def subscribe(
        self, requests: Sequence[MonitorRequest]
    ) -> tuple[DataSubscription, dict[int, int]]:
        """Create one subscription monitoring requests; return it and the refused handles."""
        client = self._session()
        data = self.source.data
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=data.publishing_interval * 1000,
            RequestedLifetimeCount=max(
                3 * data.keepalive_count, int(60 / data.publishing_interval)
            ),
            RequestedMaxKeepAliveCount=data.keepalive_count,
            MaxNotificationsPerPublish=10_000,
            PublishingEnabled=True,
            Priority=0,
        )
        try:
            sub = await client.create_subscription(
                params, handler=None, queue_maxsize=100_000, overflow=OverflowPolicy.WARN
            )
        except UaStatusCodeError as exc:
            raise SubscriptionsUnsupported(
                f"the server refused CreateSubscription: {exc.__class__.__name__}"
            ) from exc
        revised_ms = sub.parameters.RequestedPublishingInterval
        keepalive = max(1, int(sub.parameters.RequestedMaxKeepAliveCount or data.keepalive_count))
        timeout = max(revised_ms / 1000 * keepalive * data.keepalive_margin, 2.0)
        refused: dict[int, int] = {}
        numeric = [r for r in requests if r.numeric]
        other = [r for r in requests if not r.numeric]
        with_filter = numeric if data.deadband is not None else []
        plain = other + ([] if data.deadband is not None else numeric)
        for chunk in _chunks(with_filter, data.max_items_per_request):
            statuses = await self._monitor(sub, chunk, data.deadband)
            retry = [r for r in chunk if statuses.get(r.handle) in _FILTER_REFUSED]
            if retry:
                log.warning(
                    "OPC UA %s: the server refused the deadband filter on %d item(s); "
                    "monitoring them without it",
                    self.source.endpoint,
                    len(retry),
                )
                plain.extend(retry)
            refused.update({h: s for h, s in statuses.items() if s not in _FILTER_REFUSED})
        for chunk in _chunks(plain, data.max_items_per_request):
            refused.update(await self._monitor(sub, chunk, None))
        return DataSubscription(sub, timeout), refused

    async def _monitor(
        self, sub: UaSubscription, requests: Sequence[MonitorRequest], deadband: Deadband | None
    ) -> dict[int, int]:
        data = self.source.data
        mfilter = None
        if deadband is not None:
            mfilter = ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValue,
                DeadbandType=1 if deadband.kind is DeadbandKind.ABSOLUTE else 2,
                DeadbandValue=deadband.value,
            )
        items = []
        for request in requests:
            mparams = ua.MonitoringParameters(
                ClientHandle=request.handle,
                SamplingInterval=data.sampling_interval * 1000,
                QueueSize=data.queue_size,
                DiscardOldest=True,
                Filter=mfilter,
            )
            items.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(
                        NodeId=ua.NodeId.from_string(request.node_id),
                        AttributeId=ua.AttributeIds.Value,
                    ),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=mparams,
                )
            )
        results = await sub.create_monitored_items(items)
        return {
            r.handle: int(res.value)
            for r, res in zip(requests, results, strict=True)
            if isinstance(res, ua.StatusCode)
        }


def _first_certificate(der: bytes | None) -> bytes | None:
    if not der:
        return None
    length = int.from_bytes(der[2:4], "big") + 4
    return der[:length]


def _good_int(data: ua.DataValue) -> int | None:
    if data.StatusCode is not None and not data.StatusCode.is_good():
        return None
    if data.Value is None or not isinstance(data.Value.Value, int):
        return None
    return int(data.Value.Value)


def _reference(ref: ua.ReferenceDescription) -> Reference | None:
    if ref.NodeClass == ua.NodeClass.Object:
        kind = NodeKind.OBJECT
    elif ref.NodeClass == ua.NodeClass.Variable:
        kind = NodeKind.VARIABLE
    else:
        return None
    nid = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType)
    display = ref.DisplayName.Text if ref.DisplayName is not None else None
    return Reference(
        node_id=nid.to_string(),
        name=str(ref.BrowseName.Name),
        kind=kind,
        is_property=ref.ReferenceTypeId == ua.NodeId(ua.ObjectIds.HasProperty),
        namespace=int(ref.NodeId.NamespaceIndex),
        display_name=display,
    )


async def _named_child(client: Client, parent: Node, name: str) -> Node:
    """Return the child of `parent` whose browse name is `name` (any namespace)."""
    children = await parent.get_children_descriptions()
    for ref in children:
        if ref.BrowseName is not None and ref.BrowseName.Name == name:
            nid = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType)
            return client.get_node(nid)
    names = ", ".join(sorted(str(r.BrowseName.Name) for r in children if r.BrowseName)) or "none"
    raise LookupError(f"{parent.nodeid.to_string()} has no child {name!r} (children: {names})")
