"""The embedded runner's slots: users take turns, one user never holds more than their share."""

from __future__ import annotations

import asyncio

import pytest

from batchyard.runner.fairness import FairSlots


async def _hold(slots: FairSlots, user: str, started: list[str], release: asyncio.Event) -> None:
    async with slots.slot(user):
        started.append(user)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_users_backlog_leaves_a_slot_to_another_user() -> None:
    slots = FairSlots(total=2, per_user=1)
    started: list[str] = []
    release = {name: asyncio.Event() for name in ("a1", "a2", "a3", "b1")}
    tasks = [
        asyncio.create_task(_hold(slots, name[0], started, release[name]))
        for name in ("a1", "a2", "a3", "b1")
    ]
    await _settle()
    assert started == ["a", "b"]  # b's one batch did not wait behind a's three
    assert slots.running_for("a") == 1
    release["a1"].set()
    await _settle()
    assert started == ["a", "b", "a"]
    for event in release.values():
        event.set()
    await asyncio.gather(*tasks)
    assert started == ["a", "b", "a", "a"]
    assert slots.running == 0


async def test_users_take_turns_for_free_slots() -> None:
    slots = FairSlots(total=1, per_user=1)
    started: list[str] = []
    gate = asyncio.Event()
    first = asyncio.create_task(_hold(slots, "x", started, gate))
    await _settle()
    waiting = [
        asyncio.create_task(_hold(slots, user, started, gate)) for user in ("a", "a", "a", "b")
    ]
    await _settle()
    gate.set()
    await asyncio.gather(first, *waiting)
    assert started == ["x", "a", "b", "a", "a"]


async def test_a_user_alone_may_use_every_slot_when_allowed() -> None:
    slots = FairSlots(total=3, per_user=3)
    started: list[str] = []
    gate = asyncio.Event()
    tasks = [asyncio.create_task(_hold(slots, "a", started, gate)) for _ in range(4)]
    await _settle()
    assert started == ["a"] * 3
    gate.set()
    await asyncio.gather(*tasks)


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    slots = FairSlots(total=1, per_user=1)
    started: list[str] = []
    gate = asyncio.Event()
    holder = asyncio.create_task(_hold(slots, "a", started, gate))
    await _settle()
    waiter = asyncio.create_task(_hold(slots, "b", started, gate))
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    await holder
    assert started == ["a"]
    assert slots.running == 0
    async with slots.slot("c"):
        assert slots.running_for("c") == 1
