"""Group commit: concurrent submissions in one process applied together, one transaction each.

A submission waits in a queue; whenever fewer than ``lanes`` groups are being applied
(and, while one is, at least two submissions wait), the next submitter to look takes
every queued submission (up to ``max_items`` items in all, in arrival order) and
applies them as one group on its own connection, then looks again. A submission
returns once the group that held it has been applied, so a caller never waits for work
that arrived after its own. What a group costs once (statements, shared rollup rows,
the commit) is paid once for all of its submissions.

If applying a group fails, every submission in it gets the error (nothing of the group
was committed); the others are unaffected. A submission cancelled while queued is
withdrawn; once its group is being applied, it is applied with it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from psycopg import AsyncConnection

Item = TypeVar("Item")
Result = TypeVar("Result")

Apply = Callable[[AsyncConnection[Any], list[Sequence[Item]]], Awaitable[list[Result]]]


class GroupInterrupted(RuntimeError):
    """The group holding a submission was interrupted before it was committed."""


@dataclass(eq=False, slots=True)
class _Submission(Generic[Item, Result]):
    items: Sequence[Item]
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None
    taken: bool = field(default=False)


class GroupCommit(Generic[Item, Result]):
    """Applies concurrent submissions in groups; at most ``lanes`` groups at a time."""

    def __init__(
        self, apply: Apply[Item, Result], *, lanes: int = 2, max_items: int = 10_000
    ) -> None:
        if lanes < 1 or max_items < 1:
            raise ValueError("lanes and max_items must be at least 1")
        self._apply = apply
        self._lanes = lanes
        self._max_items = max_items
        self._queue: deque[_Submission[Item, Result]] = deque()
        self._busy = 0
        self._changed = asyncio.Event()
        self.groups = 0  # groups applied so far (for tests and metrics)

    async def submit(self, conn: AsyncConnection[Any], items: Sequence[Item]) -> Result:
        """Apply `items` with whatever else is queued; return what the group gave them."""
        mine: _Submission[Item, Result] = _Submission(items)
        self._queue.append(mine)
        try:
            while not mine.done:
                if self._may_lead():
                    await self._lead(conn)
                    continue
                changed = self._changed
                await changed.wait()
        except BaseException:
            if not mine.taken:
                self._queue.remove(mine)
            raise
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _may_lead(self) -> bool:
        """Report whether a lane is free for the queue's work.

        Any queued work when no group is being applied; at least two submissions while
        one is, so that groups grow under load instead of lanes splitting it into
        groups of one.
        """
        if self._busy >= self._lanes:
            return False
        return len(self._queue) > (1 if self._busy else 0)

    def _take(self) -> list[_Submission[Item, Result]]:
        group = [self._queue.popleft()]
        count = len(group[0].items)
        while self._queue and count + len(self._queue[0].items) <= self._max_items:
            count += len(self._queue[0].items)
            group.append(self._queue.popleft())
        for submission in group:
            submission.taken = True
        return group

    async def _lead(self, conn: AsyncConnection[Any]) -> None:
        self._busy += 1
        group = self._take()
        try:
            results = await self._apply(conn, [s.items for s in group])
        except asyncio.CancelledError:
            self._finish(group, error=GroupInterrupted("the batch was interrupted; send it again"))
            raise
        except Exception as exc:
            self._finish(group, error=exc)
        else:
            self.groups += 1
            for submission, result in zip(group, results, strict=True):
                submission.result = result
            self._finish(group)
        finally:
            self._busy -= 1
            self._wake()

    def _finish(
        self, group: list[_Submission[Item, Result]], error: BaseException | None = None
    ) -> None:
        for submission in group:
            submission.error = error
            submission.done = True

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
