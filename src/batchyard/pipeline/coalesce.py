"""A write of which only the latest state matters, made at most so often, off the caller's way.

A batch's counters were written after every chunk, in a metadata transaction the stream waited
for before it claimed the next chunk: the target's writer idled for each. ``Coalesced`` takes
that write out of the stream's way. ``mark()`` says there is something new and returns at once;
one task makes the write, at most once every ``interval`` seconds, with whatever the state is
when it runs (latest wins: a counter never goes back, since the state only grows). ``flush()``
makes the last write now and waits for it, so what is written at the end is exact.

A write that fails stops the writes: the error is raised by the next ``mark()`` or ``flush()``,
as it was raised by the stream before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

#: How often a batch's counters are written at most while its chunks are applied: as often as
#: another process sees a batch change at best (store.fresh's STATUS_CACHE_SECONDS). Every
#: write also makes this process forget the batch's cached status, so each one cost a polling
#: client's next read of the whole batch besides its own transaction; at 0.2 s those were a
#: quarter of the event loop's metadata statements during an import.
PROGRESS_INTERVAL_SECONDS = 0.5


class Coalesced:
    """Runs ``write`` after ``mark()``: at most once per ``interval``, and after the last mark."""

    def __init__(
        self,
        write: Callable[[], Awaitable[None]],
        *,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self.interval = interval
        self._clock = clock
        self._dirty = False
        self._last: float | None = None
        self._task: asyncio.Task[None] | None = None
        #: Set by ``flush``: write what is marked without waiting for the interval.
        self._now = asyncio.Event()

    def mark(self) -> None:
        """The state changed: write it soon (raises what stopped an earlier write)."""
        self._raise_failure()
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def flush(self) -> None:
        """Write what is marked now, and wait until every write is made."""
        self._now.set()
        try:
            if self._task is not None:
                await asyncio.shield(self._task)
        finally:
            self._now.clear()

    async def _run(self) -> None:
        while self._dirty:
            if self._last is not None:
                wait = self._last + self.interval - self._clock()
                if wait > 0 and not self._now.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._now.wait(), wait)
            self._dirty = False  # a mark from here on is written by the next turn
            self._last = self._clock()
            await self._write()

    def _raise_failure(self) -> None:
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error
