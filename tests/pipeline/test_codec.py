import enum
import random
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.base import DeviceEvent, DeviceEventKind, DeviceInfo, PointInfo, Quality, Sample
from collector.batch import Batch
from collector.pipeline.codec import (
    FORMAT_VERSION,
    HEADER,
    SpoolFormatError,
    UnencodableRecord,
    decode_batch,
    encode_batch,
    read_header,
)

T0 = datetime(2024, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)


class Mode(enum.IntEnum):
    AUTO = 3


def full_info() -> DeviceInfo:
    return DeviceInfo(
        key="plant1/press-7",
        protocol="opcua",
        endpoint="opc.tcp://127.0.0.1:4840",
        device_type="hydraulic press",
        industry="C3424",
        region="360100",
        park="高新区",
        enterprise="ent-1",
        name="压机 7",
        simulated=True,
        identity={"application_uri": "urn:sim:press", "serial": "SN-1"},
        points=(
            PointInfo("pressure", "ns=2;s=P", "float", unit="bar", description="主缸压力"),
            PointInfo("run", "ns=2;s=R", "bool", writable=True),
        ),
    )


def every_record() -> tuple[Sample | DeviceEvent, ...]:
    shanghai = timezone(timedelta(hours=8))
    return (
        DeviceEvent(DeviceEventKind.REGISTERED, "plant1/press-7", T0, info=full_info()),
        Sample("plant1/press-7", "pressure", T0, 12.5),
        Sample("plant1/press-7", "pressure", T0, float("inf"), Quality.UNCERTAIN),
        Sample("plant1/press-7", "run", T0, True),
        Sample("plant1/press-7", "run", T0, False, Quality.BAD, live=False),
        Sample("m/1", "count", T0.astimezone(shanghai), -42),
        Sample("m/1", "count", T0, 1 << 70),
        Sample("m/1", "count", T0, -(1 << 63)),
        Sample("m/1", "label", T0, "运行中 ✓"),
        Sample("m/1", "label", T0, ""),
        Sample("m/1", "missing", T0, None, Quality.BAD),
        DeviceEvent(DeviceEventKind.ONLINE, "m/1", T0),
        DeviceEvent(DeviceEventKind.OFFLINE, "m/1", T0 + timedelta(seconds=1), detail="timeout"),
        DeviceEvent(DeviceEventKind.VANISHED, "m/1", T0, info=DeviceInfo("m/1", "modbus", "x")),
        Sample("m/1", "count", T0 + timedelta(microseconds=1), 7),
    )


def test_round_trip_keeps_every_record_type_and_order() -> None:
    batch = Batch(every_record())
    back = decode_batch(encode_batch(batch))
    assert back == batch
    assert back.id == batch.id and back.created_at == batch.created_at
    assert [type(r) for r in back.records] == [type(r) for r in batch.records]
    values = [r.value for r in back.samples]
    assert [type(v) for v in values] == [type(s.value) for s in batch.samples]
    assert all(r.ts.tzinfo is not None for r in back.records)
    assert back.events[0].info == full_info()


def test_round_trip_of_events_only_and_empty_batch() -> None:
    events = Batch(tuple(r for r in every_record() if isinstance(r, DeviceEvent)))
    assert decode_batch(encode_batch(events)) == events
    empty = Batch(())
    assert decode_batch(encode_batch(empty)) == empty


def test_timestamps_keep_every_microsecond() -> None:
    rng = random.Random(7)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    stamps = [
        epoch + timedelta(microseconds=rng.randrange(0, 4_102_444_800 * 10**6)) for _ in range(2000)
    ]
    batch = Batch(tuple(Sample("d", "p", ts, i) for i, ts in enumerate(stamps)))
    assert [s.ts for s in decode_batch(encode_batch(batch)).samples] == stamps


def test_subclass_values_are_normalised() -> None:
    batch = Batch((Sample("d", "mode", T0, Mode.AUTO),))
    (sample,) = decode_batch(encode_batch(batch)).samples
    assert sample.value == 3 and type(sample.value) is int


def test_header_states_version_and_counts() -> None:
    data = encode_batch(Batch(every_record()))
    header = read_header(data)
    assert header.version == FORMAT_VERSION
    assert (header.samples, header.events) == (11, 4)
    assert header.total_length == len(data)


def test_flipped_byte_is_detected() -> None:
    data = bytearray(encode_batch(Batch(every_record())))
    data[HEADER.size + 40] ^= 0xFF
    with pytest.raises(SpoolFormatError, match="CRC"):
        decode_batch(bytes(data))


def test_torn_file_is_detected() -> None:
    data = encode_batch(Batch(every_record()))
    with pytest.raises(SpoolFormatError, match="header announces"):
        decode_batch(data[:-10])
    with pytest.raises(SpoolFormatError, match="shorter than"):
        decode_batch(data[:10])


def test_other_magic_and_version_are_refused() -> None:
    data = encode_batch(Batch(every_record()))
    with pytest.raises(SpoolFormatError, match="magic"):
        decode_batch(b"XXXX" + data[4:])
    newer = data[:4] + struct.pack("<H", FORMAT_VERSION + 1) + data[6:]
    with pytest.raises(SpoolFormatError, match="version"):
        decode_batch(newer)


def test_naive_timestamp_cannot_be_encoded() -> None:
    batch = Batch((Sample("dev-9", "temp", datetime(2024, 1, 1), 1.0),))
    with pytest.raises(UnencodableRecord, match=r"dev-9.*temp.*naive"):
        encode_batch(batch)


def test_unsupported_value_type_names_device_and_point() -> None:
    batch = Batch((Sample("dev-9", "temp", T0, [1, 2]),))  # type: ignore[arg-type]
    with pytest.raises(UnencodableRecord, match=r"dev-9.*temp.*list"):
        encode_batch(batch)


def test_batch_id_survives() -> None:
    batch_id = uuid.uuid4()
    assert decode_batch(encode_batch(Batch((), id=batch_id))).id == batch_id
