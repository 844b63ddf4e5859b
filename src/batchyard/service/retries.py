"""Retry: a new batch of an ended batch's failed and not-processed records, as they were sent.

The new batch's input is the original's failed-records file (each record as sent, plus the
``error`` column the readers leave out), copied like an upload: so a retry goes through the
same copy, validation and idempotency as any batch, and is what a user gets by uploading that
file themselves, with ``retry_of`` naming the original. A Parquet batch's failed-records file
is CSV text, which cannot say everything Parquet does; its retry sends the same records as
Parquet, with the input's own schema (pipeline/retry_input.py).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from batchyard.domain.batches import Batch, InputFormat
from batchyard.domain.errors import InputRejected, NothingToRetry
from batchyard.domain.permissions import Action
from batchyard.pipeline import keys
from batchyard.pipeline.manifest import read_ended_manifest
from batchyard.pipeline.originals import InputReader
from batchyard.pipeline.results_summary import ResultsSummary
from batchyard.pipeline.retry_input import NotOneParquetSchema, write_unapplied_parquet
from batchyard.service.auth import require
from batchyard.service.batches import Created, NewBatch, create_upload_batch, get_batch
from batchyard.service.container import Services
from batchyard.service.result_files import results_summary
from batchyard.store import datasets as dataset_rows
from batchyard.store.users import Principal

logger = logging.getLogger("batchyard.service")
_BLOCK_BYTES = 1 << 20
#: What a retry sends: its format and its bytes.
RetryInput = tuple[InputFormat, AsyncIterator[bytes]]


async def retry_batch(
    svc: Services, principal: Principal, batch_id: str, idempotency_key: str | None
) -> Created:
    """Create the retry of ``batch_id``; the principal must see it (else 404) and may create
    batches of its operation in its dataset (else 403)."""
    require(principal, Action.CREATE_BATCH)
    original = await get_batch(svc, principal, batch_id, Action.GET_BATCH)
    summary = await results_summary(svc, original)
    if not summary.to_retry:
        raise NothingToRetry(
            f"Every record of batch {original.id} was applied: there is nothing to retry",
            details={"batch": original.id, "succeeded": summary.succeeded},
        )
    async with _retry_input(svc, original, summary) as (fmt, body):
        request = NewBatch(
            dataset=original.dataset,
            operation=original.operation,
            format=fmt,
            options=replace(original.options, retry_of=original.id, resubmits=None),
            notify_url=original.notify_url,
            idempotency_key=idempotency_key,
        )
        return await create_upload_batch(svc, principal, request, body)


@asynccontextmanager
async def _retry_input(
    svc: Services, original: Batch, summary: ResultsSummary
) -> AsyncIterator[RetryInput]:
    """The records to send again: the failed-records file, or for a Parquet input the same
    records as Parquet (built in a temporary file, removed when the block ends)."""
    failed_records = InputFormat(summary.failed_records_format)
    manifest = await read_ended_manifest(svc.blobs, original.id)
    if manifest is None or manifest.input_format != InputFormat.PARQUET.value:
        yield failed_records, svc.blobs.read_stream(keys.failed_records_key(original.id))
        return
    with tempfile.TemporaryDirectory(prefix="batchyard-retry-") as tmp:
        path = Path(tmp) / "retry.parquet"
        if await _unapplied_parquet(svc, original, path):
            yield InputFormat.PARQUET, _file_blocks(path)
        else:
            yield failed_records, svc.blobs.read_stream(keys.failed_records_key(original.id))


async def _unapplied_parquet(svc: Services, original: Batch, path: Path) -> bool:
    """Whether the original's unapplied records were written to ``path`` as Parquet; where its
    sources do not read back as one Parquet schema (or no longer as validation read them), the
    failed-records file is what is left."""
    async with svc.store.begin() as conn:
        dataset = await dataset_rows.get_dataset(conn, original.dataset)
    inputs = InputReader.of(svc.blobs, original, dataset, svc.settings)

    def write() -> int:
        with svc.blobs.open_reader(keys.results_key(original.id)) as results:
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
