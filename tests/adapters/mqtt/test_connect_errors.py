"""Connection failures described with what to check."""

import socket
import ssl

import pytest

from adapters.mqtt.connect_errors import describe, describe_refusal


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            "connection refused (is the broker running and listening on this port?)",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "cannot resolve the broker's host name (Name or service not known)",
        ),
        (TimeoutError("timed out"), "timed out"),
        (OSError(113, "No route to host"), "No route to host"),
        (
            ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)"),
            "TLS: tlsv1 alert unknown ca",
        ),
    ],
)
def test_describe(error: BaseException, expected: str) -> None:
    assert describe(error) == expected


def test_a_known_tls_reason_gets_its_hint() -> None:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)")
    error.reason = "WRONG_VERSION_NUMBER"  # set by the ssl module on real errors
    assert describe(error) == (
        "TLS: wrong version number (the broker does not speak TLS on this port: use mqtt:// "
        "or the broker's TLS port)"
    )


def test_refusals_say_what_to_check_where_known() -> None:
    assert describe_refusal("Bad user name or password") == (
        "broker refused the connection: Bad user name or password (check username and password)"
    )
    assert describe_refusal("Server unavailable") == (
        "broker refused the connection: Server unavailable"
    )
