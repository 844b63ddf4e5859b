"""Writing results: one row per input record in input order, and the failed records to fix
(pipeline/failed_records.py says how they are written).

Built chunk by chunk from the staged chunks, their validation errors and the target's ledger, so
memory stays bounded by a chunk whatever the input's size.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import read_table
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, ChunkOutcome
from batchyard.pipeline.failed_records import (
    CSV_CONTENT_TYPE,
    FailedRecordsFormat,
    content_type,
    extension,
)
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.pipeline.originals import InputReader
from batchyard.storage.blobs import BlobStore

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
    valid: pa.Table,
    errors: pa.Table,
    outcome: ChunkOutcome,
    dataset: Dataset,
    originals: dict[int, str] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(results rows for the chunk, every failed record's ERRORS_SCHEMA row), in input order.

    A chunk without a failed record (the common case) takes no join and no sort: ``valid`` is
    already in input order, so its rows are the results as they are. ``originals`` holds what
    was sent for records the target refused (read again from the input), by record number.
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
    return rows, _with_raw(failed, valid, originals or {})


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


def _with_raw(failed: pa.Table, valid: pa.Table, originals: dict[int, str]) -> pa.Table:
    """Fill ``raw`` for records the target refused (validation already filled its own): what was
    sent, else (without the input to read it from) the typed values as text."""
    missing = pc.is_null(failed["raw"])
    if not pc.any(missing).as_py():
        return failed
    by_number = {
        row[RECORD_NUMBER]: row
        for row in valid.filter(
            pc.is_in(valid[RECORD_NUMBER], value_set=failed.filter(missing)["record_number"])
        ).to_pylist()
    }
    numbers = cast("list[int]", failed["record_number"].to_pylist())
    raws = [
        raw if raw is not None else originals.get(number) or _raw_json(by_number.get(number))
        for number, raw in zip(numbers, failed["raw"].to_pylist(), strict=True)
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


class ResultsWriter:
    """Builds results.csv and the failed-records file in a temporary directory, then uploads them.

    Args:
        inputs: reads the stored input again for what was sent of records the target refused;
            without it, their typed values are written as text.
        delimiter: the input's CSV delimiter, which the failed-records file keeps.
    """

    def __init__(
        self,
        blobs: BlobStore,
        batch_id: str,
        dataset: Dataset,
        manifest: Manifest,
        *,
        inputs: InputReader | None = None,
        delimiter: str = ",",
    ):
        self.blobs = blobs
        self.batch_id = batch_id
        self.dataset = dataset
        self.manifest = manifest
        self.inputs = inputs
        self.delimiter = delimiter

    def build(self, committed: dict[int, ChunkOutcome], workdir: Path) -> tuple[Path, Path]:
        """Write both files under ``workdir`` (call from a worker thread).

        Chunks are read and turned into CSV text by RESULTS_THREADS threads, at most
        RESULTS_AHEAD chunks ahead of the one being written, and written in input order: the
        stage is mostly pyarrow work that releases the GIL, while memory stays a few chunks.
        """
        results_path = workdir / "results.csv"
        failed_path = workdir / "failed-records"
        columns = list(self.manifest.input_columns) or list(self.dataset.column_names)
        failed_format = FailedRecordsFormat(self.manifest.input_format, columns, self.delimiter)
        originals = self._originals(committed)
        with (
            results_path.open("wb") as results_file,
            failed_path.open("w", newline="", encoding="utf-8") as failed_file,
            ThreadPoolExecutor(RESULTS_THREADS, thread_name_prefix="results") as pool,
        ):
            pacsv.write_csv(RESULTS_SCHEMA.empty_table(), results_file, PLAIN_HEADER)
            failed_file.write(failed_format.header())
            pending: deque[Future[tuple[bytes, pa.Table]]] = deque()
            for entry in self.manifest.chunks:
                pending.append(pool.submit(self._chunk_text, entry, committed, originals))
                if len(pending) > RESULTS_AHEAD:
                    self._write_next(pending.popleft(), results_file, failed_file, failed_format)
            while pending:
                self._write_next(pending.popleft(), results_file, failed_file, failed_format)
        return results_path, failed_path

    def _originals(self, committed: dict[int, ChunkOutcome]) -> dict[int, str]:
        """What was sent of the records the target refused, read again from the input."""
        if self.inputs is None:
            return {}
        wanted: set[int] = set()
        for outcome in committed.values():
            failures = outcome.failures
            if failures.num_rows:
                unknown = failures.filter(pc.is_null(failures["raw"]))
                wanted.update(cast("list[int]", unknown["record_number"].to_pylist()))
        return self.inputs.originals(wanted)

    @staticmethod
    def _write_next(
        chunk: Future[tuple[bytes, pa.Table]],
        results_file: BinaryIO,
        failed_file: TextIO,
        failed_format: FailedRecordsFormat,
    ) -> None:
        rows_text, failed = chunk.result()
        results_file.write(rows_text)
        failed_file.write(failed_format.rows(failed))

    def _chunk_text(
        self, entry: ChunkEntry, committed: dict[int, ChunkOutcome], originals: dict[int, str]
    ) -> tuple[bytes, pa.Table]:
        """(the chunk's results rows as CSV text without a header, its failed records)."""
        valid = read_table(self.blobs, keys.chunk_key(self.batch_id, entry.index))
        errors = read_table(self.blobs, keys.errors_key(self.batch_id, entry.index))
        outcome = committed.get(entry.index) or ChunkOutcome(
            entry.index, 0, ERRORS_SCHEMA.empty_table()
        )
        rows, failed = chunk_results(valid, errors, outcome, self.dataset, originals)
        text = pa.BufferOutputStream()
        pacsv.write_csv(rows, text, _NO_HEADER)
        return text.getvalue().to_pybytes(), failed

    async def write(self, committed: dict[int, ChunkOutcome]) -> None:
        with tempfile.TemporaryDirectory(prefix="batchyard-results-") as tmp:
            results_path, failed_path = await asyncio.to_thread(self.build, committed, Path(tmp))
            name = f"{self.dataset.name}-{self.batch_id}"
            await self.blobs.write_file(
                keys.results_key(self.batch_id),
                results_path,
                content_type=CSV_CONTENT_TYPE,
                filename=f"{name}-results.csv",
            )
            input_format = self.manifest.input_format
            await self.blobs.write_file(
                keys.failed_records_key(self.batch_id),
                failed_path,
                content_type=content_type(input_format),
                filename=f"{name}-failed-records.{extension(input_format)}",
            )
