"""Processing: apply each validated chunk to the target exactly once, counters moving live.

The target's ledger, committed in the same transaction as a chunk's rows, is the truth about
what is applied: after a crash the counts are rebuilt from it and committed chunks are skipped.
How one chunk is claimed and applied, and every way that can end, is the apply engine's
(``batchyard.apply``); this module says which chunks, from where, by how many streams, and
keeps the batch's counters.

Several participants may apply one batch's chunks side by side: the batch's own job (in streams
of its own) and, on a target that shares chunks (PostgreSQL), helper jobs on other workers. The
batch's own job ends with a pass that waits for every chunk still held elsewhere, so when it
moves on, every chunk is committed; a batch that ends early settles with ``chunks_settled``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from batchyard.apply import (
    Applied,
    ChunkApplier,
    ChunkWork,
    NextChunk,
    TableOperation,
    apply_in_streams,
    from_list,
    settle,
)
from batchyard.domain.batches import Batch, Counts, LogLevel
from batchyard.domain.errors import PipelineError
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus
from batchyard.operations.registry import operation_named
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import read_table
from batchyard.pipeline.coalesce import Coalesced
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.manifest import ChunkEntry, Manifest, read_ended_manifest
from batchyard.pipeline.results_parts import ChunkRecords, ResultsParts
from batchyard.targets import Target


def counts_so_far(
    manifest: Manifest, committed: Mapping[int, int], *, ended: bool = False
) -> Counts:
    """Counters as implied by the committed chunks (``committed``: index → records applied).

    Each chunk's invalid records count as failed, and so do its valid records the target
    refused: a chunk's valid records either succeeded or were refused. Once the batch has
    ended (``ended``: cancelled, failed, refused in validation), a chunk that was never applied
    counts its invalid records as failed too, as its results list them (its valid records are
    not processed); and a manifest validation left part way does not know the total.
    """
    processed = successful = failed = 0
    for entry in manifest.chunks:
        succeeded = committed.get(entry.index)
        if succeeded is None:
            if ended:
                processed += entry.invalid_count
                failed += entry.invalid_count
            continue
        processed += entry.record_count
        successful += succeeded
        failed += entry.invalid_count + entry.valid_count - succeeded
    total = manifest.total if manifest.complete or not ended else None
    return Counts(total, processed, successful, failed)


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
        registered = operation_named(batch.operation)
        self.operation = registered.bound(rec.ctx.settings)
        #: Whether the operation writes the dataset's table (insert, upsert, delete).
        self.writes_table = registered.writes_table
        self.applier = ChunkApplier(
            rec.ctx.target,
            batch_id=batch.id,
            dataset=dataset,
            operation=self.operation,
            read_status=self._status,
            during=during,
            settings=batch.options.operation,
            log_sink=self._log,
        )
        rec.on_change.append(self.applier.status.changed)
        #: Records applied per committed chunk, as far as this participant knows (the ledger's
        #: word at start, plus every outcome since): no ledger read per chunk where this job
        #: is the only participant.
        self.committed: dict[int, int] = {}
        #: Whether other participants may commit chunks too (helpers): then counters come
        #: from the ledger, which holds every participant's chunks.
        self.shared = False
        #: Each chunk's part of the results, written as its outcome comes in.
        self.parts = ResultsParts(rec.ctx.blobs, batch, dataset, manifest, rec.results_join)
        #: The parts being written while the next chunks are applied (those of one commit).
        self._parts: set[asyncio.Task[None]] = set()
        #: The counters, written at most every PROGRESS_INTERVAL_SECONDS and at the end.
        self.progress = Coalesced(self._write_progress)

    @property
    def target(self) -> Target:
        return self.rec.ctx.target

    async def _status(self) -> BatchStatus:
        return await self.rec.status()

    async def _log(self, level: LogLevel, message: str) -> None:
        await self.rec.log(message, level)

    async def ensure_table(self) -> None:
        """Create the dataset's table if it is missing (or refuse one of other columns), for an
        operation that writes it: one that only reads the records (http, a plugin's) leaves
        the table alone, so it neither creates an empty one nor fails on its shape."""
        if self.writes_table:
            await asyncio.to_thread(self.target.ensure_table, self.dataset)

    async def run(self) -> Counts:
        """The batch's own job: apply every chunk; the counts once all of them are committed.

        A batch whose every chunk the ledger already holds (applied while validating, the
        default) has nothing left to apply: the ledger's word, read once, is final (a chunk
        is committed once, and no participant commits one the ledger has), so its counts
        come without creating the table, an empty apply pass or a second ledger read.
        """
        committed = await self._committed()
        if self.manifest.chunks and not self._pending(committed):
            return counts_so_far(self.manifest, committed)
        await self.ensure_table()
        if 0 < len(committed) < len(self.manifest.chunks):  # all of them: said when validated
            await self.rec.log(f"{len(committed)} chunk(s) already committed: skipping them")
        if self.batch.options.atomic:
            return counts_so_far(self.manifest, await self._apply_atomically(committed))
        pending = self._pending(committed)
        if pending and self.manifest.applied_in_stream:
            raise PipelineError(
                f"{len(pending)} chunk(s) were validated but never applied, and only their keys"
                " were kept; submit the batch again (the ledger skips what was applied)"
            )
        local_streams, helpers = await self._share(len(pending))
        await self.apply_in_streams(self._works(pending), streams=local_streams, wait=not helpers)
        if helpers:  # wait out the chunks helpers hold; apply any a helper let go of
            pending = self._pending(await self._committed())
            await self.apply_in_streams(self._works(pending), streams=1, wait=True)
        return counts_so_far(self.manifest, await self._committed())

    async def help(self) -> int:
        """A helper job: apply the chunks nobody else holds; how many this helper applied."""
        if self.streams() < 2:  # applied in input order by the batch's own job alone
            return 0
        self.shared = True
        pending = self._pending(await self._committed())
        return await self.apply_in_streams(self._works(pending), streams=1, wait=False)

    def streams(self) -> int:
        """How many chunks load at once, each in its own transaction (one COPY stream each).

        One where the operation needs input order, and one where the target has a single
        writer (SQLite): more streams there would only hold more chunks in memory, waiting.
        """
        if self.operation.keeps_input_order or not self.target.shares_chunks:
            return 1
        return self.batch.options.parallel_streams

    def together(self) -> int:
        """How many chunks one transaction may commit (apply/groups.py).

        Several where the target has a single writer (SQLite), so commits are fewer, for the
        built-in operations (an operation with effects elsewhere is watched chunk by chunk);
        one elsewhere, where participants share chunks and each holds one at a time.
        """
        if self.target.shares_chunks or not isinstance(self.operation, TableOperation):
            return 1
        return self.rec.ctx.settings.commit_chunks

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
        self.shared = True
        await self.rec.log(
            f"Sharing {pending} chunk(s) between this job and {helpers} helper job(s) "
            "that any worker may take"
        )
        return 1, helpers

    async def _committed(self) -> dict[int, int]:
        self.committed = await asyncio.to_thread(self.target.committed_counts, self.batch.id)
        return dict(self.committed)

    def _pending(self, committed: Mapping[int, int]) -> list[ChunkEntry]:
        return [e for e in self.manifest.chunks if e.index not in committed]

    def _works(self, entries: list[ChunkEntry]) -> NextChunk:
        return from_list(self.work(entry) for entry in entries)

    def work(self, entry: ChunkEntry, records: ChunkRecords | None = None) -> ChunkWork:
        """``entry`` as the engine's unit of work: its records as given (kept for its results
        part), or as validation staged them (read only if the chunk still needs applying)."""
        if records is not None:
            self.parts.hold(entry.index, records)
            table = records.valid
            return ChunkWork(entry.index, lambda: table)
        blobs, key = self.rec.ctx.blobs, keys.chunk_key(self.batch.id, entry.index)
        return ChunkWork(entry.index, lambda: read_table(blobs, key))

    async def _report(self, applied: Applied) -> None:
        """Move the counters by what a stream applied (or found done), and make its part.

        Neither is waited for by the stream, which claims its next chunk at once: the counters
        are written by ``progress`` (coalesced), the part while the next chunks are applied.
        Only parts still in the making when as many are due as one commit holds (``together``)
        hold the stream, so at most one commit's records wait for their parts.
        """
        if not self.shared and applied.outcome is not None:
            self.committed[applied.index] = applied.outcome.succeeded
        self.progress.mark()
        if applied.outcome is not None:
            self.parts.settle(applied.outcome)
            while len(self._parts) >= self.together():
                _, self._parts = await asyncio.wait(
                    self._parts, return_when=asyncio.FIRST_COMPLETED
                )
            self._parts.add(asyncio.create_task(self.parts.write(applied.outcome)))

    async def _write_progress(self) -> None:
        """The counters as the committed chunks imply them now (from the ledger when shared).

        While validation goes on, the number of records in all is not known yet.
        """
        if self.shared:
            await self._committed()
        counts = counts_so_far(self.manifest, self.committed)
        if self.during == BatchStatus.VALIDATING:
            counts = Counts(None, counts.processed, counts.successful, counts.failed)
        await self.rec.advance(counts)

    async def _reported(self) -> None:
        """Wait for the last part and write the counters as they stand."""
        if self._parts:
            await asyncio.wait(self._parts)
        await self.progress.flush()

    async def apply_in_streams(
        self,
        next_chunk: NextChunk,
        *,
        streams: int,
        wait: bool,
        ready: Callable[[], bool] | None = None,
    ) -> int:
        """Apply chunks from ``next_chunk`` in ``streams`` streams; how many were applied here.

        ``ready`` says whether a chunk is waiting already (None: ``next_chunk`` never waits).
        Returns (or raises) once every chunk committed here has its counters and part written.
        """
        try:
            applied = await apply_in_streams(
                self.applier,
                next_chunk,
                streams=streams,
                wait=wait,
                on_outcome=self._report,
                together=self.together(),
                ready=ready,
            )
        except BaseException:
            with contextlib.suppress(Exception):  # what stopped the streams is what matters
                await self._reported()
            raise
        await self._reported()
        return applied

    async def _apply_atomically(self, committed: dict[int, int]) -> dict[int, int]:
        if committed:  # the one transaction already committed before a crash
            return committed
        works = [self.work(entry) for entry in self.manifest.chunks]
        outcomes = await self.applier.apply_atomically(works)
        return {o.index: o.succeeded for o in outcomes}


@asynccontextmanager
async def chunks_settled(rec: BatchRecorder) -> AsyncIterator[Counts | None]:
    """The counts the ledger implies, with no chunk of the batch in flight anywhere.

    For a batch that ends (cancelled, failed, refused in validation) while helpers may hold its
    chunks: see ``batchyard.apply.settle``. Counted from the manifest, or the one validation
    left when it stopped part way, as the batch's results are. None when no record was read.
    """
    ctx, batch_id = rec.ctx, rec.batch_id
    manifest = await read_ended_manifest(ctx.blobs, batch_id)
    if manifest is None:
        yield None
        return
    committed = await asyncio.to_thread(ctx.target.committed_counts, batch_id)
    pending = [e.index for e in manifest.chunks if e.index not in committed]
    async with settle(ctx.target, batch_id, pending) as settled:
        yield counts_so_far(manifest, settled, ended=True)
