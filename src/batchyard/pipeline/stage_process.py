"""Processing: apply each staged chunk to the target exactly once, counters moving live.

The target's ledger, committed in the same transaction as a chunk's rows, is the truth about
what is applied: after a crash the counts are rebuilt from it and committed chunks are skipped.

Several participants may apply one batch's chunks side by side: the batch's own job (in threads
of its own) and, on a target that shares chunks (PostgreSQL), helper jobs on other workers. A
participant takes a chunk under a lock the others only try, so they pass on to the next chunk
instead of waiting; before it applies the chunk it checks that the batch is still processing.
The batch's own job ends with a pass that waits for every chunk still held elsewhere, so when it
moves on, every chunk is committed; a batch that ends early settles with ``chunks_settled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import pyarrow as pa

from batchyard.domain.batches import Batch, Counts, Operation
from batchyard.domain.errors import PipelineError
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import read_table
from batchyard.pipeline.chunks import ChunkOutcome
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.manifest import ChunkEntry, Manifest, read_manifest
from batchyard.pipeline.stage_validate import CancelRequested, raise_if_cancel_requested
from batchyard.targets import Target

#: Seconds a chunk's thread waits for the event loop to read the batch's status.
_STATUS_TIMEOUT = 60.0


def counts_so_far(manifest: Manifest, committed: Mapping[int, int]) -> Counts:
    """Counters as implied by the committed chunks (``committed``: index → records applied).

    Each chunk's invalid records count as failed, and so do its valid records the target
    refused: a chunk's valid records either succeeded or were refused.
    """
    processed = successful = failed = 0
    for entry in manifest.chunks:
        succeeded = committed.get(entry.index)
        if succeeded is None:
            continue
        processed += entry.record_count
        successful += succeeded
        failed += entry.invalid_count + entry.valid_count - succeeded
    return Counts(manifest.total, processed, successful, failed)


class BatchLeftProcessing(Exception):
    """The batch moved on (failed, deleted…) while chunks were being taken: take no more."""


#: Where a stream gets its next chunk: None when there is none left for it.
NextChunk = Callable[[], Awaitable[ChunkEntry | None]]


def from_list(entries: list[ChunkEntry]) -> NextChunk:
    """Chunks from a fixed list, shared by every stream that calls the result."""
    chunks = iter(entries)

    async def next_chunk() -> ChunkEntry | None:
        return next(chunks, None)

    return next_chunk


class Processing:
    """Applies a batch's chunks, one target transaction per chunk (or one for all: atomic)."""

    def __init__(
        self,
        rec: BatchRecorder,
        batch: Batch,
        dataset: Dataset,
        manifest: Manifest,
        *,
        during: BatchStatus = BatchStatus.PROCESSING,
    ):
        self.rec = rec
        self.batch = batch
        self.dataset = dataset
        self.manifest = manifest
        #: The status the batch must still be in for a chunk to be applied (validating when
        #: chunks are applied while validation goes on; the manifest then still grows).
        self.during = during

    @property
    def target(self) -> Target:
        return self.rec.ctx.target

    async def run(self) -> Counts:
        """The batch's own job: apply every chunk; the counts once all of them are committed."""
        await asyncio.to_thread(self.target.ensure_table, self.dataset)
        committed = await self._committed()
        if 0 < len(committed) < len(self.manifest.chunks):  # all of them: said when validated
            await self.rec.log(f"{len(committed)} chunk(s) already committed: skipping them")
        if self.batch.options.atomic:
            return counts_so_far(self.manifest, await self._apply_atomically(committed))
        pending = self._pending(committed)
        local_streams, helpers = await self._share(len(pending))
        await self.apply_in_streams(from_list(pending), streams=local_streams, wait=not helpers)
        if helpers:  # wait out the chunks helpers hold; apply any a helper let go of
            pending = self._pending(await self._committed())
            await self.apply_in_streams(from_list(pending), streams=1, wait=True)
        return counts_so_far(self.manifest, await self._committed())

    async def help(self) -> int:
        """A helper job: apply the chunks nobody else holds; how many this helper applied."""
        if self.streams() < 2:  # applied in input order by the batch's own job alone
            return 0
        pending = self._pending(await self._committed())
        return await self.apply_in_streams(from_list(pending), streams=1, wait=False)

    def streams(self) -> int:
        """How many chunks load at once, each in its own transaction (one COPY stream each).

        Only inserts go in parallel: upsert and delete keep input order, on which their rules
        for a key repeated in different chunks (last upsert wins, first delete succeeds) rely.
        """
        if self.batch.operation != Operation.INSERT:
            return 1
        return self.batch.options.parallel_streams

    async def _share(self, pending: int) -> tuple[int, int]:
        """(streams in this job, helper jobs on the queue) for ``pending`` chunks.

        Where other workers can help, the batch's streams become jobs that any worker takes:
        this job is one stream, helper jobs are the rest. Elsewhere this job runs them all.
        """
        streams = min(self.streams(), max(pending, 1))
        request = self.rec.ctx.request_helpers
        if streams < 2 or request is None or not self.target.shares_chunks:
            return streams, 0
        helpers = await request(self.batch.id, streams - 1)
        if not helpers:
            return streams, 0
        await self.rec.log(
            f"Sharing {pending} chunk(s) between this job and {helpers} helper job(s) "
            "that any worker may take"
        )
        return 1, helpers

    async def _committed(self) -> dict[int, int]:
        return await asyncio.to_thread(self.target.committed_counts, self.batch.id)

    def _pending(self, committed: Mapping[int, int]) -> list[ChunkEntry]:
        return [e for e in self.manifest.chunks if e.index not in committed]

    async def _report(self) -> None:
        """Counters from the ledger, which holds every participant's chunks, not just ours.

        While validation goes on, the number of records in all is not known yet.
        """
        counts = counts_so_far(self.manifest, await self._committed())
        if self.during == BatchStatus.VALIDATING:
            counts = Counts(None, counts.processed, counts.successful, counts.failed)
        await self.rec.advance(counts)

    async def apply_in_streams(self, next_chunk: NextChunk, *, streams: int, wait: bool) -> int:
        """Apply chunks from ``next_chunk`` in ``streams`` streams; how many were applied here.

        Without ``wait`` a chunk another participant holds is passed over. Streams stop at chunk
        boundaries, never mid-chunk: a chunk's transaction runs in a thread that cannot be
        interrupted, so when one stream stops (cancel, error) or this task is cancelled, the
        others finish the chunk they hold and take no other, and each is reported first.
        """
        stopping = asyncio.Event()
        still_processing = self._status_check(asyncio.get_running_loop())
        applied = 0

        async def stream() -> None:
            nonlocal applied
            try:
                while (entry := await next_chunk()) is not None:  # the next chunk left
                    if stopping.is_set():
                        return
                    await raise_if_cancel_requested(self.rec)
                    if await asyncio.to_thread(self._apply_one, entry, wait, still_processing):
                        applied += 1
                        await self._report()
            except BaseException:
                stopping.set()
                raise

        tasks = [asyncio.create_task(stream()) for _ in range(streams)]
        try:
            outcomes = await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.wait(tasks)  # the chunks in flight commit (and are reported) first
            raise
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise next((e for e in errors if isinstance(e, CancelRequested)), errors[0])
        return applied

    def _status_check(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """A check a chunk's thread runs once it holds the chunk, before applying it.

        Taken under the chunk's lock, so a batch that ended and then waited for its chunks'
        locks (chunks_settled) can be sure nobody applies one of them afterwards.
        """

        def check() -> None:
            status = (
                asyncio.run_coroutine_threadsafe(self.rec.get(), loop)
                .result(_STATUS_TIMEOUT)
                .status
            )
            if status in (BatchStatus.CANCEL, BatchStatus.CANCELLING):
                raise CancelRequested
            if status != self.during:
                raise BatchLeftProcessing(status.value)

        return check

    def _apply_one(self, entry: ChunkEntry, wait: bool, check: Callable[[], None]) -> bool:
        """Apply one chunk unless someone holds it (``wait`` unset) or did it; whether we did."""
        loaded = False

        def load() -> pa.Table:  # called only when the ledger says the chunk is still to do
            nonlocal loaded
            check()
            loaded = True
            return self._load(entry)

        with self.target.transaction() as tx:
            if not tx.lock_chunk(self.batch.id, entry.index, wait=wait):
                return False
            tx.apply_chunk(self.dataset, self.batch.id, entry.index, self.batch.operation, load)
        return loaded

    def _load(self, entry: ChunkEntry) -> pa.Table:
        return read_table(self.rec.ctx.blobs, keys.chunk_key(self.batch.id, entry.index))

    async def _apply_atomically(self, committed: dict[int, int]) -> dict[int, int]:
        if committed:  # the one transaction already committed before a crash
            return committed
        await raise_if_cancel_requested(self.rec)
        outcomes = await asyncio.to_thread(self._apply_all)
        return {o.index: o.succeeded for o in outcomes}

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


@asynccontextmanager
async def chunks_settled(rec: BatchRecorder) -> AsyncIterator[Counts | None]:
    """The counts the ledger implies, with no chunk of the batch in flight anywhere.

    For a batch that ends (cancelled, failed) while helpers may hold its chunks: entering waits
    for every chunk being applied, and until the block exits nobody can start another; a chunk
    taken afterwards meets the batch's new status and is not applied. So the counts read here,
    and the status set inside the block, stay true. None when the batch never got as far as
    processing (no manifest: no chunk can have been applied).
    """
    ctx, batch_id = rec.ctx, rec.batch_id
    if not await ctx.blobs.exists(keys.manifest_key(batch_id)):
        yield None
        return
    manifest = await read_manifest(ctx.blobs, batch_id)
    committed = await asyncio.to_thread(ctx.target.committed_counts, batch_id)
    pending = [e.index for e in manifest.chunks if e.index not in committed]
    holding = ctx.target.holding_chunks(batch_id, pending)
    await asyncio.to_thread(holding.__enter__)
    try:
        committed = await asyncio.to_thread(ctx.target.committed_counts, batch_id)
        yield counts_so_far(manifest, committed)
    finally:
        await asyncio.to_thread(holding.__exit__, None, None, None)


class AtomicRollback(PipelineError):
    """An atomic batch had a record the target refused, so its one transaction was rolled back."""

    code = "atomic_rollback"
