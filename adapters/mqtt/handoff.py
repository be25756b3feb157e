"""A bounded, counted handoff of messages from paho's network thread to an asyncio loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, Literal, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Carries items from one foreign thread into an asyncio loop, at most `capacity` at once.

    `offer` runs on the producer thread. When `capacity` items are still unprocessed,
    `on_full="block"` makes the producer wait (which stops paho reading the socket and
    so pushes back to the broker over TCP) up to `block_timeout` seconds, then drops;
    `on_full="drop_newest"` drops at once. Every drop is counted in `dropped`.
    The consumer calls `get` and then `done` once it has finished with an item.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        capacity: int,
        on_full: Literal["block", "drop_newest"] = "block",
        block_timeout: float = 10.0,
    ) -> None:
        self._loop = loop
        self._slots = threading.BoundedSemaphore(capacity)
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self._on_full = on_full
        self._block_timeout = block_timeout
        self._count_lock = threading.Lock()
        self._dropped = 0
        self.capacity = capacity

    @property
    def dropped(self) -> int:
        """Items refused because the handoff was full (or the loop had closed)."""
        with self._count_lock:
            return self._dropped

    def offer(self, item: T) -> bool:
        """Hand one item over from the producer thread; False when it was dropped."""
        if self._on_full == "block":
            acquired = self._slots.acquire(timeout=self._block_timeout)
        else:
            acquired = self._slots.acquire(blocking=False)
        if not acquired:
            self._count_drop()
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody will take it
            self._slots.release()
            self._count_drop()
            return False
        return True

    async def get(self) -> T | None:
        """Wait for the next item (on the loop); None once `close` was called."""
        return await self._queue.get()

    def close(self) -> None:
        """Mark the end: items already handed over come first, then `get` returns None.

        Call on the loop after the producer thread has stopped; `call_soon` keeps the
        order of the producer's earlier `call_soon_threadsafe` deliveries.
        """
        self._loop.call_soon(self._queue.put_nowait, None)

    def done(self) -> None:
        """Release the slot of one item the consumer has finished with."""
        self._slots.release()

    def pending(self) -> int:
        """Items handed over but not yet taken by the consumer."""
        return self._queue.qsize()

    def _count_drop(self) -> None:
        with self._count_lock:
            self._dropped += 1
