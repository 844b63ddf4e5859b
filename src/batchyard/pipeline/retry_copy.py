"""Copying a retry's input: the failed and not-processed records of the batch it retries.

The retry of a batch is created at once (POST /batches/{id}/retry answers with it, ``new``);
its input is made here, in its copying step, like any batch's sources: the original's
failed-records file (each record as sent), or for a Parquet original the same records as
Parquet, with the input's own schema (pipeline/retry_input.py). Made again from the start if
the copy is resumed after a crash: the input object appears only once it is whole.

The original may be deleted (or its files removed) between the retry's answer and its copy: the
retry then fails with that said, instead of reading as a retry deleted while it ran (which would
leave it in ``copying`` for good) or as an internal error.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from batchyard.domain.batches import Batch, InputFormat
from batchyard.domain.errors import BatchNotFound, InputRejected, PipelineError
from batchyard.pipeline import failed_records, keys
from batchyard.pipeline.context import PipelineContext
from batchyard.pipeline.manifest import read_ended_manifest
from batchyard.pipeline.originals import InputReader
from batchyard.pipeline.results_summary import read_results_summary
from batchyard.pipeline.retry_input import NotOneParquetSchema, write_unapplied_parquet
from batchyard.storage.blobs import WriteResult
from batchyard.store import batches as batch_rows
from batchyard.store import datasets as dataset_rows

logger = logging.getLogger("batchyard.pipeline")
_BLOCK_BYTES = 1 << 20
#: What a retry sends: its format and its bytes.
RetryInput = tuple[InputFormat, AsyncIterator[bytes]]


async def copy_retry_input(ctx: PipelineContext, batch: Batch) -> tuple[InputFormat, WriteResult]:
    """Write the records ``batch`` retries as its input; their format and what was written."""
    original = await _original(ctx, batch)
    try:
        async with _retry_input(ctx, original) as (fmt, body):
            written = await ctx.blobs.write_stream(
                keys.input_key(batch.id, 0), body, max_bytes=ctx.settings.max_upload_bytes
            )
    except FileNotFoundError as gone:
        raise PipelineError(
            f"the records of batch {original.id} to send again are no longer stored "
            "(the batch was deleted meanwhile)"
        ) from gone
    return fmt, written


async def _original(ctx: PipelineContext, batch: Batch) -> Batch:
    if batch.options.retry_of is None:
        raise PipelineError("the upload was interrupted before it finished; submit the file again")
    try:
        async with ctx.store.read() as conn:
            return await batch_rows.get_batch(conn, batch.options.retry_of, owner_id=None)
    except BatchNotFound:
        raise PipelineError(
            f"batch {batch.options.retry_of}, whose records this retry sends again, was deleted "
            "before they were copied"
        ) from None


@asynccontextmanager
async def _retry_input(ctx: PipelineContext, original: Batch) -> AsyncIterator[RetryInput]:
    """The records to send again: the failed-records file, or for a Parquet input the same
    records as Parquet (built in a temporary file, removed when the block ends)."""
    manifest = await read_ended_manifest(ctx.blobs, original.id)
    summary = await read_results_summary(ctx.blobs, original.id)
    fallback = InputFormat(
        summary.failed_records_format
        if summary is not None
        else failed_records.extension(manifest.input_format if manifest else None)
    )
    if manifest is None or manifest.input_format != InputFormat.PARQUET.value:
        yield fallback, ctx.blobs.read_stream(keys.failed_records_key(original.id))
        return
    with tempfile.TemporaryDirectory(prefix="batchyard-retry-") as tmp:
        path = Path(tmp) / "retry.parquet"
        if await _unapplied_parquet(ctx, original, path):
            yield InputFormat.PARQUET, _file_blocks(path)
        else:
            yield fallback, ctx.blobs.read_stream(keys.failed_records_key(original.id))


async def _unapplied_parquet(ctx: PipelineContext, original: Batch, path: Path) -> bool:
    """Whether the original's unapplied records were written to ``path`` as Parquet; where its
    sources do not read back as one Parquet schema (or no longer as validation read them), the
    failed-records file is what is left."""
    async with ctx.store.read() as conn:
        dataset = await dataset_rows.get_dataset(conn, original.dataset)
    inputs = InputReader.of(ctx.blobs, original, dataset, ctx.settings)

    def write() -> int:
        with ctx.blobs.open_reader(keys.results_key(original.id)) as results:
            return write_unapplied_parquet(inputs, results, path)

    try:
        written = await asyncio.to_thread(write)
    except (NotOneParquetSchema, InputRejected) as reason:
        logger.info("batch %s: retry sends its failed-records file: %s", original.id, reason)
        return False
    logger.info("batch %s: retry sends %d record(s) as Parquet", original.id, written)
    return True


async def _file_blocks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while block := await asyncio.to_thread(file.read, _BLOCK_BYTES):
            yield block
