"""Group commit: who is applied together, what each submission gets back, failures, lanes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from collector.store.group_commit import GroupCommit, GroupInterrupted

CONN: Any = object()  # the fake apply below never touches a connection


class Recorder:
    """An apply function that records its groups and can be held open or made to fail."""

    def __init__(self) -> None:
        self.groups: list[list[list[int]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.most_running = 0
        self.fail_on: int | None = None

    async def __call__(self, conn: Any, parts: list[Sequence[int]]) -> list[int]:
        self.groups.append([list(p) for p in parts])
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
            if self.fail_on is not None and any(self.fail_on in p for p in parts):
                raise RuntimeError(f"cannot apply {self.fail_on}")
            return [sum(p) for p in parts]
        finally:
            self.running -= 1


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_submissions_queued_behind_a_group_are_applied_together() -> None:
    apply = Recorder()
    apply.gate.clear()
    groups: GroupCommit[int, int] = GroupCommit(apply, lanes=1)
    first = asyncio.create_task(groups.submit(CONN, [1]))
    await _settle()
    rest = [asyncio.create_task(groups.submit(CONN, [n, n])) for n in (2, 3, 4)]
    await _settle()
    apply.gate.set()
    assert await first == 1
    assert [await t for t in rest] == [4, 6, 8]
    assert apply.groups == [[[1]], [[2, 2], [3, 3], [4, 4]]]
    assert groups.groups == 2


async def test_a_failed_group_fails_its_submissions_only() -> None:
    apply = Recorder()
    apply.gate.clear()
    apply.fail_on = 7
    groups: GroupCommit[int, int] = GroupCommit(apply, lanes=1)
    first = asyncio.create_task(groups.submit(CONN, [1]))
    await _settle()
    doomed = [asyncio.create_task(groups.submit(CONN, [n])) for n in (7, 8)]
    await _settle()
    apply.gate.set()
    assert await first == 1
    for task in doomed:
        with pytest.raises(RuntimeError, match="cannot apply 7"):
            await task
    assert await groups.submit(CONN, [9]) == 9
    assert groups.groups == 2


async def test_a_submission_cancelled_while_queued_is_never_applied() -> None:
    apply = Recorder()
    apply.gate.clear()
    groups: GroupCommit[int, int] = GroupCommit(apply, lanes=1)
    first = asyncio.create_task(groups.submit(CONN, [1]))
    await _settle()
    withdrawn = asyncio.create_task(groups.submit(CONN, [5]))
    kept = asyncio.create_task(groups.submit(CONN, [6]))
    await _settle()
    withdrawn.cancel()
    await _settle()
    apply.gate.set()
    assert (await first, await kept) == (1, 6)
    assert withdrawn.cancelled()
    assert apply.groups == [[[1]], [[6]]]


async def test_a_leader_cancelled_mid_group_tells_the_others_to_send_again() -> None:
    apply = Recorder()
    apply.gate.clear()
    groups: GroupCommit[int, int] = GroupCommit(apply, lanes=1)
    leader = asyncio.create_task(groups.submit(CONN, [1]))
    await _settle()
    follower = asyncio.create_task(groups.submit(CONN, [2]))
    await _settle()
    assert apply.groups == [[[1]]]  # the follower waits for the lane
    leader.cancel()
    await _settle()
    with pytest.raises(asyncio.CancelledError):
        await leader
    # The follower's submission was queued, not taken: it leads its own group now.
    apply.gate.set()
    assert await follower == 2
    held = Recorder()
    held.gate.clear()
    groups = GroupCommit(held, lanes=1)
    blocker = asyncio.create_task(groups.submit(CONN, [1]))
    await _settle()
    second = asyncio.create_task(groups.submit(CONN, [2]))
    third = asyncio.create_task(groups.submit(CONN, [3]))
    await _settle()
    blocker.cancel()  # its group [1] is interrupted; [2] and [3] were never taken
    await _settle()
    assert held.groups[-1] == [[2], [3]]
    second.cancel()  # now the leader of [2] and [3] is cancelled mid-group
    with pytest.raises(GroupInterrupted, match="send it again"):
        await third


async def test_groups_hold_at_most_max_items_and_lanes_bound_the_concurrency() -> None:
    apply = Recorder()
    apply.gate.clear()
    groups: GroupCommit[int, int] = GroupCommit(apply, lanes=2, max_items=4)
    tasks = [asyncio.create_task(groups.submit(CONN, [n] * 3)) for n in range(6)]
    await _settle()
    assert apply.most_running == 2
    apply.gate.set()
    assert [await t for t in tasks] == [3 * n for n in range(6)]
    assert all(sum(len(p) for p in g) <= 4 for g in apply.groups)
    assert apply.most_running == 2
    assert sorted(p[0][0] for p in apply.groups) == list(range(6))


def test_lanes_and_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Recorder(), lanes=0)


async def test_a_second_lane_opens_only_for_two_waiting_submissions() -> None:
    apply = Recorder()
    apply.gate.clear()
    groups: GroupCommit[int, int] = GroupCommit(apply, lanes=2)
    first = asyncio.create_task(groups.submit(CONN, [1]))
    await _settle()
    lone = asyncio.create_task(groups.submit(CONN, [2]))
    await _settle()
    assert apply.running == 1  # one waiting submission does not open the second lane
    pair = asyncio.create_task(groups.submit(CONN, [3]))
    await _settle()
    assert apply.running == 2  # two do: they are applied together
    apply.gate.set()
    assert (await first, await lone, await pair) == (1, 2, 3)
    assert apply.groups == [[[1]], [[2], [3]]]
