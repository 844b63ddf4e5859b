"""The process's one source of batch changes, on an in-memory store: one read serves every
follower, in-process changes arrive at once and others within the poll, a slow follower holds
one state (not a backlog), and the watcher ends with its last follower."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from batchyard.domain.batches import Batch, BatchOptions, Counts, Operation
from batchyard.domain.statuses import BatchStatus
from batchyard.runner.events import GONE, BatchEvents, Follower


def _batch(processed: int = 0, status: BatchStatus = BatchStatus.PROCESSING) -> Batch:
    return Batch(
        id=str(uuid.UUID(int=1)),
        owner_id="u1",
        dataset="orders",
        operation=Operation.INSERT,
        status=status,
        format=None,
        sources=(),
        options=BatchOptions(),
        created_ts=1.0,
        updated_ts=1.0 + processed,
        counts=Counts(total=1000, processed=processed),
    )


class FakeStore:
    """Batches by id; counts the reads the watcher makes."""

    def __init__(self, *batches: Batch) -> None:
        self.batches = {batch.id: batch for batch in batches}
        self.reads: list[list[str]] = []
        self.failures = 0

    async def read(self, batch_ids: Sequence[str]) -> Mapping[str, Batch]:
        await asyncio.sleep(0)  # a real read yields to the loop
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unreachable")
        self.reads.append(list(batch_ids))
        return {i: self.batches[i] for i in batch_ids if i in self.batches}


def _events(store: FakeStore, poll: float = 30.0) -> BatchEvents:
    events = BatchEvents(poll_seconds=poll, min_gap_seconds=0.0)
    events.attach(store.read)
    return events


async def _next(follower: Follower, within: float = 2.0) -> Batch:
    assert await follower.changed(within), "no new state arrived"
    assert isinstance(follower.latest, Batch)
    return follower.latest


async def test_every_follower_of_a_batch_gets_its_state_from_one_read() -> None:
    store = FakeStore(_batch(processed=10))
    events = _events(store)
    with contextlib.ExitStack() as stack:
        followers = [stack.enter_context(events.follow(_batch().id)) for _ in range(200)]
        states = await asyncio.gather(*(_next(f) for f in followers))

    assert {s.counts.processed for s in states} == {10}
    assert len(store.reads) == 1
    await events.close()


async def test_a_change_made_in_this_process_reaches_every_follower_at_once() -> None:
    store = FakeStore(_batch(processed=10))
    events = _events(store, poll=30.0)  # the poll would take half a minute
    with contextlib.ExitStack() as stack:
        followers = [stack.enter_context(events.follow(_batch().id)) for _ in range(50)]
        await asyncio.gather(*(_next(f) for f in followers))
        store.batches[_batch().id] = _batch(processed=20)
        started = time.monotonic()
        events.notify(_batch().id)
        states = await asyncio.gather(*(_next(f) for f in followers))
        waited = time.monotonic() - started

    assert {s.counts.processed for s in states} == {20}
    assert waited < 1.0
    assert len(store.reads) == 2
    await events.close()


async def test_a_change_made_by_another_process_arrives_within_the_poll() -> None:
    store = FakeStore(_batch(processed=10))
    events = _events(store, poll=0.1)
    with events.follow(_batch().id) as follower:
        await _next(follower)
        store.batches[_batch().id] = _batch(processed=20)  # no notify: another process wrote it
        started = time.monotonic()
        state = await _next(follower)
        waited = time.monotonic() - started

    assert state.counts.processed == 20
    assert waited < 0.5
    await events.close()


async def test_unchanged_polls_offer_nothing_new() -> None:
    store = FakeStore(_batch(processed=10))
    events = _events(store, poll=0.05)
    with events.follow(_batch().id) as follower:
        await _next(follower)
        assert not await follower.changed(0.3)

    assert len(store.reads) >= 3  # it did poll, and found nothing new
    await events.close()


async def test_a_slow_follower_holds_only_the_newest_state_and_delays_no_one() -> None:
    store = FakeStore(_batch(processed=0))
    events = _events(store)
    with events.follow(_batch().id) as slow, events.follow(_batch().id) as quick:
        await _next(quick)
        for processed in range(1, 101):
            store.batches[_batch().id] = _batch(processed=processed)
            events.notify(_batch().id)
            assert (await _next(quick)).counts.processed == processed

        # the slow one never read meanwhile: one state is waiting for it, the newest
        assert (await _next(slow)).counts.processed == 100
        assert not await slow.changed(0.05)
    await events.close()


async def test_a_follower_joining_later_gets_the_known_state_without_a_read() -> None:
    store = FakeStore(_batch(processed=10))
    events = _events(store)
    with events.follow(_batch().id) as first:
        await _next(first)
        with events.follow(_batch().id) as second:
            assert (await _next(second, within=0.01)).counts.processed == 10

    assert len(store.reads) == 1
    await events.close()


async def test_a_deleted_batch_is_gone_for_its_followers() -> None:
    store = FakeStore(_batch())
    events = _events(store)
    with events.follow(_batch().id) as follower:
        await _next(follower)
        del store.batches[_batch().id]
        events.notify(_batch().id)
        assert await follower.changed(2.0)
        assert follower.latest is GONE
    await events.close()


async def test_the_watcher_stops_when_the_last_follower_leaves() -> None:
    store = FakeStore(_batch())
    events = _events(store, poll=0.02)
    with events.follow(_batch().id) as follower:
        await _next(follower)
    assert events.followed == 0
    await asyncio.sleep(0.1)  # the watcher sees nothing is followed and ends
    reads = len(store.reads)
    await asyncio.sleep(0.2)

    assert len(store.reads) == reads  # no one follows: no reads
    events.notify(_batch().id)  # a change nobody follows wakes nothing
    await asyncio.sleep(0.05)
    assert len(store.reads) == reads


async def test_batches_followed_together_are_read_in_one_query() -> None:
    other = replace(_batch(), id=str(uuid.UUID(int=2)))
    store = FakeStore(_batch(), other)
    events = _events(store, poll=0.05)
    with events.follow(_batch().id) as first, events.follow(other.id) as second:
        await asyncio.gather(_next(first), _next(second))
        before = len(store.reads)
        await asyncio.sleep(0.3)
        polls = store.reads[before:]

    assert polls, "the watcher did not poll"
    assert all(sorted(ids) == sorted([_batch().id, other.id]) for ids in polls)
    await events.close()


@pytest.mark.parametrize("failures", [1, 3])
async def test_a_failing_read_is_retried_at_the_next_poll(failures: int) -> None:
    store = FakeStore(_batch(processed=7))
    store.failures = failures
    events = _events(store, poll=0.05)
    with events.follow(_batch().id) as follower:
        assert (await _next(follower)).counts.processed == 7
    await events.close()


async def test_a_terminal_state_is_offered_like_any_other() -> None:
    store = FakeStore(_batch(processed=5))
    events = _events(store)
    with events.follow(_batch().id) as follower:
        await _next(follower)
        store.batches[_batch().id] = _batch(processed=1000, status=BatchStatus.COMPLETED)
        events.notify(_batch().id)
        assert (await _next(follower)).is_terminal
    await events.close()
