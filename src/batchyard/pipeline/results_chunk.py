"""One chunk's share of the results files, as text: the same bytes whether it is made as the
chunk commits (pipeline/results_parts.py) or when the results are written (pipeline/results.py).
"""

from __future__ import annotations

from collections import Counter
from typing import cast

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batchyard.domain.outcomes import empty_outputs
from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, ChunkOutcome
from batchyard.pipeline.failed_records import FailedRecordsFormat
from batchyard.pipeline.results_rows import failed_rows, key_text, raw_or_typed, result_rows
from batchyard.pipeline.results_unapplied import outcome_counts

_NO_HEADER = pacsv.WriteOptions(include_header=False)
#: Failed records turned into text at a time: each slice's values become Python objects at
#: once, holding the GIL.
FAILED_SLICE = 8192


class ResultsPart(msgspec.Struct, frozen=True):
    """A run of records' lines in results.csv and in the failed-records file (no headers),
    with how many records of each outcome the lines name."""

    rows: bytes
    failed_records: bytes
    succeeded: int = 0
    failed: int = 0
    not_processed: int = 0

    @property
    def counts(self) -> Counter[str]:
        return Counter(
            succeeded=self.succeeded, failed=self.failed, not_processed=self.not_processed
        )

    def encode(self) -> bytes:
        return msgspec.msgpack.encode(self)

    @classmethod
    def decode(cls, data: bytes | memoryview) -> ResultsPart:
        return msgspec.msgpack.decode(data, type=cls)


def results_part(
    rows: pa.Table, failed: pa.Table | str, failed_format: FailedRecordsFormat
) -> ResultsPart:
    """The part made of results rows (RESULTS_SCHEMA, maybe with ``output``) and failed
    records: ERRORS_SCHEMA rows with ``raw``, or their text already made column-wise."""
    text = pa.BufferOutputStream()
    pacsv.write_csv(rows, text, _NO_HEADER)
    if isinstance(failed, str):
        failed_text = failed
    else:
        failed_text = "".join(
            failed_format.rows(pa.Table.from_batches([part]))
            for part in failed.to_batches(max_chunksize=FAILED_SLICE)
        )
    counts = outcome_counts(rows)
    return ResultsPart(
        text.getvalue().to_pybytes(),
        failed_text.encode(),
        succeeded=counts["succeeded"],
        failed=counts["failed"],
        not_processed=counts["not_processed"],
    )


def applied_part(
    valid: pa.Table,
    errors: pa.Table,
    outcome: ChunkOutcome,
    dataset: Dataset,
    failed_format: FailedRecordsFormat,
    *,
    originals: dict[int, str] | None = None,
    with_output: bool = False,
) -> ResultsPart:
    """The part of a chunk the ledger holds: ``valid`` its valid records as staged (record
    numbers and keys at least), ``errors`` its invalid ones, ``originals`` what was sent of
    the records the target refused (see ``refused_without_text``)."""
    rows, failed = chunk_results(valid, errors, outcome, dataset, originals)
    if with_output:
        rows = with_outputs(rows, outcome.outputs)
    return results_part(rows, failed, failed_format)


def chunk_results(
    valid: pa.Table,
    errors: pa.Table,
    outcome: ChunkOutcome,
    dataset: Dataset,
    originals: dict[int, str] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(results rows for the chunk, every failed record's ERRORS_SCHEMA row), in input order.

    A chunk without a failed record (the common case) takes no join and no sort: ``valid`` is
    already in input order, so its rows are the results as they are. ``originals`` holds what
    was sent for records the target refused, by record number.
    """
    failures = outcome.failures.cast(ERRORS_SCHEMA)
    succeeded = valid
    if failures.num_rows:
        refused = pc.is_in(valid[RECORD_NUMBER], value_set=failures["record_number"])
        succeeded = valid.filter(pc.invert(refused))
    ok_rows = result_rows(succeeded[RECORD_NUMBER], "succeeded", key=key_text(succeeded, dataset))
    if not failures.num_rows and not errors.num_rows:
        return ok_rows, ERRORS_SCHEMA.empty_table()
    failed = pa.concat_tables([errors.cast(ERRORS_SCHEMA), failures]).sort_by("record_number")
    rows = pa.concat_tables([ok_rows, failed_rows(failed)]).sort_by("record_number")
    return rows, raw_or_typed(failed, valid, originals or {})


def with_outputs(rows: pa.Table, outputs: pa.Table | None = None) -> pa.Table:
    """``rows`` plus an ``output`` column: each record's output (JSON text), null where none."""
    if outputs is None:
        outputs = empty_outputs()
    if not outputs.num_rows:
        return rows.append_column("output", pa.nulls(rows.num_rows, pa.string()))
    where = pc.index_in(rows["record_number"], value_set=outputs["record_number"])
    return rows.append_column("output", pc.take(outputs["output"], where))


def refused_without_text(outcome: ChunkOutcome) -> list[int]:
    """Record numbers, ascending, of the chunk's records the target refused whose text the
    ledger does not hold (valid records: only their typed values were staged)."""
    failures = outcome.failures
    if not failures.num_rows:
        return []
    unknown = failures.filter(pc.is_null(failures["raw"]))
    return sorted(cast("list[int]", unknown["record_number"].to_pylist()))
