"""The counters' writes: coalesced, never lost, exact at the end, failures not swallowed."""

from __future__ import annotations

import asyncio

import pytest

from batchyard.pipeline.coalesce import Coalesced


class Counter:
    """A state that only grows, and the values a store was sent, in order."""

    def __init__(self, delay: float = 0.0) -> None:
        self.value = 0
        self.written: list[int] = []
        self.delay = delay

    async def write(self) -> None:
        seen = self.value
        await asyncio.sleep(self.delay)
        self.written.append(seen)


async def test_many_marks_make_few_writes_and_flush_writes_the_final_state():
    counter = Counter()
    progress = Coalesced(counter.write, interval=0.05)
    for _ in range(100):
        counter.value += 1
        progress.mark()
        await asyncio.sleep(0.002)
    await progress.flush()
    assert counter.written[-1] == 100  # exact at the end
    assert len(counter.written) < 20  # ~0.2 s of marks, at most one write per 0.05 s
    assert counter.written == sorted(counter.written)  # never backwards


async def test_a_mark_made_while_a_write_is_under_way_is_written_after_it():
    counter = Counter(delay=0.05)
    progress = Coalesced(counter.write, interval=0.0)
    counter.value = 1
    progress.mark()
    await asyncio.sleep(0.01)  # the write of 1 is under way
    counter.value = 2
    progress.mark()
    await progress.flush()
    assert counter.written == [1, 2]


async def test_flush_does_not_wait_out_the_interval():
    counter = Counter()
    progress = Coalesced(counter.write, interval=30.0)
    progress.mark()
    await asyncio.sleep(0.01)
    counter.value = 5
    progress.mark()  # due only 30 s after the first write
    await asyncio.wait_for(progress.flush(), 2.0)
    assert counter.written == [0, 5]


async def test_a_failed_write_is_raised_by_the_next_mark_and_by_flush():
    async def down() -> None:
        raise ConnectionError("metadata store down")

    progress = Coalesced(down, interval=0.0)
    progress.mark()
    with pytest.raises(ConnectionError):
        await progress.flush()
    with pytest.raises(ConnectionError):
        progress.mark()


async def test_nothing_marked_nothing_written():
    counter = Counter()
    await Coalesced(counter.write).flush()
    assert counter.written == []
