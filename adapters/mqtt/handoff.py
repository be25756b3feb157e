"""A bounded, counted handoff of messages from paho's network thread to an asyncio loop."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Carries items from one foreign thread into an asyncio loop, at most `capacity` at once.

    `offer` runs on the producer thread. When `capacity` items are still unprocessed,
    `on_full="block"` makes the producer wait (which stops paho reading the socket and
    so pushes back to the broker over TCP) up to `block_timeout` seconds, then drops;
    `on_full="drop_newest"` drops at once. Every drop is counted in `dropped`.
    The consumer calls `get` (one item) or `get_all` (every waiting item) and then
    `done` once it has finished with them.

    Cheap per item: a C lock and a deque append. The loop is woken (one
    `call_soon_threadsafe`) only when the consumer is actually waiting, so a busy
    consumer takes items in bulk without a wake-up per message.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        capacity: int,
        on_full: Literal["block", "drop_newest"] = "block",
        block_timeout: float = 10.0,
    ) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._items: deque[T] = deque()
        self._in_flight = 0  # handed over and not yet done
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._on_full = on_full
        self._block_timeout = block_timeout
        self._dropped = 0
        self.capacity = capacity

    @property
    def dropped(self) -> int:
        """Items refused because the handoff was full (or the loop had closed)."""
        with self._lock:
            return self._dropped

    def offer(self, item: T) -> bool:
        """Hand one item over from the producer thread; False when it was dropped."""
        with self._lock:
            if self._in_flight >= self.capacity and (
                self._on_full == "drop_newest"
                or not self._room.wait_for(
                    lambda: self._in_flight < self.capacity, self._block_timeout
                )
            ):
                self._dropped += 1
                return False
            self._in_flight += 1
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            try:
                self._loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop is closed: nobody will take it
                with self._lock:
                    self._items.remove(item)
                    self._in_flight -= 1
                    self._dropped += 1
                return False
        return True

    def offer_many(self, items: list[T]) -> int:
        """Hand items over in order from the producer thread; return how many were dropped.

        The same rules as `offer`, item by item: while the handoff is full the producer
        waits (or drops, per `on_full`) for the rest; every drop is counted.
        """
        taken = 0
        count = len(items)
        dropped = 0
        with self._lock:
            while taken < count:
                room = self.capacity - self._in_flight
                if room <= 0:
                    if self._on_full == "drop_newest" or not self._room.wait_for(
                        lambda: self._in_flight < self.capacity, self._block_timeout
                    ):
                        dropped = count - taken  # the rest, like `offer` one by one
                        self._dropped += dropped
                        break
                    room = self.capacity - self._in_flight
                part = items[taken : taken + room] if taken or room < count else items
                self._items.extend(part)
                self._in_flight += len(part)
                taken += len(part)
                waiter, self._waiter = self._waiter, None
                if waiter is not None and not self._wake_locked(waiter, part):
                    rest = count - taken  # the loop is closed: nobody will take any of them
                    self._dropped += rest
                    return rest + len(part)
        return dropped

    def _wake_locked(self, waiter: asyncio.Future[None], part: list[T]) -> bool:
        """Wake the consumer (the lock is held); on a closed loop take `part` back."""
        try:
            self._loop.call_soon_threadsafe(_wake, waiter)
        except RuntimeError:  # the loop is closed
            for _ in part:
                self._items.pop()
            self._in_flight -= len(part)
            self._dropped += len(part)
            return False
        return True

    async def _wait(self) -> bool:
        """Wait until items or the end arrive; False once closed and drained."""
        while True:
            with self._lock:
                if self._items:
                    return True
                if self._closed:
                    return False
                waiter = self._waiter = self._loop.create_future()
            await waiter

    async def get(self) -> T | None:
        """Wait for the next item (on the loop); None once `close` was called and all taken."""
        if not await self._wait():
            return None
        with self._lock:
            return self._items.popleft()

    async def get_all(self) -> list[T]:
        """Wait for items and take every waiting one; [] once closed and all taken."""
        if not await self._wait():
            return []
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def close(self) -> None:
        """Mark the end: items already handed over come first, then `get` returns None.

        Call on the loop after the producer thread has stopped.
        """
        with self._lock:
            self._closed = True
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _wake(waiter)

    def done(self, count: int = 1) -> None:
        """Release the slots of `count` items the consumer has finished with."""
        with self._lock:
            self._in_flight -= count
            self._room.notify(count)

    def pending(self) -> int:
        """Items handed over but not yet taken by the consumer."""
        with self._lock:
            return len(self._items)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
