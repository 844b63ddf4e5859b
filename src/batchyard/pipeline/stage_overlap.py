"""Applying chunks while validation goes on, so that parsing and the database work side by side.

Validation stages one chunk after another; each staged chunk is handed to streams that apply
it at once, in input order as they arrive (``options.parallel_streams`` of them for inserts, one
for upsert and delete, whose repeated-key rules need input order). When validation ends, the
streams finish the chunks they hold and take no more: processing applies whatever is left, with
every stream (and, in queue mode, every helper) it has.

Only a batch that validation cannot refuse on the error count takes part: ``options.atomic``
applies all or nothing, and ``options.max_errors`` promises that nothing is applied when it is
exceeded, so both wait for validation to finish. Resume stays exact because a validation that
runs again stages the same chunks under the same numbers (the chunk size is pinned per batch,
see stage_validate), and chunks the ledger holds are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from batchyard.domain.batches import Batch
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.manifest import ChunkEntry, Manifest, write_manifest
from batchyard.pipeline.stage_process import Processing


def overlaps(batch: Batch) -> bool:
    """Whether the batch's chunks may be applied while it is still being validated."""
    options = batch.options
    return not options.atomic and options.max_errors is None and options.max_error_rate is None


class EarlyApply:
    """Streams that apply each chunk as soon as validation has staged it."""

    def __init__(self, rec: BatchRecorder, batch: Batch, dataset: Dataset, manifest: Manifest):
        self.rec = rec
        self.dataset = dataset
        self.processing = Processing(rec, batch, dataset, manifest, during=BatchStatus.VALIDATING)
        self.width = self.processing.streams()
        self.queue: asyncio.Queue[ChunkEntry | None] = asyncio.Queue()
        self.streams: asyncio.Task[int] | None = None

    async def staged(self, entry: ChunkEntry) -> None:
        """Validation staged ``entry`` (and added it to the manifest): apply it soon.

        Raises what stopped the streams (the target refused a chunk, a cancel), so validation
        does not read on for nothing.
        """
        if self.streams is None:  # the first chunk: only now is there something to apply
            await asyncio.to_thread(self.rec.ctx.target.ensure_table, self.dataset)
            self.streams = asyncio.create_task(
                self.processing.apply_in_streams(self._next, streams=self.width, wait=True)
            )
        elif self.streams.done():
            self.streams.result()
        self.queue.put_nowait(entry)

    async def _next(self) -> ChunkEntry | None:
        return await self.queue.get()

    async def finish(self) -> None:
        """Leave the chunks not yet taken to processing.

        The streams finish the chunks in their hands first; the error of one is raised here.
        """
        if self.streams is None:
            return
        while not self.queue.empty():
            self.queue.get_nowait()
        for _ in range(self.width):
            self.queue.put_nowait(None)
        await asyncio.wait({self.streams})
        self.streams.result()


@asynccontextmanager
async def applying_while_validating(
    rec: BatchRecorder, batch: Batch, dataset: Dataset, manifest: Manifest
) -> AsyncIterator[EarlyApply | None]:
    """Apply chunks as validation stages them into ``manifest``, for the length of the block.

    Yields None when the batch does not overlap. On leaving, the streams finish the chunks in
    their hands. If validation or a stream failed (the input refused, a cancel) after some chunk
    was applied, the manifest so far is stored: the batch's end then reads from the ledger what
    was applied, as it does for a batch stopped in processing.
    """
    if not overlaps(batch):
        yield None
        return
    early = EarlyApply(rec, batch, dataset, manifest)
    try:
        yield early
        await early.finish()
    except BaseException:
        with contextlib.suppress(BaseException):
            await early.finish()
        if await asyncio.to_thread(rec.ctx.target.committed_counts, batch.id):
            await write_manifest(rec.ctx.blobs, batch.id, manifest)
        raise
