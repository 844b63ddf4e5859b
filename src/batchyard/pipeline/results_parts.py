"""Results written as chunks commit: each chunk's part of the results files is stored as soon as
its outcome is committed, by the participant that applied it (or found it already done), so that
writing the results after the last chunk only joins the parts in order (pipeline/results.py).

A part is made from what the stream holds at commit: the chunk's valid records (or, where
validation staged them for processing, their staged copy), its invalid records, its outcome,
and what was sent of the records the target refused, taken from the chunk's raw records still
in memory. A part is written whole or not at all (blob writes are atomic), under the chunk's
number: writing it again (a chunk found already done after a crash) replaces it, never adds a
second copy. Parts live under the batch's staged prefix, removed once the batch has ended.

A part that is missing (its participant died between commit and part, or the chunk's refused
records were valid ones whose text only the input still holds: the two-pass modes) is made by
the results writer from the staged chunk and the ledger, exactly as a written part would be.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from batchyard.domain.batches import Batch, Operation
from batchyard.domain.outcomes import RECORD_NUMBER, ChunkOutcome, empty_errors
from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import put_bytes, read_table
from batchyard.pipeline.failed_records import FailedRecordsFormat
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.pipeline.results_chunk import ResultsPart, applied_part, refused_without_text
from batchyard.pipeline.results_join import Headers, ResultsJoin, results_headers
from batchyard.storage.blobs import BlobStore

logger = logging.getLogger("batchyard.pipeline")

#: What was sent of the records numbered in the list (ascending), by record number.
Originals = Callable[[list[int]], dict[int, str]]


@dataclass(frozen=True, slots=True)
class ChunkRecords:
    """A chunk's records as validation left them, kept in memory until its outcome is known."""

    valid: pa.Table
    errors: pa.Table
    originals: Originals


def _nothing_sent(wanted: list[int]) -> dict[int, str]:
    """Originals of a chunk the target refused nothing of: none is ever asked for."""
    return {}


def failed_records_format(
    manifest: Manifest, dataset: Dataset, delimiter: str
) -> FailedRecordsFormat:
    """The failed-records file's format: the first source's format, fields and delimiter."""
    columns = list(manifest.input_columns) or list(dataset.column_names)
    return FailedRecordsFormat(manifest.input_format, columns, delimiter)


def has_output(batch: Batch) -> bool:
    """Whether results.csv has an ``output`` column: for operations that answer per record."""
    return batch.operation not in set(Operation)


def staged_errors(
    blobs: BlobStore, batch_id: str, index: int, entry: ChunkEntry | None
) -> pa.Table:
    """The staged per-record errors of chunk ``index`` (call from a worker thread).

    Validation writes no errors object for a chunk whose manifest ``entry`` counts no invalid
    record, so the entry, not a missing object, says there are none; without an entry, or with
    invalid records, the object is read (and a missing one is an error, as it always was).
    """
    if entry is not None and entry.index == index and entry.invalid_count == 0:
        return empty_errors()
    return read_table(blobs, keys.errors_key(batch_id, index))


def manifest_entry(manifest: Manifest, index: int) -> ChunkEntry | None:
    """Chunk ``index``'s entry in ``manifest`` (chunks are numbered by their place in it)."""
    chunks = manifest.chunks
    if index < len(chunks) and chunks[index].index == index:
        return chunks[index]
    return next((entry for entry in chunks if entry.index == index), None)


def read_part(blobs: BlobStore, batch_id: str, index: int) -> ResultsPart | None:
    """The stored part of chunk ``index``, or None (call from a worker thread)."""
    try:
        data = blobs.read_whole(keys.results_part_key(batch_id, index))
    except FileNotFoundError:
        return None
    return ResultsPart.decode(data)


class ResultsParts:
    """Writes one batch's results parts as its chunks' outcomes come in, and hands each one
    stored to ``join`` (the results files this run of the batch joins as it goes)."""

    def __init__(
        self,
        blobs: BlobStore,
        batch: Batch,
        dataset: Dataset,
        manifest: Manifest,
        join: ResultsJoin | None = None,
    ):
        self.blobs = blobs
        self.batch = batch
        self.dataset = dataset
        #: Validation's manifest while chunks are applied as it goes: the input's fields are in
        #: it before the first chunk is handed over.
        self.manifest = manifest
        self.join = join
        self._held: dict[int, ChunkRecords] = {}
        self._join_headers: Headers | None = None

    def hold(self, index: int, records: ChunkRecords) -> None:
        """Keep what chunk ``index``'s part needs in memory until ``write`` makes it.

        Of the valid records only their numbers and keys, as validation stages them: the rest
        of their columns is freed once the chunk is applied, though its part may wait for the
        other chunks committed with it.
        """
        numbered = records.valid.select([*self.dataset.primary_key, RECORD_NUMBER])
        self._held[index] = ChunkRecords(numbered, records.errors, records.originals)

    def settle(self, outcome: ChunkOutcome) -> None:
        """Let go of chunk ``outcome.index``'s raw records once its committed outcome shows
        that its part needs none of them (the target refused no record of it, as for most
        chunks): until its part is made they would be a whole raw chunk held for nothing.
        """
        held = self._held.get(outcome.index)
        if held is not None and not outcome.failures.num_rows:
            self._held[outcome.index] = ChunkRecords(held.valid, held.errors, _nothing_sent)

    async def write(self, outcome: ChunkOutcome) -> None:
        """Store the part of the chunk whose committed ``outcome`` this is.

        A part that cannot be made or stored is logged and left to the results writer, which
        makes any missing part itself: the batch goes on either way.
        """
        records = self._held.pop(outcome.index, None)
        try:
            made = await asyncio.to_thread(self._encoded, outcome, records)
            if made is not None:
                part, encoded = made
                key = keys.results_part_key(self.batch.id, outcome.index)
                await put_bytes(self.blobs, key, encoded)
                if self.join is not None:
                    await asyncio.to_thread(self.join.add, outcome.index, part, self._headers())
        except Exception:
            logger.warning(
                "batch %s: results part of chunk %d not written; made with the results",
                self.batch.id,
                outcome.index,
                exc_info=True,
            )

    def _encoded(
        self, outcome: ChunkOutcome, records: ChunkRecords | None
    ) -> tuple[ResultsPart, bytes] | None:
        """The part and its stored form, made and encoded in a worker thread: the loop only
        stores it."""
        part = self._make(outcome, records)
        return None if part is None else (part, part.encode())

    def _format(self) -> FailedRecordsFormat:
        return failed_records_format(self.manifest, self.dataset, self.batch.options.delimiter)

    def _headers(self) -> Headers:
        """The results files' headers, made once (the input's fields are known by the first
        part, see ``manifest``)."""
        if self._join_headers is None:
            format_ = self._format()
            self._join_headers = results_headers(format_, with_output=has_output(self.batch))
        return self._join_headers

    def _make(self, outcome: ChunkOutcome, records: ChunkRecords | None) -> ResultsPart | None:
        """The chunk's part; None where what was sent of a refused record is not at hand."""
        refused = refused_without_text(outcome)
        if records is None:
            if refused:
                return None
            valid = read_table(self.blobs, keys.chunk_key(self.batch.id, outcome.index))
            entry = manifest_entry(self.manifest, outcome.index)
            errors = staged_errors(self.blobs, self.batch.id, outcome.index, entry)
            sent: dict[int, str] = {}
        else:
            valid, errors = records.valid, records.errors
            sent = records.originals(refused) if refused else {}
        return applied_part(
            valid,
            errors,
            outcome,
            self.dataset,
            self._format(),
            originals=sent,
            with_output=has_output(self.batch),
        )
