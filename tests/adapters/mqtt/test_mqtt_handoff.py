"""The bounded handoff from a foreign thread into the asyncio loop."""

from __future__ import annotations

import asyncio
import threading

from adapters.mqtt.handoff import Handoff


def produce(handoff: Handoff[int], items: range) -> list[bool]:
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.extend(handoff.offer(i) for i in items))
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    return results


async def test_drop_newest_counts_what_does_not_fit() -> None:
    handoff: Handoff[int] = Handoff(asyncio.get_running_loop(), capacity=3, on_full="drop_newest")
    results = await asyncio.to_thread(produce, handoff, range(5))
    assert results == [True, True, True, False, False]
    assert handoff.dropped == 2
    got = [await handoff.get() for _ in range(3)]
    assert got == [0, 1, 2]
    for _ in got:
        handoff.done()
    assert await asyncio.to_thread(produce, handoff, range(5, 6)) == [True]


async def test_block_waits_for_room_then_gives_up_after_its_timeout() -> None:
    handoff: Handoff[int] = Handoff(
        asyncio.get_running_loop(), capacity=1, on_full="block", block_timeout=0.2
    )
    # Nobody consumes: the second offer waits 0.2 s, then is dropped and counted.
    assert await asyncio.to_thread(produce, handoff, range(2)) == [True, False]
    assert handoff.dropped == 1

    async def consume_later() -> int | None:
        await asyncio.sleep(0.05)
        item = await handoff.get()
        handoff.done()
        return item

    consumer = asyncio.create_task(consume_later())
    # The blocked producer gets in as soon as the consumer frees the slot.
    assert await asyncio.to_thread(produce, handoff, range(2, 3)) == [True]
    assert await consumer == 0
    assert await handoff.get() == 2
    assert handoff.dropped == 1


async def test_close_comes_after_what_was_handed_over() -> None:
    handoff: Handoff[int] = Handoff(asyncio.get_running_loop(), capacity=10)
    await asyncio.to_thread(produce, handoff, range(3))
    handoff.close()
    got = []
    while (item := await handoff.get()) is not None:
        got.append(item)
        handoff.done()
    assert got == [0, 1, 2]


def produce_many(handoff: Handoff[int], items: list[int]) -> list[int]:
    dropped: list[int] = []
    thread = threading.Thread(target=lambda: dropped.append(handoff.offer_many(items)))
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    return dropped


async def test_offer_many_keeps_order_and_counts_what_does_not_fit() -> None:
    handoff: Handoff[int] = Handoff(asyncio.get_running_loop(), capacity=3, on_full="drop_newest")
    assert await asyncio.to_thread(produce_many, handoff, [0, 1]) == [0]
    assert await asyncio.to_thread(produce_many, handoff, [2, 3, 4]) == [2]
    assert handoff.dropped == 2
    assert await handoff.get_all() == [0, 1, 2]


async def test_offer_many_waits_for_room_for_the_rest_then_gives_up_after_its_timeout() -> None:
    handoff: Handoff[int] = Handoff(
        asyncio.get_running_loop(), capacity=2, on_full="block", block_timeout=2.0
    )

    async def consume() -> list[int]:
        got: list[int] = []
        while len(got) < 5:
            items = await handoff.get_all()
            await asyncio.sleep(0.02)
            got += items
            handoff.done(len(items))
        return got

    consumer = asyncio.create_task(consume())
    # Five items through a handoff of two: the producer waits for room, none is dropped.
    assert await asyncio.to_thread(produce_many, handoff, list(range(5))) == [0]
    assert await asyncio.wait_for(consumer, 5) == [0, 1, 2, 3, 4]
    assert handoff.dropped == 0
    # Nobody consumes now: what does not fit within block_timeout is dropped and counted.
    handoff = Handoff(asyncio.get_running_loop(), capacity=2, on_full="block", block_timeout=0.2)
    assert await asyncio.to_thread(produce_many, handoff, list(range(5))) == [3]
    assert handoff.dropped == 3
    assert await handoff.get_all() == [0, 1]
