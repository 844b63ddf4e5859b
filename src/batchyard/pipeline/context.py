"""What a pipeline run needs from the outside world, and how it records what it does."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard import log_context, metrics
from batchyard.domain.batches import Batch, Counts, InputFormat, LogLevel
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline.results_join import ResultsJoin
from batchyard.settings import Settings
from batchyard.storage.blobs import BlobStore
from batchyard.store import batches as batch_rows
from batchyard.store.database import MetadataStore
from batchyard.targets import Target

logger = logging.getLogger("batchyard.pipeline")


@dataclass(frozen=True, slots=True)
class PipelineContext:
    """The same in both run modes: the embedded runner and workers build one each."""

    settings: Settings
    store: MetadataStore
    blobs: BlobStore
    target: Target
    http: httpx.AsyncClient
    #: Wakes whoever follows a batch's events in this process (SSE); other processes poll.
    notify: Callable[[str], None]
    #: Asks other workers to help apply a batch's chunks: ``(batch_id, how_many)`` queues up to
    #: that many helper jobs and says how many it queued. None where there are no other
    #: workers (the embedded runner): the batch's own job loads chunks in parallel threads.
    request_helpers: Callable[[str, int], Awaitable[int]] | None = None


class BatchRecorder:
    """Writes one batch's transitions, counters and log lines, each in its own short transaction
    (which forgets only that batch's remembered status reads, and its dataset's row count once
    the recorder has read which dataset that is: see store.fresh)."""

    def __init__(self, ctx: PipelineContext, batch_id: str) -> None:
        self.ctx = ctx
        self.batch_id = batch_id
        # The task that records a batch works on it alone: its log lines name the batch (and
        # not the request that happened to start it).
        log_context.batch_id.set(batch_id)
        log_context.request_id.set(None)
        #: The status this recorder last moved the batch to, and when (for stage durations).
        self._stage: tuple[BatchStatus, float] | None = None
        #: The batch's dataset, once read: its writes then forget that table's row count only.
        self._dataset: str | None = None
        #: The results files the batch's own run joins as its chunks commit, for its results
        #: stage to finish (None for a helper, whose chunks the batch's run writes results of).
        self.results_join: ResultsJoin | None = None
        #: The status the latest-begun ``status`` read returned, and when that read began.
        self._status_read: tuple[BatchStatus, float] | None = None
        #: When this recorder's last transition committed: a read begun before is not kept.
        self._status_floor = float("-inf")
        #: Told when the batch's status may have changed (``changed``): the status watches
        #: of the apply engine working on it here.
        self.on_change: list[Callable[[], None]] = []

    async def get(self) -> Batch:
        """The batch as committed now. A read only: it forgets nothing this process remembers
        (the apply stage reads the status several times a second)."""
        async with self.ctx.store.read() as conn:
            batch = await batch_rows.get_batch(conn, self.batch_id, owner_id=None)
        self._dataset = batch.dataset
        return batch

    def _write(self, *, progress: bool = False) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction writing this batch's own rows (see ``MetadataStore.begin``);
        ``progress``: its counters only, which polling clients see within the status bound."""
        return self.ctx.store.begin(
            writes_batch=self.batch_id, dataset=self._dataset, progress=progress
        )

    async def status(self) -> BatchStatus:
        """The batch's committed status, for the checks made before and between chunks.

        A read of the status column alone: no owner join and no JSON columns decoded, as
        ``get`` does, and, like every read, nothing this process remembers is forgotten.
        """
        began = time.monotonic()
        async with self.ctx.store.read() as conn:
            status = await batch_rows.get_batch_status(conn, self.batch_id)
        known = self._status_read
        if began >= self._status_floor and (known is None or began >= known[1]):
            self._status_read = (status, began)
        return status

    async def recent_status(self, fresh_for: float) -> BatchStatus:
        """The status as read by a ``status`` read that began less than ``fresh_for`` seconds
        ago, else as read now.

        Validation's cancel check after each chunk answers from the reads the apply engine's
        status watch makes several times a second meanwhile (and from its own, a few chunks
        back): one status read per chunk was a third of the metadata statements of an
        import. A cancel committed at T is seen by every check made after T + ``fresh_for``,
        the bound the apply engine keeps (apply/status_watch).
        """
        known = self._status_read
        if known is not None and time.monotonic() - known[1] < fresh_for:
            return known[0]
        return await self.status()

    def changed(self) -> None:
        """A transition of the batch was committed in this process, or announced to it
        (store.changes): a status read begun before is not answered with, and the engine's
        status watches read again at once."""
        self._status_read = None
        self._status_floor = time.monotonic()
        for listener in self.on_change:
            listener()

    async def transition(
        self,
        to: BatchStatus,
        *,
        counts: Counts | None = None,
        error_message: str | None = None,
    ) -> Batch:
        try:
            async with self._write() as conn:
                batch = await batch_rows.transition_batch(
                    conn, self.batch_id, to, counts=counts, error_message=error_message
                )
        finally:
            # A status read begun before the transition committed may be what it replaced.
            self._status_read = None
            self._status_floor = time.monotonic()
        self.ctx.notify(self.batch_id)
        self._measure(batch)
        return batch

    def _measure(self, batch: Batch) -> None:
        """Stage durations, and a batch's counts once it ends, for this process's metrics."""
        moment = time.monotonic()
        if self._stage is not None:
            stage, since = self._stage
            metrics.STAGE_SECONDS.labels(stage=stage.value).observe(moment - since)
        self._stage = (batch.status, moment)
        if batch.is_terminal:
            metrics.BATCHES_ENDED.labels(status=batch.status.value).inc()
            metrics.RECORDS_PROCESSED.inc(batch.counts.processed)
            metrics.RECORDS_FAILED.inc(batch.counts.failed)

    async def counts(self, counts: Counts) -> None:
        async with self._write(progress=True) as conn:
            await batch_rows.update_counts(conn, self.batch_id, counts)
        self.ctx.notify(self.batch_id)

    async def advance(self, counts: Counts) -> None:
        """Progress reported by one of several workers: counters only ever move forward."""
        async with self._write(progress=True) as conn:
            moved = await batch_rows.advance_counts(conn, self.batch_id, counts)
        if moved:
            self.ctx.notify(self.batch_id)

    async def detected(self, fmt: InputFormat) -> None:
        """The input's format, as detected (kept only where the batch named none)."""
        async with self._write() as conn:
            await batch_rows.record_format(conn, self.batch_id, fmt.value)
        self.ctx.notify(self.batch_id)

    async def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        logger.log(_LEVELS[level], "batch %s: %s", self.batch_id, message)
        async with self._write() as conn:
            await batch_rows.append_log(conn, self.batch_id, level, message)
        self.ctx.notify(self.batch_id)


_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}
