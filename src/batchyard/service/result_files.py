"""A batch's results files: whether it has them, why not, and how to stream them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from batchyard.domain.batches import Batch
from batchyard.domain.errors import NoResults, ResultsNotReady
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline import failed_records, keys
from batchyard.pipeline.manifest import read_manifest
from batchyard.pipeline.results_jsonl import JSONL_CONTENT_TYPE, results_as_jsonl
from batchyard.pipeline.results_summary import ResultsSummary, read_results_summary
from batchyard.service.container import Services

S = BatchStatus
ResultFile = Literal["results", "failed-records"]


async def results_summary(svc: Services, batch: Batch) -> ResultsSummary:
    """What the batch's results hold; ResultsNotReady (409) while it runs, NoResults (409) for
    a batch that ended without results, each saying why."""
    if not batch.is_terminal:
        raise ResultsNotReady(
            f"Results exist once the batch has ended; it is {batch.status.value}",
            details={"status": batch.status.value},
        )
    summary = await read_results_summary(svc.blobs, batch.id)
    if summary is not None:
        return summary
    if batch.status == S.COMPLETED:  # completed before results had a summary
        input_format = (await read_manifest(svc.blobs, batch.id)).input_format
        return ResultsSummary(
            succeeded=batch.counts.successful,
            failed=batch.counts.failed,
            failed_records_format=failed_records.extension(input_format),
        )
    raise NoResults(_no_results_reason(batch), details={"status": batch.status.value})


def _no_results_reason(batch: Batch) -> str:
    if batch.status == S.HASH_MISMATCH:
        return (
            "The batch has no records: its input's SHA-256 differs from the hash given, so no "
            "record was read"
        )
    why = f": {batch.error_message}" if batch.error_message else ""
    return f"The batch ended {batch.status.value} before any record was validated{why}"


def _result_key(batch_id: str, which: ResultFile) -> str:
    if which == "results":
        return keys.results_key(batch_id)
    return keys.failed_records_key(batch_id)


async def open_result_file(
    svc: Services, batch: Batch, which: ResultFile, *, jsonl: bool = False
) -> tuple[AsyncIterator[bytes], str, str]:
    """(the file's bytes, streamed; its media type; its file extension); ``jsonl``: the
    results as JSON Lines rather than CSV."""
    summary = await results_summary(svc, batch)
    if which == "results" and jsonl:
        stream = results_as_jsonl(svc.blobs, _result_key(batch.id, which))
        return stream, JSONL_CONTENT_TYPE, "jsonl"
    if which == "results":
        media_type, extension = failed_records.CSV_CONTENT_TYPE, "csv"
    else:
        extension = summary.failed_records_format
        media_type = failed_records.content_type(extension)
    return svc.blobs.read_stream(_result_key(batch.id, which)), media_type, extension
