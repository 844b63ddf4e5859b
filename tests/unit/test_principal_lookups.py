"""Token lookups that miss together share one query, without weakening revocation."""

from __future__ import annotations

import asyncio

from batchyard.store.principals import PrincipalCache
from batchyard.store.users import Principal

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
