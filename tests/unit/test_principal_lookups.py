"""Token lookups that miss together share one query, without weakening revocation."""

from __future__ import annotations

import asyncio

from batchyard.store.principals import PrincipalCache
from batchyard.store.users import Principal
from support.manual_time import ManualClock, run_background_tasks

ALICE = Principal(user_id="u1", name="alice", role="member")


class Lookups:
    """A token lookup that takes a while and counts how often it ran."""

    def __init__(self, answer: Principal | None = ALICE) -> None:
        self.answer = answer
        self.count = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Principal | None:
        self.count += 1
        await self.release.wait()
        return self.answer


async def test_two_hundred_callers_missing_together_cost_one_lookup() -> None:
    cache, lookup = PrincipalCache(), Lookups()
    callers = [asyncio.create_task(cache.resolve("h", lookup)) for _ in range(200)]
    await asyncio.sleep(0.01)
    lookup.release.set()

    assert set(await asyncio.gather(*callers)) == {ALICE}
    assert lookup.count == 1
    assert await cache.resolve("h", lookup) == ALICE  # remembered now
    assert lookup.count == 1


async def test_a_caller_going_away_does_not_cancel_the_lookup_for_the_others() -> None:
    cache, lookup = PrincipalCache(), Lookups()
    first = asyncio.create_task(cache.resolve("h", lookup))
    second = asyncio.create_task(cache.resolve("h", lookup))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0.01)
    lookup.release.set()

    assert await second == ALICE
    assert first.cancelled()
    assert lookup.count == 1


async def test_a_lookup_started_before_a_change_here_is_not_joined_after_it() -> None:
    cache, before = PrincipalCache(), Lookups()
    stale = asyncio.create_task(cache.resolve("h", before))
    await asyncio.sleep(0.01)
    cache.forget_all()  # e.g. the token was revoked through this process meanwhile
    after = Lookups(answer=None)
    after.release.set()
    fresh = await cache.resolve("h", after)
    before.release.set()
    await stale

    assert fresh is None  # the revocation is seen, not the answer read before it
    assert after.count == 1
    assert cache.get("h") is None  # and the stale answer was not remembered


async def test_an_invalid_token_is_not_remembered() -> None:
    cache, lookup = PrincipalCache(), Lookups(answer=None)
    lookup.release.set()
    assert await cache.resolve("h", lookup) is None
    assert await cache.resolve("h", lookup) is None
    assert lookup.count == 2


async def test_a_failed_lookup_reaches_every_caller_and_is_not_remembered() -> None:
    cache = PrincipalCache()
    calls = 0

    async def broken() -> Principal | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("database unreachable")

    results = await asyncio.gather(
        *(cache.resolve("h", broken) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert calls == 1
    lookup = Lookups()
    lookup.release.set()
    assert await cache.resolve("h", lookup) == ALICE


async def test_a_token_in_steady_use_is_looked_up_again_without_anyone_waiting() -> None:
    clock, lookup = ManualClock(), Lookups()
    cache = PrincipalCache(ttl=1.0, clock=clock)
    lookup.release.set()
    assert await cache.resolve("h", lookup) == ALICE
    clock.now += 0.6
    lookup.release.clear()  # the database is slow to answer
    assert await asyncio.wait_for(cache.resolve("h", lookup), timeout=1) == ALICE
    assert await asyncio.wait_for(cache.resolve("h", lookup), timeout=1) == ALICE
    assert lookup.count == 2  # one lookup in the background, however many requests
    lookup.release.set()
    await run_background_tasks()
    clock.now += 0.9  # past the first answer's bound, not the background lookup's
    assert await asyncio.wait_for(cache.resolve("h", lookup), timeout=1) == ALICE


async def test_a_revocation_found_in_the_background_is_refused_at_once() -> None:
    clock, lookup = ManualClock(), Lookups()
    cache = PrincipalCache(ttl=1.0, clock=clock)
    lookup.release.set()
    assert await cache.resolve("h", lookup) == ALICE
    clock.now += 0.6
    lookup.answer = None  # revoked by another process
    assert await cache.resolve("h", lookup) == ALICE  # within the bound, answered from memory
    await run_background_tasks()
    assert await cache.resolve("h", lookup) is None  # the background lookup saw it
    assert cache.get("h") is None


async def test_an_answer_is_never_used_later_than_the_bound_after_its_lookup_started() -> None:
    clock, lookup = ManualClock(), Lookups()
    cache = PrincipalCache(ttl=1.0, clock=clock)

    async def slow() -> Principal | None:
        clock.now += 0.3  # what the lookup read is this old when it returns
        return ALICE

    assert await cache.resolve("h", slow) == ALICE
    clock.now = 101.0  # 1.0 s after that lookup started
    waiting = asyncio.create_task(cache.resolve("h", lookup))
    await run_background_tasks()
    assert not waiting.done()  # waits for the database: nothing remembered is young enough
    lookup.answer = None
    lookup.release.set()
    assert await waiting is None


async def _answer_whose_background_lookup_hangs() -> tuple[ManualClock, Lookups, PrincipalCache]:
    """A token answered at 100.0 (bound 2 s), whose background lookup, started at 100.6 in the
    second half of the answer's second, waits for the database (a busy server: it lands late)."""
    clock, lookup = ManualClock(), Lookups()
    cache = PrincipalCache(ttl=1.0, clock=clock, bound=2.0)
    lookup.release.set()
    assert await cache.resolve("h", lookup) == ALICE
    clock.now += 0.6
    lookup.release.clear()
    assert await cache.resolve("h", lookup) == ALICE
    await run_background_tasks()
    return clock, lookup, cache


async def test_an_aged_answer_is_used_while_the_lookup_replacing_it_is_under_way() -> None:
    clock, lookup, cache = await _answer_whose_background_lookup_hangs()
    assert lookup.count == 2  # the background lookup started, and waits for the database
    clock.now += 0.7  # aged, its replacement still under way: no request waits for it
    assert await asyncio.wait_for(cache.resolve("h", lookup), timeout=1) == ALICE
    assert lookup.count == 2
    lookup.answer = None  # what the late lookup finds: revoked by another process
    lookup.release.set()
    await run_background_tasks()
    assert await cache.resolve("h", lookup) is None  # refused as soon as it landed


async def test_an_aged_answer_is_never_used_past_the_revocation_bound() -> None:
    clock, lookup, cache = await _answer_whose_background_lookup_hangs()
    clock.now = 102.0  # 2.0 s after the answer's lookup started
    waiting = asyncio.create_task(cache.resolve("h", lookup))
    await run_background_tasks()
    assert not waiting.done()
    lookup.answer = None
    lookup.release.set()
    assert await waiting is None


async def test_after_a_slow_lookup_a_token_in_use_is_looked_up_again_sooner() -> None:
    clock, lookup = ManualClock(), Lookups()
    cache = PrincipalCache(ttl=1.0, clock=clock)

    async def slow() -> Principal | None:
        clock.now += 0.3  # a busy event loop: the lookup took 0.3 s
        lookup.release.set()
        return await lookup()

    assert await cache.resolve("h", slow) == ALICE
    clock.now = 100.45  # before half the answer's life, too late for a lookup as slow
    lookup.release.clear()
    assert await asyncio.wait_for(cache.resolve("h", lookup), timeout=1) == ALICE
    assert lookup.count == 2  # looked up again in the background, no one waiting for it
    lookup.release.set()
    await run_background_tasks()
