"""Results of records a batch never applied: it was cancelled, failed or refused in validation.

Such a record is ``not_processed`` in results.csv, and the failed-records file carries it as
sent with the reason (``not_processed: …``), beside the records that failed: sending that file
again (or POST /batches/{id}/retry) applies exactly what the batch did not.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.schema import Dataset
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER
from batchyard.pipeline.results_rows import failed_rows, key_text, raw_or_typed, result_rows

#: The outcome (and the failed-records file's error code) of a record the batch never applied.
NOT_PROCESSED = "not_processed"

_WHY = {
    BatchStatus.CANCELLED: "the batch was cancelled before this record was applied",
    BatchStatus.FAILED: "the batch failed before this record was applied",
    BatchStatus.VALIDATION_FAILED: "the batch was refused in validation, so nothing was applied",
}


def not_processed_reason(status: BatchStatus) -> str:
    """Why a record of a batch that ended in ``status`` was not applied."""
    return _WHY.get(status, f"the batch ended {status.value} before this record was applied")


def unapplied_chunk_results(
    valid: pa.Table,
    errors: pa.Table,
    dataset: Dataset,
    reason: str,
    originals: dict[int, str],
) -> tuple[pa.Table, pa.Table]:
    """(results rows, failed-records rows) of a staged chunk that was never applied: its
    invalid records failed, its valid ones were not processed."""
    keys = key_text(valid, dataset)
    waiting = _not_processed_errors(valid[RECORD_NUMBER], keys, reason)
    waiting = raw_or_typed(waiting, valid, originals)
    failed = errors.cast(ERRORS_SCHEMA)
    rows = pa.concat_tables(
        [
            result_rows(valid[RECORD_NUMBER], NOT_PROCESSED, key=keys),
            failed_rows(failed),
        ]
    ).sort_by("record_number")
    return rows, pa.concat_tables([failed, waiting]).sort_by("record_number")


def unread_results(
    numbers: list[int], sent: list[str | None] | None, reason: str
) -> tuple[pa.Table, pa.Table]:
    """(results rows, failed-records rows) of records validation never reached; without
    ``sent``, the failed-records rows have no ``raw`` (the caller writes their text)."""
    record_numbers = pa.array(numbers, pa.int64())
    no_key = pa.nulls(len(numbers), pa.string())
    waiting = _not_processed_errors(record_numbers, no_key, reason)
    if sent is not None:
        waiting = waiting.set_column(
            waiting.schema.get_field_index("raw"), "raw", pa.array(sent, pa.string())
        )
    return result_rows(record_numbers, NOT_PROCESSED, key=no_key), waiting


def _not_processed_errors(numbers: Any, keys: Any, reason: str) -> pa.Table:
    n = len(numbers)
    return pa.table(
        {
            "record_number": numbers,
            "column": pa.nulls(n, pa.string()),
            "code": pa.repeat(pa.scalar(NOT_PROCESSED, pa.string()), n),
            "message": pa.repeat(pa.scalar(reason, pa.string()), n),
            "key": keys,
            "raw": pa.nulls(n, pa.string()),
        },
        schema=ERRORS_SCHEMA,
    )


def outcome_counts(rows: pa.Table) -> dict[str, int]:
    """How many of ``rows`` (RESULTS_SCHEMA) have each outcome."""
    outcomes = rows["outcome"]
    return {
        outcome: int(
            pc.sum(pc.equal(outcomes, pa.scalar(outcome, pa.string())).cast(pa.int64())).as_py()
            or 0
        )
        for outcome in ("succeeded", "failed", NOT_PROCESSED)
    }
