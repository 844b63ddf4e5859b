"""Writing results: one row per input record in input order, and the failed records to fix
(pipeline/failed_records.py says how they are written), for a completed batch and for one that
ended before applying everything (pipeline/results_unapplied.py: its ``not_processed`` records).

Built chunk by chunk from the staged chunks, their validation errors and the target's ledger, so
memory stays bounded by a chunk whatever the input's size.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TextIO, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batchyard.domain.outcomes import OutcomeSource, empty_outputs
from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import put_bytes, read_table
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, ChunkOutcome
from batchyard.pipeline.failed_records import (
    CSV_CONTENT_TYPE,
    FailedRecordsFormat,
    content_type,
    extension,
)
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.pipeline.originals import InputReader, OriginalsWalker, Unread
from batchyard.pipeline.results_rows import (
    RESULTS_SCHEMA,
    key_text,
    raw_or_typed,
    result_rows,
)
from batchyard.pipeline.results_summary import ResultsSummary
from batchyard.pipeline.results_unapplied import (
    NOT_PROCESSED,
    outcome_counts,
    unapplied_chunk_results,
    unread_results,
)
from batchyard.storage.blobs import BlobStore

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
    ok_rows = result_rows(succeeded[RECORD_NUMBER], "succeeded", key=key_text(succeeded, dataset))
    if not failures.num_rows and not errors.num_rows:
        return ok_rows, ERRORS_SCHEMA.empty_table()
    failed = pa.concat_tables([errors.cast(ERRORS_SCHEMA), failures]).sort_by("record_number")
    bad_rows = result_rows(
        failed["record_number"],
        "failed",
        key=failed["key"],
        code=failed["code"],
        column=failed["column"],
        message=failed["message"],
    )
    rows = pa.concat_tables([ok_rows, bad_rows]).sort_by("record_number")
    return rows, raw_or_typed(failed, valid, originals or {})


#: A chunk's part of both files: results rows as CSV text, failed records (ERRORS_SCHEMA rows,
#: or their text already made), outcome counts.
ChunkText = tuple[bytes, pa.Table | str, Counter[str]]


class ResultsWriter:
    """Builds results.csv and the failed-records file in a temporary directory, then uploads them.

    Args:
        inputs: reads the stored input again for what was sent of records the target refused;
            without it, their typed values are written as text.
        delimiter: the input's CSV delimiter, which the failed-records file keeps.
        with_output: add an ``output`` column (each record's output as JSON text), for
            operations that answer per record (not insert, upsert, delete).
        unapplied: for a batch that ended before applying everything (cancelled, failed,
            refused in validation), why its records were not applied: a chunk the ledger does
            not know, and the records validation never read, are then ``not_processed``.
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
        unapplied: str | None = None,
        with_output: bool = False,
    ):
        self.blobs = blobs
        self.batch_id = batch_id
        self.dataset = dataset
        self.manifest = manifest
        self.inputs = inputs
        self.delimiter = delimiter
        self.unapplied = unapplied
        self.with_output = with_output
        self.counts: Counter[str] = Counter()
        columns = list(manifest.input_columns) or list(dataset.column_names)
        self.failed_format = FailedRecordsFormat(manifest.input_format, columns, delimiter)

    def build(self, target: OutcomeSource, workdir: Path) -> tuple[Path, Path]:
        """Write both files under ``workdir`` (call from a worker thread).

        Chunks are read and turned into CSV text by RESULTS_THREADS threads, at most
        RESULTS_AHEAD chunks ahead of the one being written, and written in input order: the
        stage is mostly pyarrow work that releases the GIL, while memory stays a few chunks.
        Each chunk's outcome (with the records the target refused) is read from the ledger
        with the chunk, never all at once: they may be millions of records; so is what was
        sent of those records, read again from the input one chunk's worth at a time.
        """
        results_path = workdir / "results.csv"
        failed_path = workdir / "failed-records"
        failed_format = self.failed_format
        originals = OriginalsWalker(self.inputs)
        with (
            results_path.open("wb") as results_file,
            failed_path.open("w", newline="", encoding="utf-8") as failed_file,
            ThreadPoolExecutor(RESULTS_THREADS, thread_name_prefix="results") as pool,
        ):
            header = RESULTS_SCHEMA.empty_table()
            if self.with_output:
                header = with_outputs(header, empty_outputs())
            pacsv.write_csv(header, results_file, PLAIN_HEADER)
            failed_file.write(failed_format.header())
            pending: deque[Future[ChunkText]] = deque()

            def flush(most: int) -> None:
                while len(pending) > most:
                    self._write_next(pending.popleft(), results_file, failed_file, failed_format)

            for entry in self.manifest.chunks:
                pending.append(pool.submit(self._chunk_job(target, entry, originals)))
                flush(RESULTS_AHEAD)
            if self.unapplied is not None and not self.manifest.complete:
                for unread in originals.rest(self.manifest.total):
                    job = functools.partial(
                        self._unread_text, unread, self.unapplied, failed_format
                    )
                    pending.append(pool.submit(job))
                    flush(RESULTS_AHEAD)
            flush(0)
        return results_path, failed_path

    def _chunk_job(
        self, target: OutcomeSource, entry: ChunkEntry, originals: OriginalsWalker
    ) -> Callable[[], ChunkText]:
        """What turns one chunk into text: applied (the ledger has it) or not."""
        outcome = target.chunk_outcome(self.batch_id, entry.index)
        if outcome is None and self.unapplied is not None:
            stop = entry.first_record + entry.record_count
            clean = not entry.invalid_count and not self.failed_format.jsonl
            fields = originals.fields(entry.first_record, stop) if clean else None
            if fields is not None:
                return functools.partial(self._clean_unapplied_text, entry, self.unapplied, fields)
            sent = originals.take(list(range(entry.first_record, stop)))
            return functools.partial(self._unapplied_text, entry, self.unapplied, sent)
        outcome = outcome or ChunkOutcome(entry.index, 0, ERRORS_SCHEMA.empty_table())
        sent = originals.take(_refused_without_text(outcome))
        return functools.partial(self._chunk_text, entry, outcome, sent)

    def _write_next(
        self,
        chunk: Future[ChunkText],
        results_file: BinaryIO,
        failed_file: TextIO,
        failed_format: FailedRecordsFormat,
    ) -> None:
        rows_text, failed, counts = chunk.result()
        results_file.write(rows_text)
        self.counts.update(counts)
        if isinstance(failed, str):
            failed_file.write(failed)
            return
        # In slices: each slice's values become Python objects at once, holding the GIL.
        for part in failed.to_batches(max_chunksize=FAILED_SLICE):
            failed_file.write(failed_format.rows(pa.Table.from_batches([part])))

    def _staged(self, entry: ChunkEntry) -> tuple[pa.Table, pa.Table]:
        valid = read_table(self.blobs, keys.chunk_key(self.batch_id, entry.index))
        return valid, read_table(self.blobs, keys.errors_key(self.batch_id, entry.index))

    def _chunk_text(
        self, entry: ChunkEntry, outcome: ChunkOutcome, originals: dict[int, str]
    ) -> ChunkText:
        """The part of an applied chunk."""
        valid, errors = self._staged(entry)
        rows, failed = chunk_results(valid, errors, outcome, self.dataset, originals)
        return _as_text(self._output_column(rows, outcome.outputs), failed)

    def _clean_unapplied_text(self, entry: ChunkEntry, reason: str, fields: pa.Table) -> ChunkText:
        """The part of a never applied chunk without an invalid record: its failed-records
        text made column-wise from what was sent."""
        valid, _ = self._staged(entry)
        rows = result_rows(valid[RECORD_NUMBER], NOT_PROCESSED, key=key_text(valid, self.dataset))
        rows = self._output_column(rows)
        text = self.failed_format.csv_rows(fields, f"{NOT_PROCESSED}: {reason}")
        return _as_text(rows, ERRORS_SCHEMA.empty_table())[0], text, Counter(outcome_counts(rows))

    def _unapplied_text(self, entry: ChunkEntry, reason: str, sent: dict[int, str]) -> ChunkText:
        """The part of a chunk the batch staged but never applied."""
        valid, errors = self._staged(entry)
        rows, failed = unapplied_chunk_results(valid, errors, self.dataset, reason, sent)
        return _as_text(self._output_column(rows), failed)

    def _output_column(self, rows: pa.Table, outputs: pa.Table | None = None) -> pa.Table:
        if not self.with_output:
            return rows
        return with_outputs(rows, empty_outputs() if outputs is None else outputs)

    def _unread_text(
        self, unread: Unread, reason: str, failed_format: FailedRecordsFormat
    ) -> ChunkText:
        """The part of records validation never reached."""
        rows, failed = unread_results(unread.numbers, unread.sent, reason)
        rows = self._output_column(rows)
        if unread.fields is not None and not failed_format.jsonl:
            text = failed_format.csv_rows(unread.fields, f"{NOT_PROCESSED}: {reason}")
            return _as_text(rows, failed)[0], text, Counter(outcome_counts(rows))
        return _as_text(rows, failed)

    async def write(self, target: OutcomeSource) -> None:
        with tempfile.TemporaryDirectory(prefix="batchyard-results-") as tmp:
            results_path, failed_path = await asyncio.to_thread(self.build, target, Path(tmp))
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
        summary = ResultsSummary.of(self.counts, extension(input_format))
        await put_bytes(self.blobs, keys.results_summary_key(self.batch_id), summary.encode())


def with_outputs(rows: pa.Table, outputs: pa.Table) -> pa.Table:
    """``rows`` plus an ``output`` column: each record's output (JSON text), null where none."""
    if not outputs.num_rows:
        return rows.append_column("output", pa.nulls(rows.num_rows, pa.string()))
    where = pc.index_in(rows["record_number"], value_set=outputs["record_number"])
    return rows.append_column("output", pc.take(outputs["output"], where))


def _as_text(rows: pa.Table, failed: pa.Table) -> ChunkText:
    """Results rows as CSV text without a header, beside the failed records and the counts."""
    text = pa.BufferOutputStream()
    pacsv.write_csv(rows, text, _NO_HEADER)
    return text.getvalue().to_pybytes(), failed, Counter(outcome_counts(rows))


def _refused_without_text(outcome: ChunkOutcome) -> list[int]:
    """Record numbers, ascending, of the chunk's records the target refused whose text the
    ledger does not hold (valid records: only their typed values were staged)."""
    failures = outcome.failures
    if not failures.num_rows:
        return []
    unknown = failures.filter(pc.is_null(failures["raw"]))
    return sorted(cast("list[int]", unknown["record_number"].to_pylist()))
