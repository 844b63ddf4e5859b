"""The batch's status as the apply engine checks it before every chunk, without a round trip.

Reading the status from the metadata store before each chunk, while the chunk's claim is held,
kept the target's writer waiting for the event loop on every chunk (about a tenth of the time
chunks were applied). A ``StatusWatch`` keeps the last status read and when that read BEGAN;
a check answers from it while it is younger than ``fresh_for``, and starts a new read in the
background once it is half that old; while streams apply chunks (``kept_fresh``) a read also
starts every ``fresh_for / 2`` seconds, so a stream almost never waits, however long its chunks
take. A status older than ``fresh_for`` is read again before it is answered.

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
#: How long a status read stays good for a check (and so how late a stop may be seen).
STATUS_FRESH_SECONDS = 0.25


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

    async def read(self) -> BatchStatus:
        """The status read now (or by a read that began since the last answer was given)."""
        return await asyncio.shield(self._start_reading())

    @asynccontextmanager
    async def kept_fresh(self) -> AsyncIterator[None]:
        """For the length of the block, a read every ``fresh_for / 2`` seconds (one at a time),
        so checks made then find a young status; no read outlives the block."""
        refreshing = asyncio.create_task(self._refresh_every()) if self.fresh_for > 0 else None
        try:
            yield
        finally:
            if refreshing is not None:
                refreshing.cancel()
                await asyncio.wait({refreshing})
            await self.quiet()

    async def _refresh_every(self) -> None:
        while True:
            self._start_reading()  # or the read under way
            await asyncio.sleep(self.fresh_for / 2)

    async def quiet(self) -> None:
        """Wait for a read under way, so none outlives the work that checked (its error is
        dropped: the next check reads again)."""
        reading = self._reading
        if reading is not None:
            await asyncio.wait({reading})

    def _start_reading(self) -> asyncio.Task[BatchStatus]:
        """The read under way, or a new one where there is none or it began too long ago."""
        now = self._clock()
        if (
            self._reading is None
            or self._reading.done()
            or now - self._reading_began >= self.fresh_for
        ):
            self._reading_began = now
            self._reading = asyncio.ensure_future(self._read_and_keep(now))
            self._reading.add_done_callback(_seen)
        return self._reading

    async def _read_and_keep(self, began: float) -> BatchStatus:
        status = await self._read()
        if self._known is None or began >= self._known[1]:
            self._known = (status, began)
        return status


def _seen(task: asyncio.Task[BatchStatus]) -> None:
    """A background read that failed is logged; the check that needs the status reads again."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("batch status read failed", exc_info=task.exception())
