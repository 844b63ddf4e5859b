"""Applying chunks while validation goes on: each chunk validated, then applied from memory.

Validation hands every chunk it has checked, with its valid records, to streams that apply it
at once in input order (``options.parallel_streams`` of them for inserts, one for upsert and
delete, whose repeated-key rules need input order). The hand-over queue holds one chunk: when
the database is slower than validation, validation waits, so memory stays a few chunks (one
per stream, one queued, one being validated) whatever the input's size. Nothing is written to
storage and read back but what the results need (record numbers, keys, per-record errors).
When validation ends, the streams apply what is queued and stop; every chunk is committed then.

Only a batch that validation cannot refuse on the error count takes part: ``options.atomic``
applies all or nothing, and ``options.max_errors`` promises that nothing is applied when it is
exceeded, so both validate everything first (staging the valid records) and apply in
processing; so does a dry run (``options.dry_run``), which applies all its chunks in one
transaction that is rolled back (pipeline/dry_run.py). Resume stays exact because a
validation that runs again cuts the same chunks under the same numbers (the chunk size is
pinned per batch, see stage_validate), and the apply engine skips the chunks the ledger holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from batchyard.apply import ChunkWork
from batchyard.domain.batches import Batch
from batchyard.domain.errors import PipelineError
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.manifest import ChunkEntry, Manifest, write_manifest
from batchyard.pipeline.results_parts import ChunkRecords
from batchyard.pipeline.stage_process import Processing
from batchyard.pipeline.stage_validate import Staging


def overlaps(batch: Batch) -> bool:
    """Whether the batch's chunks may be applied while it is still being validated."""
    options = batch.options
    if options.atomic or options.dry_run:
        return False
    return options.max_errors is None and options.max_error_rate is None


class EarlyApply:
    """Streams that apply each chunk as soon as validation has checked it."""

    def __init__(self, rec: BatchRecorder, batch: Batch, dataset: Dataset, manifest: Manifest):
        self.rec = rec
        self.processing = Processing(rec, batch, dataset, manifest, during=BatchStatus.VALIDATING)
        self.width = self.processing.streams()
        #: Each chunk with its staging writes, which must succeed before it is applied.
        self.queue: asyncio.Queue[tuple[ChunkWork, Staging] | None] = asyncio.Queue()
        #: Room for the one chunk that may wait in the queue; the end-of-work markers need none.
        self.room = asyncio.Semaphore(1)
        self.streams: asyncio.Task[int] | None = None

    async def staged(self, entry: ChunkEntry, records: ChunkRecords, staging: Staging) -> None:
        """Validation checked ``entry`` (and added it to the manifest): apply its valid
        ``records`` soon (kept, with the rest of ``records``, for its results part), once
        ``staging`` has written what the results read of it.

        Waits while every stream is busy and a chunk already waits. Raises what stopped the
        streams (the target refused a chunk, a cancel), so validation does not read on for
        nothing.
        """
        if self.streams is None:  # the first chunk: only now is there something to apply
            await self.processing.ensure_table()
            self.streams = asyncio.create_task(
                self.processing.apply_in_streams(
                    self._next, streams=self.width, wait=True, ready=self._waiting
                )
            )
        room = asyncio.ensure_future(self.room.acquire())
        await asyncio.wait({room, self.streams}, return_when=asyncio.FIRST_COMPLETED)
        if not room.done():
            room.cancel()
            self.streams.result()
            raise PipelineError("the streams applying chunks stopped before validation ended")
        self.queue.put_nowait((self.processing.work(entry, records), staging))

    async def _next(self) -> ChunkWork | None:
        """The next chunk to apply; None at the end, or when its staging failed or found a
        cancel (validation raises either; a chunk not staged leaves the manifest)."""
        item = await self.queue.get()
        if item is None:
            return None
        self.room.release()
        work, staging = item
        await asyncio.wait({staging})
        if staging.cancelled() or staging.exception() is not None:
            return None
        return work

    def _waiting(self) -> bool:
        """Whether a chunk (or the end of the work) waits in the queue already."""
        return not self.queue.empty()

    async def finish(self) -> None:
        """Apply what is queued, then stop the streams; the error of one is raised here."""
        if self.streams is None:
            return
        for _ in range(self.width):
            self.queue.put_nowait(None)
        await asyncio.wait({self.streams})
        self.streams.result()

    def abandon(self) -> None:
        """Drop what is queued: validation failed, the batch will not apply it."""
        while not self.queue.empty():
            self.queue.get_nowait()
        for _ in range(self.width):
            self.queue.put_nowait(None)


@asynccontextmanager
async def applying_while_validating(
    rec: BatchRecorder, batch: Batch, dataset: Dataset, manifest: Manifest
) -> AsyncIterator[EarlyApply | None]:
    """Apply chunks as validation checks them into ``manifest``, for the length of the block.

    Yields None when the batch does not overlap. On leaving, the streams apply what is queued.
    If validation or a stream failed (the input refused, a cancel) after some chunk was
    applied, the streams finish only the chunks in their hands, and the manifest so far is
    stored: the batch's end then reads from the ledger what was applied, as it does for a
    batch stopped in processing.
    """
    if not overlaps(batch):
        yield None
        return
    early = EarlyApply(rec, batch, dataset, manifest)
    try:
        yield early
        await early.finish()
    except BaseException:
        if early.streams is not None:
            early.abandon()
            with contextlib.suppress(BaseException):
                await asyncio.wait({early.streams})
                early.streams.result()
        if await asyncio.to_thread(rec.ctx.target.committed_counts, batch.id):
            await write_manifest(rec.ctx.blobs, batch.id, manifest)
        raise
