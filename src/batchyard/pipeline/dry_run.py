"""A dry run (``options.dry_run``): every chunk applied in a transaction that is rolled back.

A real batch's chunk outcomes live in the target's ledger, committed with the chunk's rows. A
dry run commits nothing, so what each chunk would have done is kept in staged blobs instead, as
soon as the engine reports it (before the rollback): the results files and the counters ask
these outcomes the same two questions they ask the ledger (``OutcomeSource``), and read the
same answers a real run into the same table would give. Nothing here touches the ledger, so
exactly-once for real batches is the engine's as before.

A dry run validates everything first (its valid records are staged, as for ``options.atomic``)
and then applies all its chunks in one transaction, so a key repeated in two chunks is a
duplicate as in a real run. After a crash it starts again from the first chunk: the rolled
back transaction left nothing to resume from.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from batchyard.domain.batches import Batch, Counts
from batchyard.domain.outcomes import ERRORS_SCHEMA, ChunkOutcome, OutcomeSource
from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import put_bytes, put_table, read_table
from batchyard.pipeline.context import BatchRecorder, PipelineContext
from batchyard.pipeline.manifest import Manifest, read_ended_manifest
from batchyard.pipeline.stage_process import Processing, chunks_settled, counts_so_far
from batchyard.storage.blobs import BlobStore


class DryRunOutcomes:
    """A dry run's chunk outcomes in staged blobs: each chunk's refused records (Arrow IPC)
    and one small JSON object of records that would succeed per chunk. The sync readers are
    for worker threads, like the ledger's."""

    def __init__(self, blobs: BlobStore, batch_id: str) -> None:
        self.blobs = blobs
        self.batch_id = batch_id
        self.counted: dict[int, int] = {}

    def _prefix(self) -> str:
        return f"{keys.batch_prefix(self.batch_id)}/staged/dry-run"

    def _failures_key(self, index: int) -> str:
        return f"{self._prefix()}/{index}.arrow"

    def _counts_key(self) -> str:
        return f"{self._prefix()}/counts.json"

    async def clear(self) -> None:
        """Forget the outcomes of an earlier attempt (a crash mid dry run starts over)."""
        self.counted = {}
        await self.blobs.delete_prefix(self._prefix())

    async def put(self, outcome: ChunkOutcome) -> None:
        """Keep ``outcome``: its refused records first, then the count that makes it known."""
        await put_table(self.blobs, self._failures_key(outcome.index), outcome.failures)
        self.counted[outcome.index] = outcome.succeeded
        body = json.dumps({str(i): n for i, n in self.counted.items()}).encode()
        await put_bytes(self.blobs, self._counts_key(), body)

    def committed_counts(self, batch_id: str) -> dict[int, int]:
        try:
            stored = json.loads(bytes(self.blobs.read_whole(self._counts_key())))
        except FileNotFoundError:
            return {}
        return {int(index): int(count) for index, count in stored.items()}

    def chunk_outcome(self, batch_id: str, chunk_index: int) -> ChunkOutcome | None:
        succeeded = self.committed_counts(batch_id).get(chunk_index)
        if succeeded is None:
            return None
        failures = read_table(self.blobs, self._failures_key(chunk_index))
        return ChunkOutcome(chunk_index, succeeded, failures.cast(ERRORS_SCHEMA))


def outcome_source(ctx: PipelineContext, batch: Batch) -> OutcomeSource:
    """Where ``batch``'s chunk outcomes are: a dry run's blobs, else the target's ledger."""
    if batch.options.dry_run:
        return DryRunOutcomes(ctx.blobs, batch.id)
    return ctx.target


async def rehearse_batch(
    rec: BatchRecorder, batch: Batch, dataset: Dataset, manifest: Manifest
) -> Counts:
    """Apply every chunk of a dry run and roll it all back; the counts a real run would have.

    Counters move chunk by chunk, as in a real run; a cancel stops it at a chunk boundary.
    """
    outcomes = DryRunOutcomes(rec.ctx.blobs, batch.id)
    await outcomes.clear()
    processing = Processing(rec, batch, dataset, manifest)
    await processing.ensure_table()

    async def heard(outcome: ChunkOutcome) -> None:
        await outcomes.put(outcome)
        await rec.advance(counts_so_far(manifest, outcomes.counted))

    works = [processing.work(entry) for entry in manifest.chunks]
    await processing.applier.rehearse(works, heard)
    return counts_so_far(manifest, outcomes.counted)


@asynccontextmanager
async def outcomes_settled(rec: BatchRecorder) -> AsyncIterator[Counts | None]:
    """``chunks_settled`` for any batch: a dry run's counts come from its own outcomes, and
    nobody else holds its chunks (it has no helpers), so there is nothing to wait for."""
    batch = await rec.get()
    if not batch.options.dry_run:
        async with chunks_settled(rec) as counts:
            yield counts
        return
    manifest = await read_ended_manifest(rec.ctx.blobs, batch.id)
    if manifest is None:
        yield None
        return
    source = DryRunOutcomes(rec.ctx.blobs, batch.id)
    committed = await asyncio.to_thread(source.committed_counts, batch.id)
    yield counts_so_far(manifest, committed, ended=True)
