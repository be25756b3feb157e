"""Why a broker connection failed, in words an operator can act on."""

from __future__ import annotations

import re
import socket
import ssl

_NOT_TLS = "the broker does not speak TLS on this port: use mqtt:// or the broker's TLS port"
# OpenSSL reasons (ssl.SSLError.reason) that have a likely cause on our side.
_TLS_HINTS = {
    "CERTIFICATE_VERIFY_FAILED": "check tls.ca_file, and that the URL's host is in the "
    "broker's certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate: set "
    "tls.cert_file and tls.key_file",
    "TLSV1_ALERT_UNKNOWN_CA": "the broker does not trust the issuer of tls.cert_file",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the broker refused the client certificate (tls.cert_file)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the client certificate (tls.cert_file) has expired",
    "WRONG_VERSION_NUMBER": _NOT_TLS,
    "RECORD_LAYER_FAILURE": _NOT_TLS,
}
_REFUSAL_HINTS = {
    "Not authorized": "check username and password, and the broker's access rules",
    "Bad user name or password": "check username and password",
    "Client identifier not valid": "check client_id (another client may use it)",
}
_SSL_DECORATION = re.compile(r"^\[[A-Z0-9_]+(: [A-Z0-9_]+)?\]\s*|\s*\(_ssl\.c:\d+\)$")


def error_text(err: BaseException) -> str:
    """Return an error's message without OpenSSL's "[SSL: X]" and "(_ssl.c:N)" decoration."""
    text = str(err.strerror) if isinstance(err, OSError) and err.strerror else str(err)
    return _SSL_DECORATION.sub("", text)


def describe(err: BaseException) -> str:
    """Return what went wrong with a connection attempt and, where known, what to check."""
    if isinstance(err, ssl.SSLCertVerificationError):
        text = f"TLS: the broker's certificate was refused: {err.verify_message}"
        return f"{text} ({_TLS_HINTS['CERTIFICATE_VERIFY_FAILED']})"
    if isinstance(err, ssl.SSLError):
        hint = _TLS_HINTS.get(str(getattr(err, "reason", None)))
        return f"TLS: {error_text(err)}" + (f" ({hint})" if hint else "")
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the broker running and listening on this port?)"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the broker's host name ({err.strerror})"
    if isinstance(err, TimeoutError):
        return "timed out"
    return error_text(err)


def describe_refusal(reason: str) -> str:
    """Return a CONNACK refusal with what to check, where known."""
    hint = _REFUSAL_HINTS.get(reason)
    return f"broker refused the connection: {reason}" + (f" ({hint})" if hint else "")
