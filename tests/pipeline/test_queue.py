import asyncio
import time
from datetime import datetime

import pytest

from adapters.base import DeviceEvent, DeviceEventKind, DeviceInfo, Sample, utcnow
from collector.metrics import REGISTRY
from collector.pipeline.queue import PipelineClosed, RecordQueue


def sample(i: int, device: str = "dev-1") -> Sample:
    return Sample(device, "p", utcnow(), i)


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("tally_samples_dropped_total", {"reason": reason}) or 0.0


def received(protocol: str) -> float:
    return REGISTRY.get_sample_value("tally_samples_received_total", {"protocol": protocol}) or 0.0


async def test_take_returns_records_in_order() -> None:
    queue = RecordQueue(10)
    for i in range(5):
        await queue.put(sample(i))
    taken = await queue.take(3, 10.0)
    assert [r.value for r in taken if isinstance(r, Sample)] == [0, 1, 2]
    assert len(queue) == 2


async def test_take_returns_on_size_before_age() -> None:
    queue = RecordQueue(100)
    taker = asyncio.create_task(queue.take(5, 30.0))
    for i in range(5):
        await queue.put(sample(i))
    taken = await asyncio.wait_for(taker, 2.0)
    assert len(taken) == 5


async def test_take_returns_partial_batch_on_age() -> None:
    queue = RecordQueue(100)
    await queue.put(sample(1))
    started = time.monotonic()
    taken = await asyncio.wait_for(queue.take(50, 0.2), 2.0)
    assert len(taken) == 1
    assert time.monotonic() - started >= 0.15


async def test_full_queue_flushes_without_waiting_for_age() -> None:
    queue = RecordQueue(4)
    for i in range(4):
        await queue.put(sample(i))
    taken = await asyncio.wait_for(queue.take(1000, 30.0), 2.0)
    assert len(taken) == 4


async def test_put_waits_while_full_and_never_exceeds_maxsize() -> None:
    queue = RecordQueue(3)
    for i in range(3):
        await queue.put(sample(i))
    blocked = asyncio.create_task(queue.put(sample(3)))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    assert len(queue) == 3
    await queue.take(1, 1.0)
    await asyncio.wait_for(blocked, 2.0)
    assert len(queue) == 3


async def test_cancelled_putter_does_not_lose_a_wakeup() -> None:
    queue = RecordQueue(1)
    await queue.put(sample(0))
    first = asyncio.create_task(queue.put(sample(1)))
    second = asyncio.create_task(queue.put(sample(2)))
    await asyncio.sleep(0.01)
    first.cancel()
    await queue.take(1, 1.0)
    await asyncio.wait_for(second, 2.0)
    assert [r.value for r in await queue.take(5, 0.01) if isinstance(r, Sample)] == [2]


async def test_put_nowait_on_full_queue_is_counted_as_dropped() -> None:
    queue = RecordQueue(1)
    before = dropped("queue_full")
    assert queue.put_nowait(sample(0))
    assert not queue.put_nowait(sample(1))
    assert dropped("queue_full") == before + 1
    assert len(queue) == 1


async def test_close_wakes_putters_which_raise_and_are_counted() -> None:
    queue = RecordQueue(1)
    await queue.put(sample(0))
    before = dropped("closed")
    blocked = asyncio.create_task(queue.put(sample(1)))
    await asyncio.sleep(0.01)
    queue.close()
    with pytest.raises(PipelineClosed, match="dev-1"):
        await asyncio.wait_for(blocked, 2.0)
    with pytest.raises(PipelineClosed):
        queue.put_nowait(sample(2))
    assert dropped("closed") == before + 2
    assert len(await queue.take(10, 10.0)) == 1
    assert await queue.take(10, 10.0) == []


async def test_naive_timestamp_is_refused_at_the_door() -> None:
    queue = RecordQueue(10)
    with pytest.raises(ValueError, match="press-3"):
        await queue.put(Sample("press-3", "p", datetime(2024, 1, 1), 1.0))
    assert len(queue) == 0


async def test_received_samples_are_counted_by_protocol() -> None:
    queue = RecordQueue(10)
    info = DeviceInfo("mb/7", "modbus", "127.0.0.1:502")
    before_modbus, before_unknown = received("modbus"), received("unknown")
    await queue.put(sample(0, device="mb/7"))
    await queue.put(DeviceEvent(DeviceEventKind.REGISTERED, "mb/7", utcnow(), info=info))
    await queue.put(sample(1, device="mb/7"))
    await queue.put(sample(2, device="mb/7"))
    assert received("modbus") == before_modbus + 2
    assert received("unknown") == before_unknown + 1


async def test_unsupported_value_type_is_refused_at_the_door() -> None:
    queue = RecordQueue(10)
    with pytest.raises(TypeError, match=r"press-3.*'p'.*list"):
        await queue.put(Sample("press-3", "p", utcnow(), [1]))  # type: ignore[arg-type]
    assert len(queue) == 0


async def test_put_many_takes_what_fits_and_waits_for_room_for_the_rest() -> None:
    queue = RecordQueue(4)
    await queue.put(sample(0))
    bulk = asyncio.create_task(queue.put_many([sample(i) for i in range(1, 8)]))
    await asyncio.sleep(0.05)
    assert not bulk.done()
    assert len(queue) == 4  # never more than maxsize, even in bulk
    got: list[Sample] = []
    while len(got) < 8:
        got += [r for r in await queue.take(2, 0.01) if isinstance(r, Sample)]
        assert len(queue) <= 4
    await asyncio.wait_for(bulk, 2.0)
    assert [s.value for s in got] == list(range(8))


async def test_put_many_counts_received_samples_by_protocol_across_a_registration() -> None:
    queue = RecordQueue(100)
    info = DeviceInfo("mq/1", "mqtt", "mqtt://127.0.0.1:1883")
    before_mqtt, before_unknown = received("mqtt"), received("unknown")
    await queue.put_many(
        [
            sample(0, device="mq/1"),
            DeviceEvent(DeviceEventKind.REGISTERED, "mq/1", utcnow(), info=info),
            sample(1, device="mq/1"),
            sample(2, device="other"),
            sample(3, device="mq/1"),
        ]
    )
    assert received("mqtt") == before_mqtt + 2
    assert received("unknown") == before_unknown + 2
    assert len(queue) == 5


async def test_put_many_of_samples_only_counts_each_protocol_exactly() -> None:
    # Samples only: the bulk path counts per protocol of the devices, one or several.
    queue = RecordQueue(100)
    infos = [DeviceInfo("op/1", "opcua", "opc.tcp://127.0.0.1:1"), DeviceInfo("mb/2", "modbus", "")]
    await queue.put_many(
        [DeviceEvent(DeviceEventKind.REGISTERED, i.key, utcnow(), info=i) for i in infos]
    )
    before = {p: received(p) for p in ("opcua", "modbus", "unknown")}
    await queue.put_many([sample(i, device="op/1") for i in range(3)])
    assert received("opcua") == before["opcua"] + 3
    await queue.put_many(
        [sample(0, "op/1"), sample(1, "mb/2"), sample(2, "nobody"), sample(3, "op/1")]
    )
    assert received("opcua") == before["opcua"] + 5
    assert received("modbus") == before["modbus"] + 1
    assert received("unknown") == before["unknown"] + 1
    assert len(queue) == 9


async def test_put_many_accepts_every_valid_record_and_then_refuses_the_bad_ones() -> None:
    queue = RecordQueue(100)
    records = [
        sample(0),
        Sample("press-3", "p", datetime(2024, 1, 1), 1.0),
        sample(1),
        Sample("press-4", "q", utcnow(), [1]),  # type: ignore[arg-type]
        sample(2),
    ]
    with pytest.raises(ValueError, match=r"press-3.*naive.*\(and 1 more records refused\)"):
        await queue.put_many(records)
    assert [r.value for r in await queue.take(10, 0.01) if isinstance(r, Sample)] == [0, 1, 2]


async def test_put_many_after_close_counts_every_sample_it_could_not_take() -> None:
    queue = RecordQueue(2)
    before = dropped("closed")
    bulk = asyncio.create_task(queue.put_many([sample(i) for i in range(5)]))
    await asyncio.sleep(0.01)
    assert len(queue) == 2
    queue.close()
    with pytest.raises(PipelineClosed, match="3 records"):
        await asyncio.wait_for(bulk, 2.0)
    assert dropped("closed") == before + 3
    assert len(await queue.take(10, 10.0)) == 2
