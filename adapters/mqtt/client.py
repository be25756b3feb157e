"""The one module that speaks to paho-mqtt: a threaded client that re-subscribes itself.

paho runs its own network thread. Callbacks given here run on that thread, so
callers must hand data to their own loop safely (see adapters/mqtt/handoff.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import (
    CallbackAPIVersion,
    LogLevel,
    MessageType,
    MQTTErrorCode,
    MQTTProtocolVersion,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.base import utcnow
from adapters.mqtt.connect_errors import describe, describe_refusal

log = logging.getLogger(__name__)
paho_log = logging.getLogger("adapters.mqtt.paho")


class _BufferedClient(paho.Client):
    """paho's client with fewer system calls per message (paho-mqtt 2.2 internals).

    Stock paho reads one packet per select() and each packet with three or more recv()
    calls (command byte, length bytes one by one, body), wakes its own loop through a
    socket pair for every PUBACK it queues, and sends every PUBACK on its own. At QoS 1
    that is ~6 system calls and ~70 µs of CPU per message. Here:

    - reads come from a 64 KiB buffer filled by one recv(), and `loop_read` handles every
      complete packet in the buffer before returning to select();
    - a packet queued on the network thread itself (a PUBACK, a subscribe after CONNACK)
      does not wake the loop through the socket pair: the loop is already awake;
    - consecutive PUBACKs go out in one send();
    - with `on_publishes` set, every complete QoS 0/1 PUBLISH at the head of the buffer is
      parsed here in one pass (no MQTTMessage, no per-packet state machine), handed over
      as one list of `Received`, then acknowledged with one PUBACK write. Anything else
      (CONNACK, SUBACK, PINGRESP, QoS 2 flows, a malformed or empty-topic PUBLISH) is
      left at the head for paho's own `_packet_read`, so paho keeps the session, QoS 2
      and error handling.

    These override private methods of paho-mqtt ~2.2 (pinned in pyproject.toml); the
    integration tests exercise every one of them.
    """

    _READ_SIZE = 1 << 16
    _MAX_PACKETS_PER_READ = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self._rbuf_sock: object = None
        self._loop_ident: int | None = None
        self.on_publishes: Callable[[list[Received]], object] | None = None
        self.socket_error: OSError | None = None  # why the last connect or read failed

    def reconnect(self) -> MQTTErrorCode:
        """Connect again, keeping the reason of a failure (paho only logs it at debug)."""
        self.socket_error = None
        try:
            return super().reconnect()
        except OSError as err:
            self.socket_error = err
            raise

    def _recv(self, bufsize: int) -> bytes:
        """Receive from the socket, keeping the reason of a failure."""
        try:
            return super()._sock_recv(bufsize)
        except BlockingIOError:
            raise
        except OSError as err:
            self.socket_error = err
            raise

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rbuf_sock is not self._sock:  # a new connection: forget the old bytes
            self._rbuf.clear()
            self._rbuf_sock = self._sock
        if not self._rbuf:
            data = self._recv(max(bufsize, self._READ_SIZE))
            if len(data) <= bufsize:
                return data  # includes b"" (connection closed)
            self._rbuf += data
        chunk = bytes(self._rbuf[:bufsize])
        del self._rbuf[:bufsize]
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Handle every complete packet already received, then return to select()."""
        self._loop_ident = threading.get_ident()
        for _ in range(self._MAX_PACKETS_PER_READ):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if self.on_publishes is not None and self._in_packet["command"] == 0:
                rc = self._read_publishes()
                if rc > 0:
                    return self._loop_rc_handle(rc)
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
                # else the head of the buffer is a packet for paho itself
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN or not self._rbuf:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _read_publishes(self) -> MQTTErrorCode:
        """Deliver the PUBLISH packets at the head of the buffer, reading once if need be.

        MQTT_ERR_AGAIN: nothing more to do until the socket is readable again;
        MQTT_ERR_SUCCESS: the head of the buffer is a packet for `_packet_read`.
        """
        if self._rbuf_sock is not self._sock:  # a new connection: forget the old bytes
            self._rbuf.clear()
            self._rbuf_sock = self._sock
        filled = False
        while True:
            if self._rbuf and self._take_publishes():
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            if filled:
                return MQTTErrorCode.MQTT_ERR_AGAIN  # an incomplete PUBLISH waits for more bytes
            try:
                data = self._recv(self._READ_SIZE)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as err:  # reported by the disconnect (MqttClient._handle_disconnect)
                self._easy_log(paho.MQTT_LOG_DEBUG, "failed to receive on socket: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            self._rbuf += data
            filled = True
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()

    def _take_publishes(self) -> bool:
        """Parse, hand over and acknowledge the complete QoS 0/1 PUBLISHes at the buffer's head.

        Return True when a packet for paho itself is at the head now (False: the buffer is
        empty or ends in an incomplete PUBLISH).
        """
        data = bytes(self._rbuf)
        size = len(data)
        v5 = self._protocol == paho.MQTTv5
        now = utcnow()
        messages: list[Received] = []
        acks = bytearray()
        pos = 0
        for_paho = False
        while pos < size:
            header = data[pos]
            if header & 0xF0 != 0x30 or header & 0x06 > 0x02:  # not a PUBLISH at QoS 0/1
                for_paho = True
                break
            length, start = _remaining_length(data, pos + 1)
            if length < 0:
                for_paho = length == _MALFORMED
                break
            end = start + length
            if end > size:
                break  # incomplete: wait for the rest
            topic_end = start + 2 + ((data[start] << 8) | data[start + 1]) if length >= 2 else 0
            qos = header & 0x06
            body = topic_end + 2 if qos else topic_end
            if topic_end <= start + 2 or body > end:
                for_paho = True  # an empty topic (or an alias) or a malformed packet
                break
            if v5:
                props, body = _remaining_length(data, body)
                body += props
                if props < 0 or body > end:
                    for_paho = True
                    break
            try:
                topic: str | None = data[start + 2 : topic_end].decode()
            except UnicodeDecodeError:
                topic = None
            messages.append(
                _new_received(Received, (topic, data[body:end], qos >> 1, bool(header & 1), now))
            )
            if qos:
                acks += _PUBACK_HEAD
                acks += data[topic_end : topic_end + 2]
            pos = end
        if pos:
            del self._rbuf[:pos]
        if messages:
            handler = self.on_publishes
            assert handler is not None
            with self._in_callback_mutex:
                try:
                    handler(messages)
                except Exception:
                    # An exception here would end paho's network thread: log it and go on.
                    log.exception("message handler failed on %d messages", len(messages))
        if acks:
            self._packet_queue(MessageType.PUBACK, bytes(acks), 0, 0)
        return for_paho

    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: paho.MQTTMessageInfo | None = None,
    ) -> MQTTErrorCode:
        if self._loop_ident != threading.get_ident() or self._sockpairW is None:
            return super()._packet_queue(command, packet, mid, qos, info)
        self._out_packet.append(
            {
                "command": command,
                "mid": mid,
                "qos": qos,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": info,
            }
        )
        self._call_socket_register_write()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_write(self) -> MQTTErrorCode:
        out = self._out_packet
        if len(out) > 1 and _is_fresh_puback(out[0]) and _is_fresh_puback(out[1]):
            acks: list[bytes | bytearray] = []
            while out and _is_fresh_puback(out[0]):
                acks.append(out.popleft()["packet"])
            data = b"".join(acks)
            out.appendleft(
                {
                    "command": MessageType.PUBACK,
                    "mid": 0,
                    "qos": 0,
                    "pos": 0,
                    "to_process": len(data),
                    "packet": data,
                    "info": None,
                }
            )
        return super()._packet_write()


_PUBACK_HEAD = bytes((MessageType.PUBACK, 2))
_INCOMPLETE = -1
_MALFORMED = -2


def _remaining_length(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an MQTT variable byte integer at `pos`: (value, position after it).

    The value is _INCOMPLETE when the data end inside it, _MALFORMED beyond 4 bytes.
    """
    value = 0
    shift = 0
    size = len(data)
    while True:
        if pos >= size:
            return _INCOMPLETE, pos
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            return _MALFORMED, pos


def _is_fresh_puback(packet: Any) -> bool:
    return bool((packet["command"] & 0xF0) == MessageType.PUBACK and packet["pos"] == 0)


def _log_paho(client: paho.Client, userdata: Any, level: int, message: str) -> None:
    """Forward paho's log lines; its 'not connected' loop lines are debug.

    paho logs "Client is not connected" at error level on every turn of its loop while
    the socket is gone (after a clean stop, and while it reconnects with backoff); the
    adapter already logs the loss once and the reconnect, so these would only be noise.
    """
    python_level = paho.LOGGING_LEVEL.get(LogLevel(level), logging.DEBUG)
    if message.startswith(("Client is not connected", "failed to receive on socket")):
        python_level = logging.DEBUG  # MqttClient reports the loss (or failed attempt) itself
    if paho_log.isEnabledFor(python_level):
        paho_log.log(python_level, "%s", message)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """How to reach and authenticate to a broker."""

    host: str
    port: int = 1883
    version: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str = ""
    persistent_session: bool = False
    session_expiry: int = 3600
    keepalive: int = 30
    reconnect_min_delay: int = 1
    reconnect_max_delay: int = 60
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> BrokerSettings:
        """Build settings from mqtt://host:port or mqtts://host:port plus options."""
        scheme, _, rest = url.partition("://")
        if scheme not in {"mqtt", "mqtts"} or not rest:
            raise ValueError(f"broker URL {url!r}: expected mqtt://host:port or mqtts://host:port")
        host, _, port = rest.rstrip("/").partition(":")
        tls = bool(options.pop("tls", False)) or scheme == "mqtts"
        return cls(host=host, port=int(port or (8883 if tls else 1883)), tls=tls, **options)


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes when this client vanishes."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class Received(NamedTuple):
    """One message as it came off the wire, stamped on arrival."""

    topic: str | None
    payload: bytes
    qos: int
    retain: bool
    received: datetime


_new_received = tuple.__new__  # Received without its Python-level __new__ (hot path)


MessageHandler = Callable[[Received], object]
MessagesHandler = Callable[[list[Received]], object]
ConnectHandler = Callable[[bool], None]
ConnectFailedHandler = Callable[[str], None]


class MqttClient:
    """A paho client on its own thread that reconnects with backoff and re-subscribes.

    `on_message` gets each message paho itself decodes (QoS 2, and everything when
    `on_messages` is not given); `on_messages` gets the QoS 0/1 messages of one read in
    one list (see `_BufferedClient`). Both run on the network thread, in arrival order.

    A connection attempt that fails (refused, unreachable, TLS, closed before the
    broker's CONNACK) sets `last_error`, calls `on_connect_failed` with the reason, and is
    logged as a warning when its reason differs from the previous attempt's: a broker that
    stays away is logged once, not at every retry; the next success is logged once too.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        on_message: MessageHandler,
        *,
        on_messages: MessagesHandler | None = None,
        on_connect: ConnectHandler | None = None,
        on_disconnect: Callable[[str], None] | None = None,
        on_connect_failed: ConnectFailedHandler | None = None,
        will: Will | None = None,
    ) -> None:
        self.settings = settings
        self._on_message_cb = on_message
        self._on_messages_cb = on_messages
        self._on_connect_cb = on_connect
        self._on_disconnect_cb = on_disconnect
        self._on_connect_failed_cb = on_connect_failed
        self._where = f"{settings.host}:{settings.port}"
        self.failed_attempts = 0  # since the last accepted connection
        self._refused = False  # the last CONNACK refused us (paho disconnects after it)
        self._stopping = False
        self._subscriptions: dict[str, int] = {}
        self._pending_subacks: set[int] = set()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.connects = 0
        self.last_error: str | None = None
        self._paho = self._build(will)

    def _build(self, will: Will | None) -> _BufferedClient:
        s = self.settings
        v5 = s.version == "5"
        client = _BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=None if v5 else not s.persistent_session,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=True,
        )
        client.on_log = _log_paho
        client.reconnect_delay_set(s.reconnect_min_delay, s.reconnect_max_delay)
        client.max_queued_messages_set(0)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)
            client.tls_insecure_set(s.tls_insecure)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        client.on_connect_fail = self._handle_connect_fail
        client.on_publishes = self._on_messages_cb  # the bulk path, when given
        return client

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the connection."""
        return self._connected.is_set()

    def add_subscription(self, topic_filter: str, qos: int) -> None:
        """Subscribe now (if connected) and again after every reconnect."""
        with self._lock:
            self._subscriptions[topic_filter] = max(qos, self._subscriptions.get(topic_filter, 0))
        if self.connected:
            self._subscribe([(topic_filter, self._subscriptions[topic_filter])])

    def start(self) -> None:
        """Start connecting in the background; returns at once."""
        s = self.settings
        properties: Properties | None = None
        clean_start: bool | Literal[3] = paho.MQTT_CLEAN_START_FIRST_ONLY
        if s.version == "5":
            clean_start = not s.persistent_session
            if s.persistent_session:
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = s.session_expiry
        self._paho.connect_async(
            s.host, s.port, keepalive=s.keepalive, clean_start=clean_start, properties=properties
        )
        self._paho.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self._stopping = True
        self._paho.disconnect()
        self._paho.loop_stop()
        self._connected.clear()
        self._subscribed.clear()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected; False on timeout."""
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the broker acknowledged every subscription; False on timeout."""
        return self._subscribed.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> int:
        """Queue one message for sending (thread-safe); return its message id."""
        info = self._paho.publish(topic, payload, qos=qos, retain=retain)
        return info.mid

    def publish_and_wait(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout: float = 5.0
    ) -> bool:
        """Publish and wait until the broker has the message (QoS > 0); False on timeout."""
        info = self._paho.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def _subscribe(self, items: Sequence[tuple[str, int]]) -> None:
        if not items:
            self._subscribed.set()
            return
        if self.settings.version == "5":
            rc, mid = self._paho.subscribe([(t, SubscribeOptions(qos=q)) for t, q in items])
        else:
            rc, mid = self._paho.subscribe(list(items))
        if rc == paho.MQTT_ERR_SUCCESS and mid is not None:
            with self._lock:
                self._pending_subacks.add(mid)
        else:
            log.warning("subscribe to %s failed: %s", [t for t, _ in items], paho.error_string(rc))

    # paho callbacks: these run on the network thread.

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refused = True
            self._connect_failed(describe_refusal(str(reason_code)))
            return
        if self.failed_attempts:
            log.info("%s: connected after %d failed attempt(s)", self._where, self.failed_attempts)
        self.failed_attempts = 0
        self.connects += 1
        self.last_error = None
        self._connected.set()
        self._subscribed.clear()
        with self._lock:
            items = list(self._subscriptions.items())
            self._pending_subacks.clear()
        # Always subscribe again: a restarted broker without persistence has forgotten us
        # even when it reports a session (the failure mode of influxdata/telegraf#6232).
        self._subscribe(items)
        if self._on_connect_cb is not None:
            self._on_connect_cb(flags.session_present)

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        error = self._paho.socket_error
        reason = describe(error) if error is not None else str(reason_code)
        if was_connected:
            if self._on_disconnect_cb is not None:
                self._on_disconnect_cb(reason)
        elif self._refused:
            self._refused = False  # paho's disconnect after a refusal: already reported
        elif not self._stopping:
            self._connect_failed(f"the broker closed the connection before accepting it: {reason}")

    def _handle_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        error = self._paho.socket_error
        self._connect_failed(f"cannot connect: {describe(error) if error else 'unknown error'}")

    def _connect_failed(self, reason: str) -> None:
        self.failed_attempts += 1
        if reason != self.last_error:
            log.warning(
                "%s: %s; retrying every %d-%d s",
                self._where,
                reason,
                self.settings.reconnect_min_delay,
                self.settings.reconnect_max_delay,
            )
        self.last_error = reason
        if self._on_connect_failed_cb is not None:
            self._on_connect_failed_cb(reason)

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.warning("broker refused subscription(s): %s", ", ".join(refused))
        with self._lock:
            self._pending_subacks.discard(mid)
            done = not self._pending_subacks
        if done:
            self._subscribed.set()

    def _handle_message(
        self, client: paho.Client, userdata: Any, message: paho.MQTTMessage
    ) -> None:
        try:
            topic: str | None = message.topic
        except UnicodeDecodeError:
            topic = None
        received = _new_received(
            Received, (topic, bytes(message.payload), message.qos, bool(message.retain), utcnow())
        )
        try:
            self._on_message_cb(received)
        except Exception:
            # An exception here would end paho's network thread: log it and go on.
            log.exception("message handler failed on topic %r", topic)
