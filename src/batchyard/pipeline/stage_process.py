"""Processing: apply each staged chunk to the target exactly once, counters moving live.

The target's ledger, committed in the same transaction as a chunk's rows, is the truth about
what is applied: after a crash the counts are rebuilt from it and committed chunks are skipped.
"""

from __future__ import annotations

import asyncio

import pyarrow as pa

from batchyard.domain.batches import Batch, Counts, Operation
from batchyard.domain.errors import PipelineError
from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import read_table
from batchyard.pipeline.chunks import ChunkOutcome
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.pipeline.stage_validate import CancelRequested, raise_if_cancel_requested
from batchyard.targets import Target


def counts_so_far(manifest: Manifest, committed: dict[int, ChunkOutcome]) -> Counts:
    """Counters as implied by the committed chunks.

    Each chunk's invalid records count as failed.
    """
    processed = successful = failed = 0
    for entry in manifest.chunks:
        outcome = committed.get(entry.index)
        if outcome is None:
            continue
        processed += entry.record_count
        successful += outcome.succeeded
        failed += entry.invalid_count + outcome.failures.num_rows
    return Counts(manifest.total, processed, successful, failed)


class Processing:
    """Applies a batch's chunks in input order, one target transaction per chunk."""

    def __init__(self, rec: BatchRecorder, batch: Batch, dataset: Dataset, manifest: Manifest):
        self.rec = rec
        self.batch = batch
        self.dataset = dataset
        self.manifest = manifest

    @property
    def target(self) -> Target:
        return self.rec.ctx.target

    async def run(self) -> Counts:
        await asyncio.to_thread(self.target.ensure_table, self.dataset)
        committed = await asyncio.to_thread(self.target.committed_chunks, self.batch.id)
        if committed:
            await self.rec.log(f"Resuming: {len(committed)} chunk(s) already committed")
        if self.batch.options.atomic:
            committed = await self._apply_atomically(committed)
        else:
            await self._apply_in_streams(committed)
        return counts_so_far(self.manifest, committed)

    def _streams(self) -> int:
        """How many chunks load at once, each in its own transaction (one COPY stream each).

        Only inserts go in parallel: upsert and delete keep input order, on which their rules
        for a key repeated in different chunks (last upsert wins, first delete succeeds) rely.
        """
        if self.batch.operation != Operation.INSERT:
            return 1
        return self.batch.options.parallel_streams

    async def _apply_in_streams(self, committed: dict[int, ChunkOutcome]) -> None:
        """Streams stop at chunk boundaries, never mid-chunk.

        A chunk's transaction runs in a thread that cannot be interrupted, so when one stream
        stops (cancel, error) or this task is cancelled, the others finish the chunk they hold
        and take no other: every chunk that commits is counted before this returns.
        """
        pending = iter([e for e in self.manifest.chunks if e.index not in committed])
        progress = asyncio.Lock()
        stopping = asyncio.Event()

        async def stream() -> None:
            try:
                for entry in pending:  # shared: each stream takes the next chunk left
                    if stopping.is_set():
                        return
                    await raise_if_cancel_requested(self.rec)
                    outcome = await asyncio.to_thread(self._apply_one, entry)
                    async with progress:  # counters only move forward
                        committed[entry.index] = outcome
                        await self.rec.counts(counts_so_far(self.manifest, committed))
            except BaseException:
                stopping.set()
                raise

        streams = [asyncio.create_task(stream()) for _ in range(self._streams())]
        try:
            outcomes = await asyncio.shield(asyncio.gather(*streams, return_exceptions=True))
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.wait(streams)  # the chunks in flight commit (and are counted) first
            raise
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise next((e for e in errors if isinstance(e, CancelRequested)), errors[0])

    def _load(self, entry: ChunkEntry) -> pa.Table:
        return read_table(self.rec.ctx.blobs, keys.chunk_key(self.batch.id, entry.index))

    def _apply_one(self, entry: ChunkEntry) -> ChunkOutcome:
        table = self._load(entry)
        with self.target.transaction() as tx:
            return tx.apply_chunk(
                self.dataset, self.batch.id, entry.index, self.batch.operation, table
            )

    async def _apply_atomically(
        self, committed: dict[int, ChunkOutcome]
    ) -> dict[int, ChunkOutcome]:
        if committed:  # the one transaction already committed before a crash
            return committed
        await raise_if_cancel_requested(self.rec)
        outcomes = await asyncio.to_thread(self._apply_all)
        return {o.index: o for o in outcomes}

    def _apply_all(self) -> list[ChunkOutcome]:
        outcomes: list[ChunkOutcome] = []
        with self.target.transaction() as tx:
            for entry in self.manifest.chunks:
                outcome = tx.apply_chunk(
                    self.dataset,
                    self.batch.id,
                    entry.index,
                    self.batch.operation,
                    self._load(entry),
                )
                if outcome.failures.num_rows:
                    first = outcome.failures.slice(0, 1).to_pylist()[0]
                    raise AtomicRollback(
                        f"options.atomic: record {first['record_number']} was refused "
                        f"({first['code']}: {first['message']}); nothing was applied"
                    )
                outcomes.append(outcome)
        return outcomes


class AtomicRollback(PipelineError):
    """An atomic batch had a record the target refused, so its one transaction was rolled back."""

    code = "atomic_rollback"
