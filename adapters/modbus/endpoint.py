"""Where a Modbus connection goes: parsed tcp://, rtu+tcp:// and rtu:// endpoint URLs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

DEFAULT_TCP_PORT = 502
_SERIAL_OPTIONS = {"baudrate", "parity", "stopbits", "bytesize"}


class Framing(enum.StrEnum):
    """How Modbus frames travel on the connection."""

    TCP = "tcp"
    RTU_OVER_TCP = "rtu+tcp"
    RTU = "rtu"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Modbus connection: a TCP socket (MBAP or RTU framing) or a serial line."""

    url: str
    framing: Framing
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    serial_port: str = ""
    baudrate: int = 19200
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def is_serial(self) -> bool:
        """True for RTU over a serial line (or a pyserial URL such as socket://)."""
        return self.framing is Framing.RTU

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Parse an endpoint URL; raise ValueError naming what is wrong."""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in {f.value for f in Framing}:
            raise ValueError(
                f"endpoint {url!r}: expected tcp://host:port, rtu+tcp://host:port or "
                "rtu:///dev/ttyX?baudrate=9600&parity=N&stopbits=1&bytesize=8"
            )
        framing = Framing(scheme)
        if framing is Framing.RTU:
            return cls._parse_serial(url, rest)
        parts = urlsplit(f"//{rest}")
        if parts.path not in {"", "/"} or parts.query:
            raise ValueError(f"endpoint {url!r}: a TCP endpoint has only host and port")
        try:
            port = parts.port or DEFAULT_TCP_PORT
        except ValueError:
            raise ValueError(f"endpoint {url!r}: port must be a number 1..65535") from None
        if not parts.hostname:
            raise ValueError(f"endpoint {url!r}: missing host")
        return cls(url=url, framing=framing, host=parts.hostname, port=port)

    @classmethod
    def _parse_serial(cls, url: str, rest: str) -> Endpoint:
        device, _, query = rest.partition("?")
        if not device:
            raise ValueError(f"endpoint {url!r}: missing serial device, e.g. rtu:///dev/ttyUSB0")
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(set(options) - _SERIAL_OPTIONS)
        if unknown:
            raise ValueError(
                f"endpoint {url!r}: unknown serial option(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(_SERIAL_OPTIONS))}"
            )
        try:
            baudrate = int(options.get("baudrate", "19200"))
            stopbits = int(options.get("stopbits", "1"))
            bytesize = int(options.get("bytesize", "8"))
        except ValueError:
            raise ValueError(
                f"endpoint {url!r}: baudrate, stopbits and bytesize must be integers"
            ) from None
        parity = options.get("parity", "N").upper()
        if parity not in {"N", "E", "O"}:
            raise ValueError(f"endpoint {url!r}: parity must be N, E or O (got {parity!r})")
        if stopbits not in {1, 2} or bytesize not in {7, 8}:
            raise ValueError(f"endpoint {url!r}: stopbits must be 1 or 2 and bytesize 7 or 8")
        return cls(
            url=url,
            framing=Framing.RTU,
            serial_port=device,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
        )

    def __str__(self) -> str:
        return self.url
