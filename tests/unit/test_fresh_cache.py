"""The status-read cache: one load for many waiters, forgotten at a write, never serving a
value read before a write of this process, bounded in age."""

from __future__ import annotations

import asyncio

import pytest

from batchyard.store import fresh
from batchyard.store.fresh import FreshCache
from support.manual_time import ManualClock, run_background_tasks

KEY = ("batch", "b1")


class Loader:
    """Counts its calls; each returns the call number, after ``gate`` opens."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> int:
        self.calls += 1
        number = self.calls
        await self.gate.wait()
        return number


async def test_concurrent_misses_share_one_load() -> None:
    cache, load = FreshCache(ttl=60), Loader()
    load.gate.clear()
    waiting = [asyncio.create_task(cache.load(KEY, load)) for _ in range(50)]
    await asyncio.sleep(0)
    load.gate.set()
    assert await asyncio.gather(*waiting) == [1] * 50
    assert load.calls == 1
    assert await cache.load(KEY, load) == 1  # remembered


async def test_a_write_forgets_and_no_one_joins_a_load_started_before_it() -> None:
    cache, load = FreshCache(ttl=60), Loader()
    load.gate.clear()
    before = asyncio.create_task(cache.load(KEY, load))
    await asyncio.sleep(0)
    cache.forget_all()  # a write committed while the first load was reading
    after = asyncio.create_task(cache.load(KEY, load))
    await asyncio.sleep(0)
    load.gate.set()
    assert (await before, await after) == (1, 2)
    assert await cache.load(KEY, load) == 2  # the load from before the write was not kept


async def test_entries_age_out() -> None:
    cache, load = FreshCache(ttl=0.05), Loader()
    assert await cache.load(KEY, load) == 1
    assert await cache.load(KEY, load) == 1
    await asyncio.sleep(0.1)
    assert await cache.load(KEY, load) == 2


async def test_errors_reach_every_waiter_and_are_not_remembered() -> None:
    cache, calls = FreshCache(ttl=60), 0
    gate = asyncio.Event()

    async def missing() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise LookupError("gone")

    waiting = [asyncio.create_task(cache.load(KEY, missing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results) and calls == 1
    with pytest.raises(LookupError):
        await cache.load(KEY, missing)
    assert calls == 2


async def test_waiters_load_themselves_when_the_loading_request_goes_away() -> None:
    cache, load = FreshCache(ttl=60), Loader()
    load.gate.clear()
    first = asyncio.create_task(cache.load(KEY, load))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.load(KEY, load))
    await asyncio.sleep(0)
    first.cancel()  # the client that was loading disconnected
    await asyncio.sleep(0)
    load.gate.set()
    assert await second == 2
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_memory_is_bounded_by_dropping_aged_entries_first() -> None:
    cache = FreshCache(ttl=0.05)
    for n in range(1_000):
        await cache.load(("batch", str(n)), Loader())
    await asyncio.sleep(0.1)  # all aged
    kept = Loader()
    await cache.load(("batch", "new"), kept)
    assert len(cache) == 1
    await cache.load(("batch", "new"), kept)
    assert kept.calls == 1


async def test_a_write_of_one_batch_forgets_that_batch_and_the_row_counts_only() -> None:
    cache = FreshCache(ttl=60)
    keys = [KEY, ("history", "b1"), ("batch", "b2"), ("dataset", "d"), ("row_count", "d")]
    loads = {key: Loader() for key in keys}
    for key, load in loads.items():
        assert await cache.load(key, load) == 1
    cache.forget_batch("b1")
    for key, load in loads.items():
        await cache.load(key, load)
    assert {key: load.calls for key, load in loads.items()} == {
        KEY: 2,
        ("history", "b1"): 2,
        ("batch", "b2"): 1,  # another batch's status is still remembered
        ("dataset", "d"): 1,  # a dataset's definition does not change with its batches
        ("row_count", "d"): 2,  # its row count may have moved with the batch's chunks
    }


async def test_a_write_naming_its_dataset_forgets_that_row_count_only() -> None:
    cache = FreshCache(ttl=60)
    keys = [KEY, ("row_count", "bulk"), ("row_count", "orders")]
    loads = {key: Loader() for key in keys}
    for key, load in loads.items():
        assert await cache.load(key, load) == 1
    cache.forget_batch("b1", "bulk")
    for key, load in loads.items():
        await cache.load(key, load)
    assert {key: load.calls for key, load in loads.items()} == {
        KEY: 2,
        ("row_count", "bulk"): 2,  # the batch's chunks go to this table
        ("row_count", "orders"): 1,  # no other table changes with this batch
    }


async def test_a_count_under_way_when_its_dataset_is_written_is_neither_kept_nor_joined() -> None:
    cache, bulk, orders = FreshCache(ttl=60), Loader(), Loader()
    bulk.gate.clear()
    orders.gate.clear()
    before = asyncio.create_task(cache.load(("row_count", "bulk"), bulk))
    unrelated = asyncio.create_task(cache.load(("row_count", "orders"), orders))
    await asyncio.sleep(0)
    cache.forget_batch("b1", "bulk")
    after = asyncio.create_task(cache.load(("row_count", "bulk"), bulk))
    await asyncio.sleep(0)
    bulk.gate.set()
    orders.gate.set()
    assert (await before, await after, await unrelated) == (1, 2, 1)
    assert await cache.load(("row_count", "bulk"), bulk) == 2
    assert await cache.load(("row_count", "orders"), orders) == 1


async def test_a_load_under_way_when_its_batch_is_written_is_neither_kept_nor_joined() -> None:
    cache, mine, other = FreshCache(ttl=60), Loader(), Loader()
    mine.gate.clear()
    other.gate.clear()
    before = asyncio.create_task(cache.load(KEY, mine))
    unrelated = asyncio.create_task(cache.load(("batch", "b2"), other))
    await asyncio.sleep(0)
    cache.forget_batch("b1")
    after = asyncio.create_task(cache.load(KEY, mine))
    await asyncio.sleep(0)
    mine.gate.set()
    other.gate.set()
    assert (await before, await after, await unrelated) == (1, 2, 1)
    assert await cache.load(KEY, mine) == 2  # the load from before the write was not kept
    assert await cache.load(("batch", "b2"), other) == 1  # the other batch's load was kept


async def test_a_hot_key_is_read_afresh_in_the_background_while_its_value_serves() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.4
    assert await cache.load(KEY, load) == 1 and load.calls == 1  # young: no read at all
    clock.now += 0.2
    load.gate.clear()  # the database is slow to answer the refresh
    # Answered at once from memory, though a read is under way: no request waits for it.
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 1
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 1
    assert load.calls == 2  # one refresh, however many requests saw the value age
    load.gate.set()
    await run_background_tasks()
    clock.now += 0.9  # 1.5 s after the first read, 0.9 s after the refresh started
    load.gate.clear()
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 2  # the refresh's value
    assert load.calls == 3  # which, in its turn past half its life, is being read afresh
    load.gate.set()
    await run_background_tasks()


async def test_a_value_is_never_served_later_than_ttl_after_its_read_started() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)

    async def slow() -> int:
        clock.now += 0.3  # the read took 0.3 s: what it saw is that old when it returns
        return await load()

    assert await cache.load(KEY, slow) == 1
    clock.now = 101.0  # 1.0 s after that read started, 0.7 s after it returned
    load.gate.clear()
    waiting = asyncio.create_task(cache.load(KEY, load))
    await run_background_tasks()
    assert not waiting.done()  # it waits for the database: nothing in memory is young enough
    load.gate.set()
    assert await waiting == 2


async def test_an_aged_value_answers_while_the_read_replacing_it_is_under_way() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock, bound=2.0)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.6
    load.gate.clear()  # a busy server: the refresh started now lands late
    assert await cache.load(KEY, load) == 1
    await run_background_tasks()
    assert load.calls == 2  # the refresh started, and waits for the database
    clock.now += 0.7  # 1.3 s after the first read started: aged, its replacement still reading
    # No request waits for the database meanwhile (before, all of them did: the p99).
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 1
    assert load.calls == 2  # the refresh under way serves them all
    load.gate.set()
    await run_background_tasks()
    assert await cache.load(KEY, load) == 2


async def test_an_aged_value_is_never_served_past_the_bound_even_while_it_is_replaced() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock, bound=2.0)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.6
    load.gate.clear()
    assert await cache.load(KEY, load) == 1  # starts the refresh, which hangs
    clock.now = 102.0  # the bound: 2.0 s after the first read started
    waiting = asyncio.create_task(cache.load(KEY, load))
    await run_background_tasks()
    assert not waiting.done()  # it waits for the refresh: the old value is too old now
    load.gate.set()
    assert await waiting == 2


async def test_an_aged_value_with_no_read_replacing_it_is_not_served() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock, bound=2.0)
    assert await cache.load(KEY, load) == 1
    clock.now += 1.2  # nobody read it in its second half: nothing is replacing it
    load.gate.clear()
    waiting = asyncio.create_task(cache.load(KEY, load))
    await run_background_tasks()
    assert not waiting.done()
    load.gate.set()
    assert await waiting == 2


async def test_a_write_here_ends_the_aged_value_even_while_a_read_replaces_it() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock, bound=2.0)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.6
    load.gate.clear()
    assert await cache.load(KEY, load) == 1  # refresh under way
    cache.forget_batch("b1")  # this process wrote the batch: what is remembered may be stale
    clock.now += 0.5
    waiting = asyncio.create_task(cache.load(KEY, load))
    await run_background_tasks()
    assert not waiting.done()  # a read after the write, not the value nor the refresh before it
    load.gate.set()
    assert await waiting == 3


async def test_progress_written_here_is_read_afresh_while_the_value_still_answers() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.1  # young: without a write, nothing would be read again yet
    cache.supersede_batch("b1", "orders")  # the pipeline moved the batch's counters
    load.gate.clear()
    # Polls do not wait for the database: the remembered value answers, a read starts behind it.
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 1
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 1
    await run_background_tasks()
    assert load.calls == 2  # one read afresh for all of them
    load.gate.set()
    await run_background_tasks()
    assert await cache.load(KEY, load) == 2  # the progress shows


async def test_progress_leaves_other_batches_and_datasets_alone_and_keeps_the_bound() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock, bound=2.0)
    other, count, other_count = ("batch", "b2"), ("row_count", "orders"), ("row_count", "x")
    for key in (KEY, other, count, other_count):
        assert await cache.load(key, load) >= 1
    cache.supersede_batch("b1", "orders")
    load.gate.clear()
    for key in (other, other_count):
        await cache.load(key, load)
    await run_background_tasks()
    assert load.calls == 4  # untouched: nothing read again
    await cache.load(count, load)
    await run_background_tasks()
    assert load.calls == 5  # the batch's dataset's row count is read afresh
    clock.now += 2.0  # the bound: a value is never served later, progress or not
    waiting = asyncio.create_task(cache.load(KEY, load))
    await run_background_tasks()
    assert not waiting.done()
    load.gate.set()
    assert await waiting == 6


async def test_a_failed_refresh_leaves_the_value_to_age_out_then_the_error_shows() -> None:
    clock, calls = ManualClock(), 0
    cache = FreshCache(ttl=1.0, clock=clock)

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionError("database unreachable")
        return calls

    assert await cache.load(KEY, flaky) == 1
    clock.now += 0.6
    assert await cache.load(KEY, flaky) == 1
    await run_background_tasks()
    assert calls == 2
    assert await cache.load(KEY, flaky) == 1  # still within its bound
    await run_background_tasks()
    clock.now += 0.5
    with pytest.raises(ConnectionError):
        await cache.load(KEY, flaky)


async def test_a_refresh_under_way_when_its_batch_is_written_is_not_kept() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.6
    load.gate.clear()
    assert await cache.load(KEY, load) == 1  # starts a refresh, which reads before the write
    await run_background_tasks()
    cache.forget_batch("b1")
    load.gate.set()
    await run_background_tasks()
    assert await cache.load(KEY, load) == 3  # neither the old value nor the refresh's
    assert load.calls == 3


async def refresh_held_open() -> tuple[FreshCache, Loader]:
    """A cache whose one key is being refreshed in the background, that refresh's read held open."""
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.6
    load.gate.clear()
    assert await cache.load(KEY, load) == 1
    return cache, load


async def test_closing_stops_a_refresh_stuck_past_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fresh, "CLOSE_WAIT_SECONDS", 0.05)
    cache, load = await refresh_held_open()
    await asyncio.wait_for(cache.close(), timeout=1)
    load.gate.set()
    await run_background_tasks()
    assert await cache.load(KEY, load) == 1  # the cancelled refresh replaced nothing


async def test_closing_lets_a_refresh_under_way_finish_its_read() -> None:
    """A read is not cancelled inside the driver (that can strand its pooled connection)."""
    cache, load = await refresh_held_open()
    closing = asyncio.create_task(cache.close())
    await run_background_tasks()
    assert not closing.done()  # waiting for the read, not cancelling it
    load.gate.set()
    await asyncio.wait_for(closing, timeout=1)
    assert load.calls == 2


async def test_many_requests_seeing_a_value_age_at_once_start_one_refresh() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.6
    assert await asyncio.gather(*(cache.load(KEY, load) for _ in range(50))) == [1] * 50
    await run_background_tasks()
    assert load.calls == 2


async def test_a_refresh_stopped_before_it_ran_leaves_no_load_to_wait_on() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)
    assert await cache.load(KEY, load) == 1
    clock.now += 0.6
    assert await cache.load(KEY, load) == 1
    await cache.close()  # at once: the refresh never started reading
    clock.now += 0.5
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 2


async def test_after_a_slow_read_a_hot_key_is_read_afresh_sooner() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)

    async def slow() -> int:
        clock.now += 0.3  # a busy event loop: the read took 0.3 s
        return await load()

    assert await cache.load(KEY, slow) == 1
    clock.now = 100.45  # before half its life, but a read as slow would land after it aged out
    load.gate.clear()
    assert await asyncio.wait_for(cache.load(KEY, load), timeout=1) == 1  # served at once
    assert load.calls == 2  # and read afresh in the background
    load.gate.set()
    await run_background_tasks()
    clock.now = 101.2  # the first value aged out; the background read's has not
    assert await cache.load(KEY, load) == 2


async def test_a_slow_read_of_one_kind_leaves_the_others_refreshed_at_half_their_life() -> None:
    clock, load = ManualClock(), Loader()
    cache = FreshCache(ttl=1.0, clock=clock)

    async def slow_count() -> int:
        clock.now += 0.3  # counting a big table's rows takes a while
        return 7

    assert await cache.load(("row_count", "orders"), slow_count) == 7
    clock.now = 200.0
    assert await cache.load(KEY, load) == 1
    clock.now = 200.45  # a batch read is as fast as ever: not read afresh yet
    assert await cache.load(KEY, load) == 1
    assert load.calls == 1
