"""Writing results, for a completed batch and for one that ended before applying everything."""

from __future__ import annotations

import logging

from batchyard.domain.batches import Batch, LogLevel
from batchyard.domain.errors import BatchNotFound
from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline.context import BatchRecorder
from batchyard.pipeline.dry_run import outcome_source
from batchyard.pipeline.manifest import Manifest, read_ended_manifest
from batchyard.pipeline.originals import InputReader
from batchyard.pipeline.results import ResultsWriter
from batchyard.pipeline.results_join import JoinedPrefix
from batchyard.pipeline.results_parts import has_output
from batchyard.pipeline.results_unapplied import not_processed_reason
from batchyard.store import datasets as dataset_rows

logger = logging.getLogger("batchyard.pipeline")


def results_writer(
    rec: BatchRecorder,
    batch: Batch,
    dataset: Dataset,
    manifest: Manifest,
    unapplied: str | None = None,
    joined: JoinedPrefix | None = None,
) -> ResultsWriter:
    """The writer of ``batch``'s results, reading its input again as validation read it, and
    finishing ``joined`` (the files joined while chunks committed) where it can."""
    inputs = InputReader.of(rec.ctx.blobs, batch, dataset, rec.ctx.settings)
    return ResultsWriter(
        rec.ctx.blobs,
        batch.id,
        dataset,
        manifest,
        inputs=inputs,
        delimiter=batch.options.delimiter,
        unapplied=unapplied,
        with_output=has_output(batch),
        joined=joined,
    )


async def write_ended_results(rec: BatchRecorder, status: BatchStatus) -> None:
    """Results of a batch about to end in ``status`` (cancelled, failed, validation_failed):
    which records were applied, which failed and which were not processed.

    Written before the batch ends, so its results are there as soon as it has. A batch that
    never read a record has none (its results answer 409). Results that cannot be written (the
    target itself may be what failed) are logged; the batch ends all the same.
    """
    ctx = rec.ctx
    try:
        manifest = await read_ended_manifest(ctx.blobs, rec.batch_id)
        if manifest is None:
            return
        batch = await rec.get()
        async with ctx.store.read() as conn:
            dataset = await dataset_rows.get_dataset(conn, batch.dataset)
        writer = results_writer(rec, batch, dataset, manifest, not_processed_reason(status))
        await writer.write(outcome_source(ctx, batch))
    except BatchNotFound:
        raise
    except Exception as error:
        logger.warning("batch %s: results not written", rec.batch_id, exc_info=True)
        await rec.log(f"Results not written: {type(error).__name__}: {error}", LogLevel.WARNING)
        return
    counts = writer.counts
    await rec.log(
        f"Results written: {counts['succeeded']} succeeded, {counts['failed']} failed, "
        f"{counts['not_processed']} not processed"
    )
