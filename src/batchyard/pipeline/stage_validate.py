"""Validating: read every source as Arrow record batches, check each record, stage the chunks.

Valid records are staged as Arrow IPC chunk files so that processing (possibly on another
machine, possibly after a crash) applies exactly what validation saw, without parsing again.
"""

from __future__ import annotations

import asyncio
import posixpath
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.batches import Batch, LogLevel, Source
from batchyard.domain.errors import TooManyErrors
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import iterate_in_thread, put_bytes, put_table
from batchyard.pipeline.chunks import RECORD_NUMBER, ValidatedChunk
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.formats import detect_format, read_chunks
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.pipeline.validate import validate_chunk

HEAD_BYTES = 64 * 1024
#: How many invalid records are named in the log (all of them are in the results file).
LOGGED_ERRORS = 5


class CancelRequested(Exception):
    """Raised inside a stage when the batch was asked to cancel; the driver finishes the cancel."""


async def raise_if_cancel_requested(rec: BatchRecorder) -> None:
    if (await rec.get()).status == BatchStatus.CANCEL:
        raise CancelRequested


def _name_hint(source: Source) -> str | None:
    if source.url is None:
        return None
    return posixpath.basename(urlsplit(source.url).path) or None


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
    """One validation pass over all of a batch's sources."""

    def __init__(self, rec: BatchRecorder, batch: Batch, dataset: Dataset) -> None:
        self.rec = rec
        self.batch = batch
        self.dataset = dataset
        self.manifest = Manifest()
        self.records_before = 0
        self.errors_logged = 0

    async def run(self) -> Manifest:
        for source_index, source in enumerate(self.batch.sources):
            await self._validate_source(source_index, source)
        await put_bytes(
            self.rec.ctx.blobs, keys.manifest_key(self.batch.id), self.manifest.encode()
        )
        return self.manifest

    async def _validate_source(self, source_index: int, source: Source) -> None:
        ctx, batch = self.rec.ctx, self.batch
        # Opening a remote object is a request: keep it off the event loop.
        reader = await asyncio.to_thread(
            ctx.blobs.open_reader, keys.input_key(batch.id, source_index)
        )
        try:
            head = await asyncio.to_thread(reader.read, HEAD_BYTES)
            await asyncio.to_thread(reader.seek, 0)
            fmt, gzipped = detect_format(head, _name_hint(source), batch.format)
            label = f"{fmt.value}{' (gzip)' if gzipped else ''}"
            await self.rec.log(f"Reading source {source_index + 1}/{len(batch.sources)} as {label}")
            chunks = read_chunks(
                reader,
                fmt,
                gzip=gzipped,
                dataset=self.dataset,
                options=batch.options,
                chunk_bytes=ctx.settings.chunk_bytes,
                max_decompressed_bytes=ctx.settings.max_upload_bytes,
            )
            offset = self.records_before
            async for raw in iterate_in_thread(chunks):
                checked = await asyncio.to_thread(validate_chunk, raw, self.dataset)
                await self._stage(_shift(checked, len(self.manifest.chunks), offset))
                if not self.manifest.input_columns:
                    self.manifest.input_columns = [
                        n for n in raw.table.column_names if n != RECORD_NUMBER
                    ]
        finally:
            reader.close()

    async def _stage(self, chunk: ValidatedChunk) -> None:
        blobs = self.rec.ctx.blobs
        await put_table(blobs, keys.chunk_key(self.batch.id, chunk.index), chunk.valid)
        await put_table(blobs, keys.errors_key(self.batch.id, chunk.index), chunk.errors)
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
        await raise_if_cancel_requested(self.rec)

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
