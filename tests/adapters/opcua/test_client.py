"""The fast DataValue decoding of adapters/opcua/client.py against asyncua's own decoder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asyncua import ua
from asyncua.common.utils import Buffer, NotEnoughData
from asyncua.ua import ua_binary

from adapters.opcua import client

NOW = datetime(2026, 12, 4, 2, 30, 42, 943705, tzinfo=UTC)
LATER = datetime(2026, 12, 4, 2, 30, 42, 943718, tzinfo=UTC)

CASES = [
    ua.DataValue(ua.Variant(12.5, ua.VariantType.Double), ua.StatusCode(0), NOW, LATER),
    ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)),
    ua.DataValue(ua.Variant(-7, ua.VariantType.Int32), ua.StatusCode(0x80000000)),
    ua.DataValue(ua.Variant(-3, ua.VariantType.SByte), ua.StatusCode(0x40000000), None, NOW),
    ua.DataValue(ua.Variant(2**63, ua.VariantType.UInt64), ServerTimestamp=NOW),
    ua.DataValue(ua.Variant(3.25, ua.VariantType.Float), SourceTimestamp=NOW),
    # Decoded by asyncua's generic decoder (the fast path steps aside):
    ua.DataValue(ua.Variant("text", ua.VariantType.String), SourceTimestamp=NOW),
    ua.DataValue(ua.Variant([1.0, 2.0], ua.VariantType.Double)),
    ua.DataValue(ua.Variant(3.5, ua.VariantType.Float), SourceTimestamp=NOW, SourcePicoseconds=5),
    ua.DataValue(StatusCode=ua.StatusCode(0x80340000)),
    ua.DataValue(),
]


def test_asyncua_decodes_data_values_through_the_fast_path() -> None:
    assert ua_binary._create_dataclass_deserializer(ua.DataValue) is client._decode_data_value


@pytest.mark.parametrize("value", CASES, ids=range(len(CASES)))
def test_fast_decoding_gives_what_asyncua_gives_and_stops_at_the_end(value: ua.DataValue) -> None:
    blob = ua_binary.struct_to_binary(value)
    generic = client._GENERIC_FACTORY(ua.DataValue)(Buffer(blob))
    buffer = Buffer(blob + b"next")
    fast = ua_binary.struct_from_binary(ua.DataValue, buffer)
    assert fast == generic == value
    assert bytes(buffer) == b"next"  # exactly one DataValue was consumed


def test_a_publish_response_decodes_to_the_same_notifications() -> None:
    items = [ua.MonitoredItemNotification(i, value) for i, value in enumerate(CASES)]
    response = ua.PublishResponse()
    response.Parameters.NotificationMessage.NotificationData = [
        ua.DataChangeNotification(MonitoredItems=items)
    ]
    decoded = ua_binary.struct_from_binary(
        ua.PublishResponse, Buffer(ua_binary.struct_to_binary(response))
    )
    assert decoded.Parameters.NotificationMessage.NotificationData[0].MonitoredItems == items


def test_a_truncated_data_value_fails_as_asyncua_fails() -> None:
    blob = ua_binary.struct_to_binary(CASES[0])[:-3]
    with pytest.raises(NotEnoughData):
        ua_binary.struct_from_binary(ua.DataValue, Buffer(blob))
