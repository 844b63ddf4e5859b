"""Writing results: one row per input record in input order, and the failed records to fix.

Built chunk by chunk from the staged chunks, their validation errors and the target's ledger, so
memory stays bounded by a chunk whatever the input's size.
"""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import read_table
from batchyard.pipeline.chunks import ERRORS_SCHEMA, POSITIONAL_FIELDS, RECORD_NUMBER, ChunkOutcome
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.storage.blobs import BlobStore
from batchyard.targets import Target

_RESULT_TEXT_COLUMNS = ("outcome", "error_code", "error_column", "error_message", "key")
_RESULT_FIELDS: list[pa.Field[Any]] = [pa.field("record_number", pa.int64())]
RESULTS_SCHEMA = pa.schema(
    _RESULT_FIELDS + [pa.field(n, pa.string()) for n in _RESULT_TEXT_COLUMNS]
)
#: Column names are plain identifiers; quoting them only makes the file harder to read.
PLAIN_HEADER = pacsv.WriteOptions(quoting_header="none")  # type: ignore[call-arg]  # stubs lag pyarrow
_NO_HEADER = pacsv.WriteOptions(include_header=False)
#: Threads that turn chunks into results text, and how many chunks they may get ahead of the
#: writer: the results stage runs when the batch's database work is over, so it may take two
#: cores; a chunk's text is about a third of its input, so memory stays near one chunk's size.
RESULTS_THREADS = 2
RESULTS_AHEAD = 3
#: Failed records turned into text at a time (see ResultsWriter._write_next).
FAILED_SLICE = 8192
#: Name of the column the failed-records file adds to the original fields.
ERROR_COLUMN = "error"
#: Served with presigned downloads, as the API serves the files itself.
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


def key_text(table: pa.Table, dataset: Dataset) -> pa.Array[Any]:
    """Each record's primary key as text (composite keys joined with ","), null without a key."""
    if not dataset.primary_key:
        return pa.nulls(table.num_rows, pa.string())
    parts = [pc.cast(table[name], pa.string()) for name in dataset.primary_key]
    if len(parts) == 1:
        return parts[0].combine_chunks() if isinstance(parts[0], pa.ChunkedArray) else parts[0]
    joined = pc.binary_join_element_wise(*cast(list[Any], parts), ",")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def chunk_results(
    valid: pa.Table, errors: pa.Table, outcome: ChunkOutcome, dataset: Dataset
) -> tuple[pa.Table, pa.Table]:
    """(results rows for the chunk, every failed record's ERRORS_SCHEMA row), in input order.

    A chunk without a failed record (the common case) takes no join and no sort: ``valid`` is
    already in input order, so its rows are the results as they are.
    """
    failures = outcome.failures.cast(ERRORS_SCHEMA)
    succeeded = valid
    if failures.num_rows:
        refused = pc.is_in(valid[RECORD_NUMBER], value_set=failures["record_number"])
        succeeded = valid.filter(pc.invert(refused))
    ok_rows = _result_rows(succeeded[RECORD_NUMBER], "succeeded", key=key_text(succeeded, dataset))
    if not failures.num_rows and not errors.num_rows:
        return ok_rows, ERRORS_SCHEMA.empty_table()
    failed = pa.concat_tables([errors.cast(ERRORS_SCHEMA), failures]).sort_by("record_number")
    bad_rows = _result_rows(
        failed["record_number"],
        "failed",
        key=failed["key"],
        code=failed["code"],
        column=failed["column"],
        message=failed["message"],
    )
    rows = pa.concat_tables([ok_rows, bad_rows]).sort_by("record_number")
    return rows, _with_raw(failed, valid)


def _result_rows(
    record_numbers: Any,
    outcome: str,
    *,
    key: Any,
    code: Any = None,
    column: Any = None,
    message: Any = None,
) -> pa.Table:
    """RESULTS_SCHEMA rows with one ``outcome`` for all; absent error columns are nulls."""
    n = len(record_numbers)
    no_text = pa.nulls(n, pa.string())
    return pa.table(
        {
            "record_number": record_numbers,
            "outcome": pa.repeat(outcome, n),
            "error_code": no_text if code is None else code,
            "error_column": no_text if column is None else column,
            "error_message": no_text if message is None else message,
            "key": key,
        },
        schema=RESULTS_SCHEMA,
    )


def _with_raw(failed: pa.Table, valid: pa.Table) -> pa.Table:
    """Fill ``raw`` for records the target refused (validation already filled its own)."""
    missing = pc.is_null(failed["raw"])
    if not pc.any(missing).as_py():
        return failed
    by_number = {
        row[RECORD_NUMBER]: row
        for row in valid.filter(
            pc.is_in(valid[RECORD_NUMBER], value_set=failed.filter(missing)["record_number"])
        ).to_pylist()
    }
    raws = [
        raw if raw is not None else _raw_json(by_number.get(number))
        for number, raw in zip(
            failed["record_number"].to_pylist(), failed["raw"].to_pylist(), strict=True
        )
    ]
    return failed.set_column(
        failed.schema.get_field_index("raw"), "raw", pa.array(raws, pa.string())
    )


def _raw_json(row: dict[str, Any] | None) -> str | None:
    if row is None:
        return None
    return json.dumps({k: _text(v) for k, v in row.items() if k != RECORD_NUMBER})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value).lower() if isinstance(value, bool) else str(value)


def _failed_record_rows(failed: pa.Table, columns: list[str]) -> Iterator[list[str]]:
    for raw, code, column, message in zip(
        failed["raw"].to_pylist(),
        failed["code"].to_pylist(),
        failed["column"].to_pylist(),
        failed["message"].to_pylist(),
        strict=True,
    ):
        values = _original_values(_decode_raw(raw), columns)
        where = f" (column {column})" if column else ""
        yield [*values, f"{code}{where}: {message}"]


def _original_values(fields: dict[str, Any], columns: list[str]) -> list[str]:
    """The record's fields in file order; a CSV line with the wrong field count keeps its fields
    by position (``_fields``) so that nothing the client sent is dropped from the file to fix."""
    positional = fields.get(POSITIONAL_FIELDS)
    if isinstance(positional, list):
        texts = ["" if v is None else _field_text(v) for v in positional]
        return texts + [""] * (len(columns) - len(texts))
    return ["" if fields.get(c) is None else _field_text(fields[c]) for c in columns]


def _decode_raw(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _field_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class ResultsWriter:
    """Builds results.csv and failed-records.csv in a temporary directory, then uploads them."""

    def __init__(self, blobs: BlobStore, batch_id: str, dataset: Dataset, manifest: Manifest):
        self.blobs = blobs
        self.batch_id = batch_id
        self.dataset = dataset
        self.manifest = manifest

    def build(self, target: Target, workdir: Path) -> tuple[Path, Path]:
        """Write both files under ``workdir`` (call from a worker thread).

        Chunks are read and turned into CSV text by RESULTS_THREADS threads, at most
        RESULTS_AHEAD chunks ahead of the one being written, and written in input order: the
        stage is mostly pyarrow work that releases the GIL, while memory stays a few chunks.
        Each chunk's outcome (with the records the target refused) is read from the ledger
        with the chunk, never all at once: they may be millions of records.
        """
        results_path = workdir / "results.csv"
        failed_path = workdir / "failed-records.csv"
        columns = list(self.manifest.input_columns) or list(self.dataset.column_names)
        with (
            results_path.open("wb") as results_file,
            failed_path.open("w", newline="", encoding="utf-8") as failed_file,
            ThreadPoolExecutor(RESULTS_THREADS, thread_name_prefix="results") as pool,
        ):
            pacsv.write_csv(RESULTS_SCHEMA.empty_table(), results_file, PLAIN_HEADER)
            failed_csv = csv.writer(failed_file)
            failed_csv.writerow([*columns, ERROR_COLUMN])
            pending: deque[Future[tuple[bytes, pa.Table]]] = deque()
            for entry in self.manifest.chunks:
                pending.append(pool.submit(self._chunk_text, entry, target))
                if len(pending) > RESULTS_AHEAD:
                    self._write_next(pending.popleft(), results_file, failed_csv, columns)
            while pending:
                self._write_next(pending.popleft(), results_file, failed_csv, columns)
        return results_path, failed_path

    @staticmethod
    def _write_next(
        chunk: Future[tuple[bytes, pa.Table]],
        results_file: BinaryIO,
        failed_csv: Any,
        columns: list[str],
    ) -> None:
        rows_text, failed = chunk.result()
        results_file.write(rows_text)
        # In slices: each slice's values become Python objects at once, holding the GIL.
        for part in failed.to_batches(max_chunksize=FAILED_SLICE):
            failed_csv.writerows(_failed_record_rows(pa.Table.from_batches([part]), columns))

    def _chunk_text(self, entry: ChunkEntry, target: Target) -> tuple[bytes, pa.Table]:
        """(the chunk's results rows as CSV text without a header, its failed records)."""
        rows, failed = self._chunk(entry, target)
        text = pa.BufferOutputStream()
        pacsv.write_csv(rows, text, _NO_HEADER)
        return text.getvalue().to_pybytes(), failed

    def _chunk(self, entry: ChunkEntry, target: Target) -> tuple[pa.Table, pa.Table]:
        valid = read_table(self.blobs, keys.chunk_key(self.batch_id, entry.index))
        errors = read_table(self.blobs, keys.errors_key(self.batch_id, entry.index))
        outcome = target.chunk_outcome(self.batch_id, entry.index) or ChunkOutcome(
            entry.index, 0, ERRORS_SCHEMA.empty_table()
        )
        return chunk_results(valid, errors, outcome, self.dataset)

    async def write(self, target: Target) -> None:
        with tempfile.TemporaryDirectory(prefix="batchyard-results-") as tmp:
            results_path, failed_path = await asyncio.to_thread(self.build, target, Path(tmp))
            name = f"{self.dataset.name}-{self.batch_id}"
            await self.blobs.write_file(
                keys.results_key(self.batch_id),
                results_path,
                content_type=CSV_CONTENT_TYPE,
                filename=f"{name}-results.csv",
            )
            await self.blobs.write_file(
                keys.failed_records_key(self.batch_id),
                failed_path,
                content_type=CSV_CONTENT_TYPE,
                filename=f"{name}-failed-records.csv",
            )
