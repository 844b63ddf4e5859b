"""Reading a streaming input one item ahead of validation: same items, same order, and never a
read left running in a thread once the caller has moved on (it would read from a closed file).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from batchyard.pipeline.arrow_io import read_ahead

WITHIN = 10.0


class Source:
    """A blocking iterator that records each read and can hold one until released."""

    def __init__(self, count: int, *, hold_at: int | None = None, fail_at: int | None = None):
        self.count = count
        self.hold_at = hold_at
        self.fail_at = fail_at
        self.asked: list[int] = []
        self.release = threading.Event()
        self.held = threading.Event()
        self.finished: list[int] = []

    def __iter__(self) -> Iterator[int]:
        for item in range(self.count):
            self.asked.append(item)
            if item == self.hold_at:
                self.held.set()
                assert self.release.wait(WITHIN)
            if item == self.fail_at:
                raise ValueError(f"unreadable item {item}")
            self.finished.append(item)
            yield item


async def collect(source: Source) -> list[int]:
    async with contextlib.aclosing(read_ahead(iter(source))) as items:
        return [item async for item in items]


async def test_every_item_arrives_once_in_order() -> None:
    assert await collect(Source(50)) == list(range(50))
    assert await collect(Source(0)) == []


async def test_the_next_item_is_read_while_the_caller_works_on_this_one() -> None:
    source = Source(3)
    async with contextlib.aclosing(read_ahead(iter(source))) as items:
        first = await anext(items)
        # The caller has not asked for item 1, yet it is being read (or is read already).
        await asyncio.wait_for(asyncio.to_thread(_until, lambda: 1 in source.asked), WITHIN)
        assert first == 0
        assert [item async for item in items] == [1, 2]


async def test_leaving_early_waits_for_the_read_in_flight() -> None:
    source = Source(5, hold_at=1)

    async def validate_first_item_only() -> None:
        async with contextlib.aclosing(read_ahead(iter(source))) as items:
            async for _ in items:
                await asyncio.to_thread(source.held.wait, WITHIN)
                asyncio.get_running_loop().call_later(0.2, source.release.set)
                raise RuntimeError("validation stopped")

    with pytest.raises(RuntimeError, match="validation stopped"):
        await validate_first_item_only()
    # The held read ended before the block was left: the caller may close the input now.
    assert source.finished == [0, 1]
    assert source.asked == [0, 1]


async def test_an_error_while_reading_reaches_the_caller_after_the_items_before_it() -> None:
    source = Source(5, fail_at=2)
    seen: list[int] = []

    async def read_all() -> None:
        async with contextlib.aclosing(read_ahead(iter(source))) as items:
            async for item in items:
                seen.append(item)

    with pytest.raises(ValueError, match="unreadable item 2"):
        await read_all()
    assert seen == [0, 1]


@pytest.mark.parametrize("held", [0, 1], ids=["waiting for the item", "working on the one before"])
async def test_a_cancelled_caller_still_waits_for_the_read_in_flight(held: int) -> None:
    source = Source(5, hold_at=held)

    async def consume() -> None:
        async with contextlib.aclosing(read_ahead(iter(source))) as items:
            async for _ in items:
                await asyncio.sleep(WITHIN)

    task = asyncio.create_task(consume())
    await asyncio.to_thread(source.held.wait, WITHIN)
    task.cancel()
    await asyncio.sleep(0.1)
    assert not task.done()  # still waiting for the held read
    source.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.finished == list(range(held + 1))


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WITHIN
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)
