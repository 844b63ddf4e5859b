"""Validating: read every source as Arrow record batches, check each record, stage the chunks.

Where chunks are applied as validation goes (the default, stage_overlap), each validated chunk
is handed in memory to the stream that applies it: nothing is written and read back but what
the results need (record numbers, keys, per-record errors). Where everything must be validated
before anything is applied (``options.atomic``, ``options.max_errors``), valid records are
staged as Arrow IPC chunk files so that processing (possibly on another machine, possibly after
a crash) applies exactly what validation saw, without parsing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.apply.status_watch import STATUS_FRESH_SECONDS
from batchyard.domain.batches import Batch, BatchOptions, LogLevel, Source
from batchyard.domain.errors import TooManyErrors
from batchyard.domain.reading import Reading
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import stop_signal_for
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import put_bytes, put_table, read_ahead, read_bytes
from batchyard.pipeline.chunks import RECORD_NUMBER, RawChunk, ValidatedChunk, split_records
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.formats import detect_format, read_chunks
from batchyard.pipeline.formats_common import HeaderLimits
from batchyard.pipeline.manifest import ChunkEntry, Manifest, write_manifest
from batchyard.pipeline.originals import name_hint, originals_in
from batchyard.pipeline.patterns import require_runnable_patterns
from batchyard.pipeline.process_memory import hand_back_free_pages
from batchyard.pipeline.results_parts import ChunkRecords, Originals
from batchyard.pipeline.validate import validate_chunk
from batchyard.pipeline.validate_text import FailedCasts

HEAD_BYTES = 64 * 1024
#: A chunk's staging writes and the cancel check after them, under way (see Validation._stage).
Staging = asyncio.Task[None]
#: How many invalid records are named in the log (all of them are in the results file).
LOGGED_ERRORS = 5
#: Chunks validated per hand-back of the C heaps' free pages (``hand_back_free_pages``): the
#: free pages a chunk leaves are mostly taken again by the next one, and the hand-back after
#: each chunk cost a file with 1% invalid records more CPU (page faults) than it saved memory.
TRIM_EVERY = 4


async def raise_if_cancel_requested(rec: BatchRecorder) -> None:
    """Stop validation between chunks once the batch was asked to cancel (CancelRequested):
    at the first chunk staged more than ``STATUS_FRESH_SECONDS`` after the cancel."""
    signal = stop_signal_for(await rec.recent_status(STATUS_FRESH_SECONDS), None)
    if signal is not None:
        raise signal


def _shift(chunk: ValidatedChunk, index: int, offset: int) -> ValidatedChunk:
    """Renumber a source's chunk into the whole batch's record numbering and chunk order."""
    if offset == 0:
        return ValidatedChunk(
            index, chunk.first_record, chunk.record_count, chunk.valid, chunk.errors
        )
    valid = chunk.valid.set_column(
        chunk.valid.schema.get_field_index(RECORD_NUMBER),
        RECORD_NUMBER,
        pc.add(chunk.valid[RECORD_NUMBER], offset),
    )
    errors = chunk.errors.set_column(
        0, "record_number", pc.add(chunk.errors["record_number"], offset)
    )
    return ValidatedChunk(index, chunk.first_record + offset, chunk.record_count, valid, errors)


class Validation:
    """One validation pass over all of a batch's sources.

    ``on_staged`` hears of each chunk, with its records, once it is in the manifest (to apply
    it while validation reads on), and of the writes that stage it (to apply it only once they
    succeeded); ``manifest`` is the one to fill.
    """

    def __init__(
        self,
        rec: BatchRecorder,
        batch: Batch,
        dataset: Dataset,
        manifest: Manifest | None = None,
        on_staged: Callable[[ChunkEntry, ChunkRecords, Staging], Awaitable[None]] | None = None,
    ) -> None:
        self.rec = rec
        self.batch = batch
        self.dataset = dataset
        self.reading = Reading.of(dataset, batch.options, batch.operation)
        self.manifest = manifest if manifest is not None else Manifest()
        self.on_staged = on_staged
        self.records_before = 0
        self.errors_logged = 0
        self.chunk_bytes = rec.ctx.settings.chunk_bytes
        self.chunk_records: int | None = rec.ctx.settings.chunk_records
        #: The last chunk's staging writes and cancel check, under way while the next chunk
        #: is validated (one chunk at a time; see ``_stage``).
        self._behind: asyncio.Task[None] | None = None
        #: Columns whose whole cast failed on the last chunk: the next skips it (validate_text).
        self.failed_casts = FailedCasts()

    async def run(self) -> Manifest:
        require_runnable_patterns(self.dataset)
        self.chunk_bytes, self.chunk_records = await self._pinned_chunking()
        try:
            for source_index, source in enumerate(self.batch.sources):
                await self._validate_source(source_index, source)
            await self._caught_up()
            self.manifest.complete = True
            check_error_rate(self.batch.options, self.manifest, final=True)
        except BaseException:
            await self._behind_settled()  # its writes land before the partial manifest names it
            await self._keep_partial()
            raise
        await write_manifest(self.rec.ctx.blobs, self.batch.id, self.manifest)
        return self.manifest

    async def _keep_partial(self) -> None:
        """Store the chunks staged so far, so that the batch's results name their records."""
        if not self.manifest.chunks:
            return
        data = self.manifest.encode()
        key = keys.partial_manifest_key(self.batch.id)
        with contextlib.suppress(Exception):  # the error being raised says more than this one
            await put_bytes(self.rec.ctx.blobs, key, data)

    async def _validate_source(self, source_index: int, source: Source) -> None:
        ctx, batch = self.rec.ctx, self.batch
        # Opening a remote object is a request: keep it off the event loop.
        reader = await asyncio.to_thread(
            ctx.blobs.open_reader, keys.input_key(batch.id, source_index)
        )
        try:
            head = await asyncio.to_thread(reader.read, HEAD_BYTES)
            await asyncio.to_thread(reader.seek, 0)
            fmt, gzipped = detect_format(head, name_hint(source), batch.format)
            label = f"{fmt.value}{' (gzip)' if gzipped else ''}"
            await self.rec.log(f"Reading source {source_index + 1}/{len(batch.sources)} as {label}")
            if batch.format is None and source_index == 0:
                await self.rec.detected(fmt)
            chunks = read_chunks(
                reader,
                fmt,
                gzip=gzipped,
                dataset=self.dataset,
                options=batch.options,
                operation=batch.operation,
                chunk_bytes=self.chunk_bytes,
                max_decompressed_bytes=ctx.settings.max_upload_bytes,
                max_record_bytes=ctx.settings.max_record_bytes,
                header_limits=HeaderLimits(
                    ctx.settings.max_header_columns, ctx.settings.max_header_bytes
                ),
            )
            offset = self.records_before
            async with contextlib.aclosing(read_ahead(chunks)) as raws:
                async for raw in raws:
                    if not self.manifest.input_columns:  # known before a results part is made
                        self.manifest.input_columns = [
                            n for n in raw.table.column_names if n != RECORD_NUMBER
                        ]
                        self.manifest.input_format = fmt.value
                    await self._validate_pieces(raw, offset)
        finally:
            reader.close()

    async def _validate_pieces(self, raw: RawChunk, offset: int) -> None:
        """Validate and stage ``raw`` as chunks of at most ``chunk_records`` records.

        Each piece is cut, checked and renumbered in a worker thread, one piece at a time, so
        the per-record work on failing records (their messages) never holds more than one
        piece, and the event loop is never the thread doing it.
        """
        pieces = split_records(raw, self.chunk_records)

        def next_checked() -> tuple[ValidatedChunk, RawChunk] | None:
            piece = next(pieces, None)
            if piece is None:
                return None
            checked = validate_chunk(piece, self.dataset, self.reading, self.failed_casts)
            index = len(self.manifest.chunks)
            shifted = _shift(checked, index, offset)
            if index % TRIM_EVERY == 0:
                hand_back_free_pages()
            return shifted, piece

        while (checked := await asyncio.to_thread(next_checked)) is not None:
            chunk, piece = checked
            await self._stage(chunk, functools.partial(originals_in, piece, offset))

    async def _pinned_chunking(self) -> tuple[int, int | None]:
        """The chunk size (bytes, records) of this batch's first validation run, recorded for
        any later one.

        Chunks may be applied while validation goes on, so a validation that runs again after a
        crash, maybe on a worker configured otherwise, must cut the input into the very same
        chunks: the ledger knows them by number. A batch whose first run predates the record
        limit keeps being cut by bytes only.
        """
        blobs, key = self.rec.ctx.blobs, keys.chunking_key(self.batch.id)
        if await blobs.exists(key):
            pinned = json.loads(await read_bytes(blobs, key))
            return int(pinned["chunk_bytes"]), pinned.get("chunk_records")
        chunking = {"chunk_bytes": self.chunk_bytes, "chunk_records": self.chunk_records}
        await put_bytes(blobs, key, json.dumps(chunking).encode())
        return self.chunk_bytes, self.chunk_records

    async def _stage(self, chunk: ValidatedChunk, originals: Originals) -> None:
        """Stage ``chunk`` and hand it on; ``originals`` gives what was sent of its records.

        Its tables are written, and the batch's status read for a cancel, while the next chunk
        is validated: neither holds the hand-over, which in queue mode is the critical path
        (about a third of it was these writes, measured at 1M rows). Whoever applies the chunk
        waits for its writes first. A failed write takes the chunk out of the manifest, as if
        it had never been read; that error, or a cancel, is raised at the next chunk or at the
        end, before any manifest that names the chunk is written.
        """
        await self._caught_up()
        staged = chunk.valid
        if self.on_staged is not None:  # applied from memory: keep what the results read
            staged = chunk.valid.select([*self.dataset.primary_key, RECORD_NUMBER])
            self.manifest.applied_in_stream = True
        self._behind = asyncio.create_task(self._store(chunk.index, staged, chunk.errors))
        entry = ChunkEntry(
            index=chunk.index,
            first_record=chunk.first_record,
            record_count=chunk.record_count,
            valid_count=chunk.valid.num_rows,
            invalid_count=chunk.errors.num_rows,
        )
        self.manifest.chunks.append(entry)
        await self._log_first_errors(chunk.errors)
        self.records_before = entry.first_record + entry.record_count - 1
        self._check_error_budget()
        if self.on_staged is not None:
            records = ChunkRecords(chunk.valid, chunk.errors, originals)
            await self.on_staged(entry, records, self._behind)

    async def _store(self, index: int, staged: pa.Table, errors: pa.Table) -> None:
        """Write one chunk's staged records and errors, then stop if a cancel was asked for.

        A chunk without an invalid record has no errors object: its manifest entry says so
        (``invalid_count`` 0, see results_parts.staged_errors), and most chunks of a clean
        input would otherwise cost one write (an S3 PUT) each for an empty table.
        """
        blobs = self.rec.ctx.blobs
        writes = [put_table(blobs, keys.chunk_key(self.batch.id, index), staged)]
        if errors.num_rows:
            writes.append(put_table(blobs, keys.errors_key(self.batch.id, index), errors))
        written = await asyncio.gather(*writes, return_exceptions=True)
        for outcome in written:  # both writes over before either error is raised
            if isinstance(outcome, BaseException):
                raise _Unstaged(index, outcome)
        await raise_if_cancel_requested(self.rec)

    async def _caught_up(self) -> None:
        """Wait for the last chunk's writes and cancel check; raise what stopped them."""
        error = await self._behind_settled()
        if error is not None:
            raise error

    async def _behind_settled(self) -> BaseException | None:
        """Wait for the last chunk's writes and cancel check; what stopped them, if anything.

        A chunk whose writes failed or were cancelled leaves the manifest: whoever was to apply
        it saw them fail (``staged`` in stage_overlap) and did not.
        """
        behind = self._behind
        if behind is None:
            return None
        await asyncio.wait({behind})  # a cancel of ours leaves it running, to wait for again
        self._behind = None
        if behind.cancelled():
            self._forget(self.manifest.chunks[-1].index)
            return asyncio.CancelledError()
        error = behind.exception()
        if isinstance(error, _Unstaged):
            self._forget(error.index)
            return error.error
        return error

    def _forget(self, index: int) -> None:
        """Take the chunk that could not be staged out of the manifest (it was not applied)."""
        if self.manifest.chunks and self.manifest.chunks[-1].index == index:
            self.manifest.chunks.pop()

    async def _log_first_errors(self, errors: pa.Table) -> None:
        """Put the first few invalid records in the log, so a reader sees at once what is wrong."""
        room = LOGGED_ERRORS - self.errors_logged
        for row in errors.slice(0, max(room, 0)).to_pylist():
            message = f"Invalid record {row['record_number']}: {row['code']}: {row['message']}"
            await self.rec.log(message, LogLevel.WARNING)
            self.errors_logged += 1

    def _check_error_budget(self) -> None:
        invalid = self.manifest.invalid
        options = self.batch.options
        if options.atomic and invalid:
            raise TooManyErrors(
                f"{invalid} invalid record(s) found and options.atomic is set: nothing was applied",
                details={"invalid": invalid},
            )
        if options.max_errors is not None and invalid > options.max_errors:
            raise TooManyErrors(
                f"more than options.max_errors={options.max_errors} invalid records "
                f"({invalid} so far): nothing was applied",
                details={"invalid": invalid},
            )
        check_error_rate(options, self.manifest, final=False)


class _Unstaged(Exception):
    """A chunk's staging write failed (the storage's error is the cause)."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


#: Records read before options.max_error_rate is judged on the records so far: a rate over
#: the first few records says little about the whole input.
RATE_MIN_RECORDS = 1000


def check_error_rate(options: BatchOptions, manifest: Manifest, *, final: bool) -> None:
    """TooManyErrors when invalid records exceed ``options.max_error_rate`` of those read.

    Judged on every record once validation has read them all (``final``), and before that
    after each chunk once at least RATE_MIN_RECORDS records were read, so that a hopeless
    input stops early instead of being read to its end.
    """
    rate, read = options.max_error_rate, manifest.total
    if rate is None or not read or (not final and read < RATE_MIN_RECORDS):
        return
    invalid = manifest.invalid
    if invalid > rate * read:
        raise TooManyErrors(
            f"{invalid} of {read} records invalid ({invalid / read:.2%}), more than "
            f"options.max_error_rate={rate:g}: nothing was applied",
            details={"invalid": invalid, "read": read},
        )
