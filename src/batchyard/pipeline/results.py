"""Writing results: one row per input record in input order, and the failed records to fix
(pipeline/failed_records.py says how they are written), for a completed batch and for one that
ended before applying everything (pipeline/results_unapplied.py: its ``not_processed`` records).

Each chunk's part was written as the chunk committed (pipeline/results_parts.py), so writing
the results mostly joins the parts in input order. A chunk without a part (its participant
died between commit and part, a two-pass batch whose target refused valid records, a chunk
never applied, a dry run, an atomic batch) has its part made here, the same bytes, from the
staged chunk, its validation errors, the target's ledger and, for what was sent of records the
target refused, the input read again. Memory stays bounded by a few chunks whatever the
input's size.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa

from batchyard.domain.outcomes import OutcomeSource
from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import put_bytes, read_table
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, ChunkOutcome
from batchyard.pipeline.failed_records import CSV_CONTENT_TYPE, content_type, extension
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.pipeline.originals import InputReader, OriginalsWalker, Unread
from batchyard.pipeline.results_chunk import (
    ResultsPart,
    applied_part,
    refused_without_text,
    results_part,
    with_outputs,
)
from batchyard.pipeline.results_join import JoinedPrefix, results_headers
from batchyard.pipeline.results_parts import failed_records_format, read_part, staged_errors
from batchyard.pipeline.results_rows import key_text, result_rows
from batchyard.pipeline.results_summary import ResultsSummary
from batchyard.pipeline.results_unapplied import (
    NOT_PROCESSED,
    unapplied_chunk_results,
    unread_results,
)
from batchyard.storage.blobs import BlobStore

logger = logging.getLogger("batchyard.pipeline")

#: Threads that make the parts of chunks without one, and how many chunks they may get ahead
#: of the writer: the database work is over by then, so they may take two cores; a chunk's
#: text is about a third of its input, so memory stays near one chunk's size.
RESULTS_THREADS = 2
RESULTS_AHEAD = 3


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
        use_parts: join the parts written as chunks committed (False makes every part here,
            as the tests do to compare both ways).
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
        use_parts: bool = True,
        joined: JoinedPrefix | None = None,
    ):
        self.blobs = blobs
        self.batch_id = batch_id
        self.dataset = dataset
        self.manifest = manifest
        self.inputs = inputs
        self.delimiter = delimiter
        self.unapplied = unapplied
        self.with_output = with_output
        self.use_parts = use_parts
        self.counts: Counter[str] = Counter()
        self.failed_format = failed_records_format(manifest, dataset, delimiter)
        self.headers = results_headers(self.failed_format, with_output=with_output)
        self.joined = joined if use_parts and self._continues(joined) else None

    def _continues(self, joined: JoinedPrefix | None) -> bool:
        """Whether ``joined`` holds this batch's first chunks, as this writer writes them."""
        if joined is None or joined.headers != self.headers or self.unapplied is not None:
            return False
        chunks = self.manifest.chunks
        return joined.chunks <= len(chunks) and all(
            entry.index == n for n, entry in enumerate(chunks[: joined.chunks])
        )

    def build(self, target: OutcomeSource, workdir: Path) -> tuple[Path, Path]:
        """Write both files under ``workdir`` (call from a worker thread).

        A chunk's stored part is copied as it is. The others are made by RESULTS_THREADS
        threads, at most RESULTS_AHEAD chunks ahead of the one being written, and written in
        input order: mostly pyarrow work that releases the GIL, while memory stays a few
        chunks. Each such chunk's outcome (with the records the target refused) is read from
        the ledger with the chunk, never all at once: they may be millions of records; so is
        what was sent of those records, read again from the input one chunk's worth at a time.
        With ``joined``, its files are finished instead: only the chunks after them are added.
        """
        joined, skip = self.joined, 0
        logger.info(
            "results: %d of %d chunk(s) joined as they committed",
            joined.chunks if joined is not None else 0,
            len(self.manifest.chunks),
        )
        if joined is not None:  # the first chunks are in these files already
            results_path, failed_path, skip = joined.results_path, joined.failed_path, joined.chunks
            self.counts.update(joined.counts)
        else:
            results_path, failed_path = workdir / "results.csv", workdir / "failed-records"
        mode: Literal["ab", "wb"] = "ab" if joined is not None else "wb"
        originals = OriginalsWalker(self.inputs)
        with (
            results_path.open(mode) as results_file,
            failed_path.open(mode) as failed_file,
            ThreadPoolExecutor(RESULTS_THREADS, thread_name_prefix="results") as pool,
        ):
            if joined is None:
                results_file.write(self.headers.results)
                failed_file.write(self.headers.failed_records)
            pending: deque[Future[ResultsPart]] = deque()

            def flush(most: int) -> None:
                while len(pending) > most:
                    self._write_next(pending.popleft(), results_file, failed_file)

            for entry in self.manifest.chunks[skip:]:
                pending.append(self._chunk_part(pool, target, entry, originals))
                flush(RESULTS_AHEAD)
            if self.unapplied is not None and not self.manifest.complete:
                for unread in originals.rest(self.manifest.total):
                    pending.append(pool.submit(self._unread_part, unread, self.unapplied))
                    flush(RESULTS_AHEAD)
            flush(0)
        return results_path, failed_path

    def _chunk_part(
        self,
        pool: ThreadPoolExecutor,
        target: OutcomeSource,
        entry: ChunkEntry,
        originals: OriginalsWalker,
    ) -> Future[ResultsPart]:
        """The chunk's stored part, or its part being made in ``pool``."""
        stored = read_part(self.blobs, self.batch_id, entry.index) if self.use_parts else None
        if stored is not None:
            done: Future[ResultsPart] = Future()
            done.set_result(stored)
            return done
        return pool.submit(self._chunk_job(target, entry, originals))

    def _chunk_job(
        self, target: OutcomeSource, entry: ChunkEntry, originals: OriginalsWalker
    ) -> Callable[[], ResultsPart]:
        """What makes one chunk's part: applied (the ledger has it) or not."""
        outcome = target.chunk_outcome(self.batch_id, entry.index)
        if outcome is None and self.unapplied is not None:
            stop = entry.first_record + entry.record_count
            clean = not entry.invalid_count and not self.failed_format.jsonl
            fields = originals.fields(entry.first_record, stop) if clean else None
            if fields is not None:
                return functools.partial(self._clean_unapplied_part, entry, self.unapplied, fields)
            sent = originals.take(list(range(entry.first_record, stop)))
            return functools.partial(self._unapplied_part, entry, self.unapplied, sent)
        outcome = outcome or ChunkOutcome(entry.index, 0, ERRORS_SCHEMA.empty_table())
        sent = originals.take(refused_without_text(outcome))
        return functools.partial(self._applied_part, entry, outcome, sent)

    def _write_next(
        self, chunk: Future[ResultsPart], results_file: BinaryIO, failed_file: BinaryIO
    ) -> None:
        part = chunk.result()
        results_file.write(part.rows)
        failed_file.write(part.failed_records)
        self.counts.update(part.counts)

    def _staged(self, entry: ChunkEntry) -> tuple[pa.Table, pa.Table]:
        valid = read_table(self.blobs, keys.chunk_key(self.batch_id, entry.index))
        return valid, staged_errors(self.blobs, self.batch_id, entry.index, entry)

    def _applied_part(
        self, entry: ChunkEntry, outcome: ChunkOutcome, originals: dict[int, str]
    ) -> ResultsPart:
        valid, errors = self._staged(entry)
        return applied_part(
            valid,
            errors,
            outcome,
            self.dataset,
            self.failed_format,
            originals=originals,
            with_output=self.with_output,
        )

    def _clean_unapplied_part(
        self, entry: ChunkEntry, reason: str, fields: pa.Table
    ) -> ResultsPart:
        """The part of a never applied chunk without an invalid record: its failed-records
        text made column-wise from what was sent."""
        valid, _ = self._staged(entry)
        rows = result_rows(valid[RECORD_NUMBER], NOT_PROCESSED, key=key_text(valid, self.dataset))
        text = self.failed_format.csv_rows(fields, f"{NOT_PROCESSED}: {reason}")
        return results_part(self._output_column(rows), text, self.failed_format)

    def _unapplied_part(self, entry: ChunkEntry, reason: str, sent: dict[int, str]) -> ResultsPart:
        """The part of a chunk the batch staged but never applied."""
        valid, errors = self._staged(entry)
        rows, failed = unapplied_chunk_results(valid, errors, self.dataset, reason, sent)
        return results_part(self._output_column(rows), failed, self.failed_format)

    def _output_column(self, rows: pa.Table) -> pa.Table:
        return with_outputs(rows) if self.with_output else rows

    def _unread_part(self, unread: Unread, reason: str) -> ResultsPart:
        """The part of records validation never reached."""
        rows, failed = unread_results(unread.numbers, unread.sent, reason)
        rows = self._output_column(rows)
        if unread.fields is not None and not self.failed_format.jsonl:
            text = self.failed_format.csv_rows(unread.fields, f"{NOT_PROCESSED}: {reason}")
            return results_part(rows, text, self.failed_format)
        return results_part(rows, failed, self.failed_format)

    async def write(self, target: OutcomeSource) -> None:
        with self.blobs.scratch_directory() as tmp:
            results_path, failed_path = await asyncio.to_thread(self.build, target, Path(tmp))
            name = f"{self.dataset.name}-{self.batch_id}"
            await self.blobs.write_file(
                keys.results_key(self.batch_id),
                results_path,
                content_type=CSV_CONTENT_TYPE,
                filename=f"{name}-results.csv",
                move=True,
            )
            input_format = self.manifest.input_format
            await self.blobs.write_file(
                keys.failed_records_key(self.batch_id),
                failed_path,
                content_type=content_type(input_format),
                filename=f"{name}-failed-records.{extension(input_format)}",
                move=True,
            )
        summary = ResultsSummary.of(self.counts, extension(input_format))
        await put_bytes(self.blobs, keys.results_summary_key(self.batch_id), summary.encode())
