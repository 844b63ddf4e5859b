"""A short-lived, in-process memory of status reads: batches, their history, datasets.

Polling clients ask for the same batch hundreds of times a second; the answer changes only
when something writes. Every write of this process goes through ``MetadataStore.begin``, which
forgets once it has committed, so a read after a write made here always sees it: a write of one
batch's own rows (the pipeline's counters, log lines, transitions) forgets that batch and the row
count of its dataset's table, or of every table where the writer does not name the dataset
(``forget_batch``); any other write forgets everything (``forget_all``). During an import, the
status of every other batch, and the row count of every other dataset, stays remembered. A
write made by *another* process (a queue worker, a second API server) reaches this one within
``STATUS_CACHE_SECONDS`` (documented in docs/production.md). Concurrent misses of one key share
one load, so the moment after a write costs one query, not one per waiting client.

A key read again in the second half of its life (earlier when reads are slow: see
``store.refresh_lead``) is read afresh in the background while the remembered value is still
served: under steady polling the entry is replaced before it ages out, so no request waits for
the database on a hot key (before, every expiry held all of them for a query on a busy event
loop, tens of ms: the p99 of status reads on PostgreSQL). A value is served until ``ttl`` after
its load *started*; past that only while the background read that replaces it, started within
that life, is still under way, and never later than ``STATUS_BOUND_SECONDS`` after its load
started. On a busy event loop that read waits its turn at each of its steps and has been measured
landing 0.1 to 0.3 s after the value aged out (the old rule then made all 50 polling clients wait
for it: the p99 under load); the new one costs a change made by another process at most half a
second more to show, only on a server that busy, and a hot key is still read twice a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from batchyard.metrics import STATUS_READS
from batchyard.store.refresh_lead import RefreshLead

#: How long a remembered status read answers on its own: a change made by another process shows
#: within this on a server keeping up with its requests.
STATUS_CACHE_SECONDS = 0.5
#: The longest a change made by another process takes to show in this process's status reads: an
#: aged value answers past ``STATUS_CACHE_SECONDS`` only while its replacement is being read.
STATUS_BOUND_SECONDS = 1.0
#: At this many entries the aged ones are dropped, and all of them if none had aged: a history
#: can hold a long log, and polling many batches must not grow memory without bound.
_MAX_ENTRIES = 1_000

T = TypeVar("T")

logger = logging.getLogger("batchyard.store.fresh")


Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    fresh_until: float
    #: From then on, a read of the entry also starts a load that replaces it.
    refresh_from: float
    #: Past ``fresh_until`` the value still answers until then, while that load is under way.
    served_until: float


@dataclass(frozen=True, slots=True)
class _Flight:
    """A load under way, the forget count when it started (what it may have missed), and when
    it started (what its value's age is counted from)."""

    future: asyncio.Future[Any]
    generation: int
    started: float


class FreshCache:
    """key → the last value loaded for it, trusted for ``ttl`` seconds and until forgotten.

    Keys are tuples whose first item names what is cached (``("batch", id)``), so one cache
    serves every kind of status read. A load that started before a forget of its key is never
    remembered nor joined: it may have read what that write replaced.
    """

    def __init__(
        self,
        ttl: float = STATUS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        bound: float = STATUS_BOUND_SECONDS,
    ) -> None:
        self._ttl = ttl
        self._bound = max(bound, ttl)
        self._clock = clock
        #: Per kind of key (a row count can take seconds where a batch takes a millisecond).
        self._leads: dict[str, RefreshLead] = {}
        #: Background refreshes under way, held here so they are not collected mid-flight.
        self._refreshes: set[asyncio.Task[Any]] = set()
        self._entries: dict[Key, _Entry] = {}
        self._loading: dict[Key, _Flight] = {}
        #: How many forgets there have been; with, while loads are under way, the count at the
        #: last forget of everything, of a kind of key, and of a key.
        self._generation = 0
        self._all_forgotten = 0
        self._kinds_forgotten: dict[str, int] = {}
        self._keys_forgotten: dict[Key, int] = {}

    async def load(self, key: Key, loader: Callable[[], Awaitable[T]]) -> T:
        """The value remembered for ``key``, else what ``loader`` returns (then remembered).

        A loader's error reaches every caller waiting on it and is not remembered. A value in
        the second half of its life (or sooner: ``RefreshLead``) is returned at once and
        ``loader`` runs in the background to replace it (its error then only leaves the value
        to age out).
        """
        entry = self._fresh_entry(key)
        if entry is not None:
            if entry.refresh_from <= self._clock() and key not in self._loading:
                self._refresh(key, loader)
            count_answer(key[0], remembered=True)
            return entry.value  # type: ignore[no-any-return]
        count_answer(key[0], remembered=False)
        while (pending := self._loading.get(key)) is not None and self._current(key, pending):
            try:
                return await asyncio.shield(pending.future)
            except asyncio.CancelledError:
                if not pending.future.cancelled() or _being_cancelled():
                    raise
                # The request that was loading went away: load for ourselves.
        return await self._run_flight(key, self._start_flight(key), loader)

    def _fresh_entry(self, key: Key) -> _Entry | None:
        """The entry that may answer now: young, or aged while its replacement is being read."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        moment = self._clock()
        if entry.fresh_until > moment or (
            entry.served_until > moment and self._being_replaced(key, entry)
        ):
            return entry
        del self._entries[key]
        return None

    def _being_replaced(self, key: Key, entry: _Entry) -> bool:
        """Whether a load of ``key`` started while ``entry`` was young is under way (and no
        write of this process has forgotten the key since: then the entry is gone anyway)."""
        flight = self._loading.get(key)
        return (
            flight is not None and flight.started < entry.fresh_until and self._current(key, flight)
        )

    def _start_flight(self, key: Key) -> _Flight:
        """A load of ``key`` that later callers join, registered before any of them can ask."""
        flight = _Flight(
            asyncio.get_running_loop().create_future(), self._generation, self._clock()
        )
        self._loading[key] = flight
        return flight

    async def _run_flight(self, key: Key, flight: _Flight, loader: Callable[[], Awaitable[T]]) -> T:
        """Run ``flight``'s load, and remember its value unless ``key`` was forgotten since."""
        try:
            value = await loader()
        except asyncio.CancelledError:
            flight.future.cancel()
            raise
        except BaseException as error:
            flight.future.set_exception(error)
            flight.future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            flight.future.set_result(value)
            self._lead(key).observe(self._clock() - flight.started)
            if self._current(key, flight):
                self._remember(key, value, flight.started)
            return value
        finally:
            if self._loading.get(key) is flight:
                del self._loading[key]

    def _refresh(self, key: Key, loader: Callable[[], Awaitable[Any]]) -> None:
        """Load ``key`` in a task of its own: no request waits for it, and a request that
        misses meanwhile joins it."""
        flight = self._start_flight(key)
        task = asyncio.ensure_future(self._run_flight(key, flight, loader))
        self._refreshes.add(task)
        task.add_done_callback(lambda done: self._refreshed(key, flight, done))

    def _refreshed(self, key: Key, flight: _Flight, task: asyncio.Task[Any]) -> None:
        self._refreshes.discard(task)
        if self._loading.get(key) is flight:  # cancelled before it ran: no one may wait on it
            del self._loading[key]
            flight.future.cancel()
        if not task.cancelled() and (error := task.exception()) is not None:
            # The remembered value ages out as if no refresh had run; the next miss retries.
            logger.debug("background refresh failed: %r", error)

    async def close(self) -> None:
        """Let the background refreshes under way end (before the database they read is closed).

        Each is one short read: it is waited for, and cancelled only if it outlasts
        CLOSE_WAIT_SECONDS, since a read cancelled inside the database driver can leave its
        pooled connection checked out when the engine is disposed.
        """
        await finish_or_cancel(list(self._refreshes))

    def _current(self, key: Key, flight: _Flight) -> bool:
        """Whether no forget of ``key`` came after ``flight`` started."""
        last = max(
            self._all_forgotten,
            self._kinds_forgotten.get(key[0], 0),
            self._keys_forgotten.get(key, 0),
        )
        return flight.generation >= last

    def _remember(self, key: Key, value: Any, started: float) -> None:
        """Keep ``value`` until ``ttl`` after its load started (``bound`` while its replacement
        is being read): it may show the database as it was then, and the bound is on how old
        what a client sees can be."""
        if self._ttl <= 0:
            return
        moment = self._clock()
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries = {k: e for k, e in self._entries.items() if e.fresh_until > moment}
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = _Entry(
            value,
            started + self._ttl,
            self._lead(key).refresh_from(started),
            started + self._bound,
        )

    def _lead(self, key: Key) -> RefreshLead:
        lead = self._leads.get(key[0])
        if lead is None:
            lead = self._leads[key[0]] = RefreshLead(self._ttl)
        return lead

    def __len__(self) -> int:
        """How many values are remembered (aged ones included until they are dropped)."""
        return len(self._entries)

    def forget_all(self) -> None:
        """After this process committed a write: every later read goes to the database."""
        self._generation += 1
        self._all_forgotten = self._generation
        self._kinds_forgotten.clear()
        self._keys_forgotten.clear()
        self._entries.clear()

    def supersede_batch(self, batch_id: str, dataset: str | None = None) -> None:
        """After this process committed a batch's progress (its counters, nothing else): the
        next read of that batch, its history and the row count of ``dataset`` (of every table
        when None) starts reading them afresh in the background, while what is remembered still
        answers within its bound.

        Counters move every half second during an import; forgetting the batch at each
        move sent every client polling it to the database at once, each time (the p99 of polls
        of a running batch). Nobody waits on such a write to see it: progress shows within the
        same bound as a change made by another process, while a transition, a log line, a cancel
        or any other write still forgets, and shows at once.
        """
        keys: list[Key] = [("batch", batch_id), ("history", batch_id)]
        if dataset is not None:
            keys.append(("row_count", dataset))
        else:
            keys.extend(k for k in self._entries if k[0] == "row_count")
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries[key] = replace(entry, refresh_from=float("-inf"))

    def forget_batch(self, batch_id: str, dataset: str | None = None) -> None:
        """After this process committed a write of one batch's own rows: that batch and its
        history are read again, and the row count of ``dataset`` (the batch's: its chunks may
        have moved it), or of every table when the writer does not say which."""
        count = None if dataset is None else ("row_count", dataset)
        self._generation += 1
        if not self._loading:
            # Forget counts only matter to loads under way: none, so none are kept.
            self._kinds_forgotten.clear()
            self._keys_forgotten.clear()
        elif len(self._keys_forgotten) >= _MAX_ENTRIES:
            self._all_forgotten = self._generation  # bounded: no load under way is kept
            self._keys_forgotten.clear()
        else:
            if count is None:
                self._kinds_forgotten["row_count"] = self._generation
            for key in (("batch", batch_id), ("history", batch_id), count):
                if key is not None:
                    self._keys_forgotten[key] = self._generation
        self._entries.pop(("batch", batch_id), None)
        self._entries.pop(("history", batch_id), None)
        if count is not None:
            self._entries.pop(count, None)
        else:
            self._entries = {k: e for k, e in self._entries.items() if k[0] != "row_count"}


#: The metric's series per (kind, remembered): ``labels()`` takes a lock and checks its labels,
#: more than a remembered read costs, and kinds are few.
_answers: dict[tuple[str, bool], Any] = {}


def count_answer(kind: str, *, remembered: bool) -> None:
    """Count one request's read of ``kind`` in ``batchyard_status_reads``: the share that waited
    for the database is what makes the status endpoints' tail (docs/production.md)."""
    series = _answers.get((kind, remembered))
    if series is None:
        answer = "remembered" if remembered else "waited"
        series = _answers[(kind, remembered)] = STATUS_READS.labels(kind=kind, answer=answer)
    series.inc()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


#: How long closing a cache waits for a read under way before cancelling it.
CLOSE_WAIT_SECONDS = 2.0


async def finish_or_cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Wait up to CLOSE_WAIT_SECONDS for ``tasks`` to end, then cancel the ones still running."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
