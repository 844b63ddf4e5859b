"""Drives one batch through its lifecycle from whatever status it is in.

The same code runs in the embedded runner and in workers, first time or after a crash: each step
reads the batch's status (the source of truth) and does what that status still needs, so a
resumed batch never redoes committed work. One function maps an error to the final status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from batchyard import metrics
from batchyard.domain.batches import Batch, LogLevel, Operation
from batchyard.domain.errors import (
    BatchLeft,
    BatchNotFound,
    BatchyardError,
    CancelRequested,
    HashMismatch,
    InputRejected,
    InvalidRequest,
    InvalidTransition,
    PayloadTooLarge,
    PipelineError,
    TooManyErrors,
)
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import CANCEL_REQUESTED, TERMINAL, BatchStatus
from batchyard.pipeline import keys
from batchyard.pipeline.context import BatchRecorder, PipelineContext
from batchyard.pipeline.dry_run import outcome_source, outcomes_settled, rehearse_batch
from batchyard.pipeline.http_guard import reach_of
from batchyard.pipeline.manifest import Manifest, read_manifest
from batchyard.pipeline.results_join import ResultsJoin
from batchyard.pipeline.retry_copy import copy_retry_input
from batchyard.pipeline.sources import copy_sources
from batchyard.pipeline.sources_http import TransferLimits
from batchyard.pipeline.sources_s3 import S3Sources
from batchyard.pipeline.stage_overlap import applying_while_validating
from batchyard.pipeline.stage_process import Processing, counts_so_far
from batchyard.pipeline.stage_results import results_writer, write_ended_results
from batchyard.pipeline.stage_validate import Validation
from batchyard.store import datasets as dataset_rows

logger = logging.getLogger("batchyard.pipeline")
S = BatchStatus
_VERBS: dict[str, str] = {
    Operation.INSERT: "Inserted",
    Operation.UPSERT: "Upserted",
    Operation.DELETE: "Deleted",
}


def final_status_for(error: BaseException) -> BatchStatus:
    """The terminal status a batch ends in when ``error`` stops its pipeline."""
    if isinstance(error, HashMismatch):
        return S.HASH_MISMATCH
    if isinstance(error, InputRejected | TooManyErrors | InvalidRequest | PayloadTooLarge):
        return S.VALIDATION_FAILED
    return S.FAILED


async def run_batch(ctx: PipelineContext, batch_id: str) -> None:
    """Run (or resume) one batch until it reaches a terminal status, or is deleted."""
    rec = BatchRecorder(ctx, batch_id)
    rec.results_join = ResultsJoin(ctx.blobs)
    try:
        with ctx.store.changes.listening(batch_id, rec.changed):
            await _run(rec)
    finally:
        rec.results_join.close()  # two files' unlinks, done even when the task is cancelled


async def _run(rec: BatchRecorder) -> None:
    batch_id = rec.batch_id
    try:
        await _drive(rec)
    except BatchNotFound:
        return  # deleted while running
    except CancelRequested:
        await _finish_cancel(rec)
    except (PipelineError, InvalidRequest, PayloadTooLarge) as error:  # the input's fault too
        await _fail(rec, error, final_status_for(error))
    except Exception as error:
        logger.exception("batch %s: unexpected error", batch_id)
        await _fail(
            rec, PipelineError(f"internal error: {type(error).__name__}: {error}"), S.FAILED
        )
    await _discard_staged(rec)


async def _discard_staged(rec: BatchRecorder) -> None:
    """Once the batch has ended, remove the chunks validation staged (Arrow, about the input's
    size again): nothing reads them any more, as the results are written and a terminal batch
    never runs again. The input, manifest and results stay until the batch is deleted.

    Leftovers of a failed attempt cost space, not correctness: deleting the batch removes them.
    """
    try:
        if (await rec.get()).status not in TERMINAL:
            return  # deleting, or handed on (a cancel that another job finishes)
        removed = 0
        for prefix in keys.staged_prefixes(rec.batch_id):
            removed += await rec.ctx.blobs.delete_prefix(prefix)
    except BatchNotFound:
        return
    except Exception:
        logger.warning("batch %s: staged chunks not removed", rec.batch_id, exc_info=True)
        return
    logger.info("batch %s: removed %d staged object(s)", rec.batch_id, removed)


async def _drive(rec: BatchRecorder) -> None:
    while True:
        batch = await rec.get()
        if batch.status in TERMINAL or batch.status == S.DELETING:
            return
        try:
            await _step(rec, batch)
        except (InvalidTransition, BatchLeft):
            continue  # someone else moved it (cancel): read it again and do what it needs now


async def _step(rec: BatchRecorder, batch: Batch) -> None:
    status = batch.status
    if status in CANCEL_REQUESTED:
        raise CancelRequested
    if status == S.NEW:
        await rec.transition(S.COPYING)
    elif status == S.COPYING:
        await _copy(rec, batch)
    elif status == S.COPIED:
        await rec.transition(S.VALIDATING)
    elif status == S.VALIDATING:
        await _validate(rec, batch)
    elif status == S.PROCESSING:
        await _process(rec, batch)
    elif status == S.PROCESSED:
        await rec.transition(S.WRITING_RESULTS)
    elif status == S.WRITING_RESULTS:
        await _write_results(rec, batch)


async def _copy(rec: BatchRecorder, batch: Batch) -> None:
    if batch.is_upload:
        await _copy_retry(rec, batch)
        return
    settings = rec.ctx.settings
    started = time.monotonic()
    try:
        copied = await copy_sources(
            batch.sources,
            rec.ctx.blobs,
            f"{keys.batch_prefix(batch.id)}/input",
            parallel_streams=batch.options.parallel_streams,
            max_bytes=settings.max_upload_bytes,
            reach=reach_of(settings),
            file_root=settings.file_sources_root,
            log=rec.log,
            client=rec.ctx.http,
            s3=S3Sources.from_settings(settings),
            limits=TransferLimits.of(settings),
        )
    except HashMismatch as mismatch:
        await rec.transition(S.COPIED)
        raise mismatch
    total = sum(c.size for c in copied)
    metrics.INPUT_BYTES.inc(total)
    await rec.log(
        f"Copied {len(copied)} source(s), {total} bytes in {time.monotonic() - started:.1f} s"
    )
    await rec.transition(S.COPIED)


async def _copy_retry(rec: BatchRecorder, batch: Batch) -> None:
    """A retry's input, made from the batch it retries; any other batch without sources is an
    upload that a crash interrupted (its body is gone)."""
    fmt, written = await copy_retry_input(rec.ctx, batch)
    metrics.INPUT_BYTES.inc(written.size)
    await rec.detected(fmt)
    await rec.log(
        f"Copied the {fmt.value} records batch {batch.options.retry_of} did not apply: "
        f"{written.size} bytes (sha256 {written.sha256})"
    )
    await rec.transition(S.COPIED)


async def _dataset(rec: BatchRecorder, batch: Batch) -> Dataset:
    async with rec.ctx.store.read() as conn:
        return await dataset_rows.get_dataset(conn, batch.dataset)


async def _manifest(rec: BatchRecorder, batch: Batch) -> Manifest:
    return await read_manifest(rec.ctx.blobs, batch.id)


async def _validate(rec: BatchRecorder, batch: Batch) -> None:
    started = time.monotonic()
    dataset, manifest = await _dataset(rec, batch), Manifest()
    async with applying_while_validating(rec, batch, dataset, manifest) as early:
        await Validation(rec, batch, dataset, manifest, early.staged if early else None).run()
    await rec.log(
        f"Validated {manifest.total} records in {time.monotonic() - started:.1f} s: "
        f"{manifest.total - manifest.invalid} valid, {manifest.invalid} invalid"
    )
    committed = await asyncio.to_thread(rec.ctx.target.committed_counts, batch.id)
    if batch.options.dry_run:
        await rec.log(
            f"Dry run: applying {len(manifest.chunks)} chunk(s) in one transaction "
            "that is rolled back at the end"
        )
    elif batch.options.atomic:
        await rec.log(f"Applying {len(manifest.chunks)} chunk(s) atomically, in one transaction")
    else:
        left = len(manifest.chunks) - len(committed)
        done = f" ({len(committed)} applied while validating)" if committed else ""
        await rec.log(
            f"Applying {left} chunk(s) chunk by chunk{done}"
            if left
            else f"All {len(committed)} chunk(s) applied while validating"
        )
    await rec.transition(S.PROCESSING, counts=counts_so_far(manifest, committed))


async def _process(rec: BatchRecorder, batch: Batch) -> None:
    started = time.monotonic()
    manifest, dataset = await _manifest(rec, batch), await _dataset(rec, batch)
    if batch.options.dry_run:
        counts = await rehearse_batch(rec, batch, dataset, manifest)
        elapsed = time.monotonic() - started
        await rec.log(
            f"Dry run: {counts.successful} records would be applied ({elapsed:.1f} s); "
            "rolled back, nothing was written"
        )
    else:
        counts = await Processing(rec, batch, dataset, manifest).run()
        elapsed = time.monotonic() - started
        await rec.log(f"Applied {counts.successful} records in {elapsed:.1f} s")
    await rec.transition(S.PROCESSED, counts=counts)


async def _write_results(rec: BatchRecorder, batch: Batch) -> None:
    manifest, source = await _manifest(rec, batch), outcome_source(rec.ctx, batch)
    committed = await asyncio.to_thread(source.committed_counts, batch.id)
    joined = rec.results_join.take() if rec.results_join is not None else None
    writer = results_writer(rec, batch, await _dataset(rec, batch), manifest, joined=joined)
    await writer.write(source)
    counts = counts_so_far(manifest, committed)
    verb = _VERBS.get(batch.operation, "Succeeded")
    if batch.options.dry_run:
        await rec.log(
            f"Finished dry run: nothing was written. Would be {verb.lower()}: "
            f"{counts.successful}, Invalid: {counts.failed}"
        )
    else:
        await rec.log(f"Finished. {verb}: {counts.successful}, Invalid: {counts.failed}")
    await rec.transition(S.COMPLETED, counts=counts)


async def _finish_cancel(rec: BatchRecorder) -> None:
    batch = await rec.get()
    if batch.status == S.CANCEL:
        await rec.transition(S.CANCELLING)
    async with outcomes_settled(rec) as counts:
        if counts is not None and counts.processed:  # exactly what the table holds from it
            await rec.counts(counts)
        applied = counts.successful if counts is not None else 0
        if batch.options.dry_run:
            await rec.log(f"Cancelled dry run: nothing was written ({applied} would have been)")
        else:
            await rec.log(f"Cancelled. Records committed before the cancel: {applied}")
        await write_ended_results(rec, S.CANCELLED)
        await rec.transition(S.CANCELLED)


async def _fail(rec: BatchRecorder, error: BatchyardError, status: BatchStatus) -> None:
    try:
        batch = await rec.get()
        if batch.status in CANCEL_REQUESTED:
            await _finish_cancel(rec)
            return
        if status == S.VALIDATION_FAILED and batch.status != S.VALIDATING:
            status = S.FAILED  # refused before validation (a source too large): the only way out
        message = _with_code(error)
        await rec.log(message, LogLevel.ERROR)
        async with contextlib.AsyncExitStack() as settled:
            try:
                counts = await settled.enter_async_context(outcomes_settled(rec))
            except Exception:  # the target itself may be what failed: end without its word
                logger.warning("batch %s: counters not settled from the ledger", rec.batch_id)
                counts = None
            await write_ended_results(rec, status)
            await rec.transition(status, error_message=message, counts=counts)
    except (BatchNotFound, InvalidTransition):
        return


def _with_code(error: BatchyardError) -> str:
    """The message led by the error's code when it has a specific one (``source_timeout: …``),
    so clients can tell failures apart without parsing prose."""
    if error.code == PipelineError.code:
        return error.message
    return f"{error.code}: {error.message}"


async def help_batch(ctx: PipelineContext, batch_id: str, helper: str) -> None:
    """A helper job: apply chunks of a processing batch that nobody holds, until none is left.

    A helper never ends a batch: whatever stops it (cancel, an error) leaves the chunks it did
    not take to the batch's own job, which waits for all of them and fails the batch if the
    error is real. So a helper's error is logged, and the job ends.
    """
    rec = BatchRecorder(ctx, batch_id)
    started = time.monotonic()
    try:
        batch = await rec.get()
        if batch.status != S.PROCESSING or batch.options.atomic or batch.options.dry_run:
            return
        dataset, manifest = await _dataset(rec, batch), await _manifest(rec, batch)
        with ctx.store.changes.listening(batch_id, rec.changed):
            applied = await Processing(rec, batch, dataset, manifest).help()
    except (BatchNotFound, CancelRequested, BatchLeft):
        return
    except Exception as error:
        logger.exception("batch %s: helper %s stopped", batch_id, helper)
        with contextlib.suppress(Exception):
            await rec.log(
                f"Helper {helper} stopped ({type(error).__name__}: {error}); "
                "the batch's own job applies what it left",
                LogLevel.WARNING,
            )
        return
    message = f"Helper {helper} applied {applied} chunk(s) in {time.monotonic() - started:.1f} s"
    with contextlib.suppress(BatchNotFound):  # deleted meanwhile: only the worker's log says it
        if applied and (await rec.get()).status == S.PROCESSING:
            await rec.log(message)  # in the batch's log while it is still about processing
            return
    logger.info("batch %s: %s", batch_id, message)
