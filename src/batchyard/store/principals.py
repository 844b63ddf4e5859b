"""A short-lived, in-process memory of which principal a token hash resolved to.

Every authenticated request resolves its token; polling clients send the same token thousands of
times a minute. Remembering the answer for at most ``PRINCIPAL_CACHE_SECONDS`` makes that a dict
lookup, at a documented price: a token revoked, a user disabled or a role changed by *another*
process (a second server, ``batchyard users`` on the command line) takes effect here within that
bound. Changes made through this process call ``forget_all`` and take effect at once.
Lookups of one token that miss together share one query: two hundred event streams (or polling
clients) of one token whose answer just expired cost the database one read, not two hundred.
A token used again in the second half of its answer's life (earlier when lookups are slow: see
``store.refresh_lead``) is looked up afresh in the background while that answer still serves, so
a steadily used token never makes a request wait for the database. An answer is used until
``PRINCIPAL_CACHE_SECONDS`` after its lookup started; past that only while the lookup replacing
it, started within that second, is under way (on a busy event loop it can land a few tenths of a
second late, and every request of the token would wait for it), and never later than
``PRINCIPAL_BOUND_SECONDS`` after its lookup started: the documented revocation bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from batchyard.store.fresh import count_answer, finish_or_cancel
from batchyard.store.refresh_lead import RefreshLead
from batchyard.store.users import Principal

#: How long an answer is used on its own: a revocation made elsewhere reaches this process
#: within this on a server keeping up with its requests.
PRINCIPAL_CACHE_SECONDS = 1.0
#: The longest a revocation made elsewhere takes to reach this process (documented): an aged
#: answer is used past ``PRINCIPAL_CACHE_SECONDS`` only while its replacement is being looked up.
PRINCIPAL_BOUND_SECONDS = 2.0
#: Entries beyond this are dropped wholesale: a flood of distinct tokens cannot grow memory.
_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    fresh_until: float
    refresh_from: float
    generation: int
    #: Past ``fresh_until`` the answer is still used until then, while its lookup is under way.
    used_until: float


class PrincipalCache:
    """token hash → principal, each answer trusted for ``ttl`` seconds of monotonic time."""

    def __init__(
        self,
        ttl: float = PRINCIPAL_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        bound: float = PRINCIPAL_BOUND_SECONDS,
    ) -> None:
        self._ttl = ttl
        self._bound = max(bound, ttl)
        self._clock = clock
        self._lead = RefreshLead(ttl)
        self._entries: dict[str, _Entry] = {}
        self._generation = 0
        #: Each lookup under way, and when it started (what an aged answer may wait for).
        self._lookups: dict[tuple[str, int], tuple[asyncio.Task[Principal | None], float]] = {}

    @property
    def generation(self) -> int:
        """Read before a lookup and hand to ``remember``: an answer read while credentials
        changed in this process is never kept."""
        return self._generation

    def get(self, token_hash: str) -> Principal | None:
        entry = self._valid_entry(token_hash)
        return None if entry is None else entry.principal

    def _valid_entry(self, token_hash: str) -> _Entry | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        moment = self._clock()
        if entry.generation == self._generation and (
            entry.fresh_until > moment
            or (entry.used_until > moment and self._being_replaced(token_hash, entry))
        ):
            return entry
        self._entries.pop(token_hash, None)
        return None

    def _being_replaced(self, token_hash: str, entry: _Entry) -> bool:
        """Whether a lookup of the token started while ``entry`` was young is under way."""
        under_way = self._lookups.get((token_hash, self._generation))
        return under_way is not None and under_way[1] < entry.fresh_until

    async def resolve(
        self, token_hash: str, lookup: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """The remembered principal, else ``lookup()``'s answer (remembered when valid), shared
        by every caller asking for the token meanwhile.

        A lookup started before ``forget_all`` is not joined: it may have read what that change
        replaced. The lookup runs as its own task, so a caller that goes away (a closed stream)
        does not cancel it for the others. A remembered answer in the second half of its life
        is returned at once, and the token looked up afresh in the background.
        """
        cached = self._valid_entry(token_hash)
        if cached is not None:
            if cached.refresh_from <= self._clock():
                self._lookup_task(token_hash, lookup)
            count_answer("token", remembered=True)
            return cached.principal
        count_answer("token", remembered=False)
        return await asyncio.shield(self._lookup_task(token_hash, lookup))

    def _lookup_task(
        self, token_hash: str, lookup: Callable[[], Awaitable[Principal | None]]
    ) -> asyncio.Task[Principal | None]:
        """The lookup of ``token_hash`` under way since the last change here, else a new one."""
        key = (token_hash, self._generation)
        under_way = self._lookups.get(key)
        if under_way is not None:
            return under_way[0]
        started = self._clock()
        task = asyncio.ensure_future(self._look_up(key, lookup, started))
        self._lookups[key] = (task, started)
        task.add_done_callback(lambda done: self._looked_up(key, done))
        return task

    def _looked_up(self, key: tuple[str, int], task: asyncio.Task[Principal | None]) -> None:
        self._lookups.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: a background lookup's error only lets the answer age

    async def _look_up(
        self,
        key: tuple[str, int],
        lookup: Callable[[], Awaitable[Principal | None]],
        started: float,
    ) -> Principal | None:
        principal = await lookup()
        self._lead.observe(self._clock() - started)
        if principal is not None:
            self.remember(key[0], principal, key[1], started)
        elif key[1] == self._generation:
            self._entries.pop(key[0], None)  # revoked: refused from now on, not at the bound
        return principal

    def remember(
        self, token_hash: str, principal: Principal, generation: int, started: float
    ) -> None:
        """Keep ``principal`` until ``ttl`` after the lookup that found it ``started``."""
        if generation != self._generation or self._ttl <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[token_hash] = _Entry(
            principal,
            started + self._ttl,
            self._lead.refresh_from(started),
            generation,
            started + self._bound,
        )

    async def close(self) -> None:
        """Let the lookups under way end (before the database they read is closed); see
        ``fresh.finish_or_cancel``."""
        await finish_or_cancel([task for task, _ in self._lookups.values()])

    def forget_all(self) -> None:
        """After a token, user or role changed in this process: nothing remembered is used."""
        self._generation += 1
        self._entries.clear()
