"""The batch's status as the apply engine checks it before every chunk, without a round trip.

Reading the status from the metadata store before each chunk, while the chunk's claim is held,
kept the target's writer waiting for the event loop on every chunk (about a tenth of the time
chunks were applied). A ``StatusWatch`` keeps the last status read and when that read BEGAN;
a check answers from it while it is younger than ``fresh_for``, and starts a new read in the
background once it is half that old; while streams apply chunks (``kept_fresh``) a read also
starts every ``fresh_for / 2`` seconds, so a stream almost never waits, however long its chunks
take. A status older than ``fresh_for`` is read again before it is answered.

A transition this process hears of as it commits (its own, a cancel it took, on PostgreSQL
one another process announced: store/changes.py) is pushed: ``changed()`` drops what was read
before it (and, while streams apply chunks, starts a read at once), so the next check meets the
new status. The periodic read is only there for a change nobody announced here, which is why it
can be slow (a second).

What this costs is a bound, not a guarantee: a stop (a cancel, the batch leaving the status the
work belongs to) committed at time T is seen by every check made after T + ``fresh_for``, since
the status such a check answers with was read after T. ``settle`` holds a batch's chunks for
``fresh_for`` after the batch ended for that reason: a chunk claimed after it lets go can only
meet the batch's new status (apply/engine.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from batchyard.domain.statuses import BatchStatus

logger = logging.getLogger("batchyard.apply")

#: Reads the batch's current status (from the metadata store, in the event loop).
StatusReader = Callable[[], Awaitable[BatchStatus]]
#: How long a status read stays good for a check, and so how late a stop committed elsewhere
#: and not announced to this process may be seen (a pushed one is seen at the next check).
STATUS_FRESH_SECONDS = 1.0


class StatusWatch:
    """One batch's status, read at most about every ``fresh_for / 2`` seconds while checked."""

    def __init__(
        self,
        read: StatusReader,
        *,
        fresh_for: float = STATUS_FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self.fresh_for = fresh_for
        self._clock = clock
        #: The last status read, and the clock when that read began.
        self._known: tuple[BatchStatus, float] | None = None
        #: The read under way, shared by every check that needs it, and when it began.
        self._reading: asyncio.Task[BatchStatus] | None = None
        self._reading_began = 0.0
        #: The count of pushed changes when the read under way began.
        self._reading_changes = 0
        #: Pushed changes so far: a read begun before the latest is neither kept nor shared.
        self._changes = 0
        #: How many ``kept_fresh`` blocks are under way.
        self._kept_fresh = 0
        #: Every read not done yet (one replaced by a newer one still runs to its end).
        self._pending: set[asyncio.Task[BatchStatus]] = set()

    async def current(self) -> BatchStatus:
        """The status as read at most ``fresh_for`` seconds ago (read now if it is older)."""
        if self._known is not None:
            status, began = self._known
            age = self._clock() - began
            if age < self.fresh_for:
                if age >= self.fresh_for / 2:
                    self._start_reading()
                return status
        return await self.read()

    def changed(self) -> None:
        """The batch's status may have changed just now: forget what was read before, so the
        next check reads it again (while kept fresh, that read starts at once)."""
        self._changes += 1
        self._known = None
        if self._kept_fresh:
            self._start_reading()

    async def read(self) -> BatchStatus:
        """The status read now (or by a read that began since the last answer was given)."""
        return await asyncio.shield(self._start_reading())

    @asynccontextmanager
    async def kept_fresh(self) -> AsyncIterator[None]:
        """For the length of the block, a read every ``fresh_for / 2`` seconds (one at a time),
        so checks made then find a young status; no read outlives the block."""
        refreshing = asyncio.create_task(self._refresh_every()) if self.fresh_for > 0 else None
        self._kept_fresh += 1
        try:
            yield
        finally:
            self._kept_fresh -= 1
            if refreshing is not None:
                refreshing.cancel()
                await asyncio.wait({refreshing})
            await self.quiet()

    async def _refresh_every(self) -> None:
        while True:
            self._start_reading()  # or the read under way
            await asyncio.sleep(self.fresh_for / 2)

    async def quiet(self) -> None:
        """Wait for the reads under way, so none outlives the work that checked (an error is
        dropped: the next check reads again)."""
        if self._pending:
            await asyncio.wait(set(self._pending))

    def _start_reading(self) -> asyncio.Task[BatchStatus]:
        """The read under way, or a new one where there is none or it began too long ago."""
        now = self._clock()
        if (
            self._reading is None
            or self._reading.done()
            or now - self._reading_began >= self.fresh_for
            or self._reading_changes != self._changes
        ):
            self._reading_began = now
            self._reading_changes = self._changes
            self._reading = asyncio.ensure_future(self._read_and_keep(now, self._changes))
            self._pending.add(self._reading)
            self._reading.add_done_callback(self._done)
        return self._reading

    async def _read_and_keep(self, began: float, changes: int) -> BatchStatus:
        status = await self._read()
        if changes == self._changes and (self._known is None or began >= self._known[1]):
            self._known = (status, began)
        return status

    def _done(self, task: asyncio.Task[BatchStatus]) -> None:
        """A background read that failed is logged; the check that needs the status reads
        again."""
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("batch status read failed", exc_info=task.exception())
