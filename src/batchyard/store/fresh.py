"""A short-lived, in-process memory of status reads: batches, their history, datasets.

Polling clients ask for the same batch hundreds of times a second; the answer changes only
when something writes. Every write of this process goes through ``MetadataStore.begin``, which
calls ``forget_all`` once it has committed, so a read after a write made here always sees it.
A write made by *another* process (a queue worker, a second API server) reaches this one within
``STATUS_CACHE_SECONDS`` (documented in docs/production.md). Concurrent misses of one key share
one load, so the moment after a write costs one query, not one per waiting client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

#: The longest a change made by another process takes to show in this process's status reads.
STATUS_CACHE_SECONDS = 0.5
#: At this many entries the aged ones are dropped, and all of them if none had aged: a history
#: can hold a long log, and polling many batches must not grow memory without bound.
_MAX_ENTRIES = 1_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    fresh_until: float
    generation: int


class FreshCache:
    """key → the last value loaded for it, trusted for ``ttl`` seconds and until ``forget_all``.

    Keys are tuples whose first item names what is cached (``("batch", id)``), so one cache
    serves every kind of status read, and one ``forget_all`` clears them together.
    """

    def __init__(self, ttl: float = STATUS_CACHE_SECONDS) -> None:
        self._ttl = ttl
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._loading: dict[tuple[tuple[str, str], int], asyncio.Future[Any]] = {}
        self._generation = 0

    async def load(self, key: tuple[str, str], loader: Callable[[], Awaitable[T]]) -> T:
        """The value remembered for ``key``, else what ``loader`` returns (then remembered).

        A loader's error reaches every caller waiting on it and is not remembered.
        """
        entry = self._entries.get(key)
        if entry is not None:
            if entry.generation == self._generation and entry.fresh_until > time.monotonic():
                return entry.value  # type: ignore[no-any-return]
            self._entries.pop(key, None)
        # Joining only a load started in this generation: one started before a write of this
        # process may have read what that write replaced.
        flight = (key, self._generation)
        while (pending := self._loading.get(flight)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled() or _being_cancelled():
                    raise
                # The request that was loading went away: load for ourselves.
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[flight] = future
        try:
            value = await loader()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            future.set_result(value)
            self._remember(key, value, flight[1])
            return value
        finally:
            self._loading.pop(flight, None)

    def _remember(self, key: tuple[str, str], value: Any, generation: int) -> None:
        if generation != self._generation or self._ttl <= 0:
            return
        moment = time.monotonic()
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries = {k: e for k, e in self._entries.items() if e.fresh_until > moment}
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = _Entry(value, moment + self._ttl, generation)

    def __len__(self) -> int:
        """How many values are remembered (aged ones included until they are dropped)."""
        return len(self._entries)

    def forget_all(self) -> None:
        """After this process committed a write: every later read goes to the database."""
        self._generation += 1
        self._entries.clear()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
