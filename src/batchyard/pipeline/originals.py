"""Records as the client sent them, read again from the stored input for the failed-records file.

Validation keeps the original fields of the records it refuses. Records the target refuses
(a duplicate key, say) were valid, so only their typed values were staged, and typed values
written back as text are not what was sent (``Z`` would come back as ``+00:00``). Those few
records are read again here: one streaming pass over the stored input with the same readers,
keeping only the wanted records' fields, so memory holds one chunk and the records asked for.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.batches import Batch, Source
from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.chunks import RECORD_NUMBER, RawChunk
from batchyard.pipeline.formats import detect_format, read_chunks
from batchyard.pipeline.formats_common import (
    DEFAULT_HEADER_LIMITS,
    HeaderLimits,
    line_raw,
    to_json,
)
from batchyard.settings import Settings
from batchyard.storage.blobs import BlobStore

logger = logging.getLogger("batchyard.pipeline")
#: How much of a source is sniffed for its format, as validation does.
_HEAD_BYTES = 64 * 1024


def original_fields(raw: RawChunk, indices: list[int]) -> list[str]:
    """The records at ``indices`` of ``raw`` as sent (ERRORS_SCHEMA.raw): their lines for JSON
    Lines, else JSON objects of their fields as read."""
    if raw.lines is not None:
        return [line_raw(raw.lines[i]) for i in indices]
    picked = raw.table.take(pa.array(indices, pa.int64()))
    return [to_json(row) for row in field_values(picked)]


def field_values(table: pa.Table) -> list[dict[str, Any]]:
    """A raw table's records as field → value, without the pipeline's own columns.

    Dates and timestamps (Parquet) become text: Python's datetime cannot hold every year.
    """
    fields = table.drop_columns([n for n in table.column_names if n in _OWN_COLUMNS])
    columns = [as_text(fields.column(i).combine_chunks()) for i in range(fields.num_columns)]
    return pa.table(columns, names=fields.column_names).to_pylist()


_OWN_COLUMNS = frozenset({RECORD_NUMBER})


#: Seconds since the epoch of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: a timestamp outside
#: them has no ISO 8601 text (Arrow would print garbage for it).
_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000}


def as_text(values: Any) -> Any:
    """Dates and timestamps as text, others as they are.

    A timestamp outside the years 1 to 9999 is shown as the number it was sent as, with its
    unit (``9223372036854775 s since the epoch``): what it was, not what Arrow makes of it.
    """
    if pa.types.is_timestamp(values.type):
        unit = values.type.unit
        aware = values.cast(pa.timestamp(unit, tz=values.type.tz or "UTC"))
        text = aware.cast(pa.string())
        per_second = _PER_SECOND.get(unit)
        if per_second is None:  # nanoseconds: int64 cannot leave the years 1677 to 2262
            return text
        counts = values.cast(pa.int64())
        inside = pc.and_(
            pc.greater_equal(counts, pa.scalar(_FIRST_SECOND * per_second, pa.int64())),
            pc.less(counts, pa.scalar((_LAST_SECOND + 1) * per_second, pa.int64())),
        )
        numbers = pc.binary_join_element_wise(
            counts.cast(pa.string()), f" {unit} since the epoch", ""
        )
        return pc.if_else(inside, text, numbers)
    if pa.types.is_date(values.type):
        return values.cast(pa.string())
    return values


@dataclass(frozen=True, slots=True)
class InputReader:
    """How to read a batch's stored input again, exactly as its validation read it."""

    blobs: BlobStore
    batch: Batch
    dataset: Dataset
    chunk_bytes: int
    max_decompressed_bytes: int | None
    max_record_bytes: int = 16 * 2**20
    header_limits: HeaderLimits = DEFAULT_HEADER_LIMITS

    @classmethod
    def of(
        cls, blobs: BlobStore, batch: Batch, dataset: Dataset, settings: Settings
    ) -> InputReader:
        """The reader of ``batch``'s input under the server's reading limits."""
        return cls(
            blobs,
            batch,
            dataset,
            settings.chunk_bytes,
            settings.max_upload_bytes,
            settings.max_record_bytes,
            HeaderLimits(settings.max_header_columns, settings.max_header_bytes),
        )

    def originals(self, wanted: set[int]) -> dict[int, str]:
        """The original fields (ERRORS_SCHEMA.raw) of the ``wanted`` record numbers."""
        return OriginalsWalker(self).take(sorted(wanted))

    def chunks(self) -> Iterator[tuple[RawChunk, int]]:
        """Every source's raw chunks with the offset that numbers them across sources."""
        offset = 0
        for index, source in enumerate(self.batch.sources):
            last = 0
            for raw in self._source_chunks(index, source):
                yield raw, offset
                last = raw.first_record + raw.record_count - 1
            offset += last

    def _source_chunks(self, index: int, source: Source) -> Iterator[RawChunk]:
        reader = self.blobs.open_reader(keys.input_key(self.batch.id, index))
        try:
            head = reader.read(_HEAD_BYTES)
            reader.seek(0)
            fmt, gzipped = detect_format(head, name_hint(source), self.batch.format)
            yield from read_chunks(
                reader,
                fmt,
                gzip=gzipped,
                dataset=self.dataset,
                options=self.batch.options,
                operation=self.batch.operation,
                chunk_bytes=self.chunk_bytes,
                max_decompressed_bytes=self.max_decompressed_bytes,
                max_record_bytes=self.max_record_bytes,
                header_limits=self.header_limits,
            )
        finally:
            reader.close()


class OriginalsWalker:
    """Reads the input again once, front to back, handing out what was sent of the records
    asked for: asked in ascending order, it holds one raw chunk at a time, never the input."""

    def __init__(self, inputs: InputReader | None) -> None:
        self._chunks = inputs.chunks() if inputs is not None else None
        self._current: tuple[RawChunk, int] | None = None

    def _next_chunk(self) -> tuple[RawChunk, int] | None:
        """The input's next raw chunk; None at its end, or where it cannot be read any more
        (what ended a failed batch may be that very damage: the records before it still count)."""
        if self._chunks is None:
            return None
        try:
            chunk = next(self._chunks, None)
        except Exception:
            logger.info("input read again up to damage it holds", exc_info=True)
            chunk = None
        if chunk is None:
            self._chunks = None
        return chunk

    def rest(self, after: int) -> Iterator[Unread]:
        """Every record numbered above ``after``, a chunk at a time: the records a stopped
        validation never reached, with what was sent of them."""
        current, self._current = self._current, None
        while (current := current or self._next_chunk()) is not None:
            unread = _unread_in(*current, after)
            if unread is not None:
                yield unread
            current = None

    def fields(self, first: int, stop: int) -> pa.Table | None:
        """The input's fields, as text, of the records numbered ``first`` up to ``stop``: for
        a run of records that all parsed into text fields (a CSV chunk without a malformed
        line), else None and ``take`` gives them record by record."""
        while self._current is not None or self._chunks is not None:
            if self._current is None:
                self._current = self._next_chunk()
                continue
            raw, offset = self._current
            if first >= raw.first_record + offset + raw.record_count:
                self._current = None
                continue
            numbers = pc.add(raw.table[RECORD_NUMBER], offset)
            inside = pc.and_(
                pc.greater_equal(numbers, pa.scalar(first, pa.int64())),
                pc.less(numbers, pa.scalar(stop, pa.int64())),
            )
            rows = raw.table.filter(inside).drop_columns([RECORD_NUMBER])
            as_text = all(pa.types.is_string(t) for t in rows.schema.types)
            if raw.lines is not None or not as_text or rows.num_rows != stop - first:
                return None
            return rows
        return None

    def take(self, wanted: list[int]) -> dict[int, str]:
        """The original fields of the ``wanted`` record numbers (ascending, and above every
        number asked before); records the input no longer holds are left out."""
        found: dict[int, str] = {}
        remaining = wanted
        while remaining and self._chunks is not None:
            if self._current is None:
                self._current = self._next_chunk()
                if self._current is None:
                    break
            raw, offset = self._current
            end = raw.first_record + offset + raw.record_count
            inside = [n for n in remaining if n < end]
            if inside:
                found.update(originals_in(raw, offset, inside))
            remaining = [n for n in remaining if n >= end]
            if remaining:
                self._current = None
        return found


@dataclass(frozen=True, slots=True)
class Unread:
    """Records validation never reached: their numbers, in order, and what was sent of each:
    ``fields`` (the input's fields as text, one row per record) where every record of the run
    parsed into fields as text, else ``sent`` (ERRORS_SCHEMA.raw, one per record)."""

    numbers: list[int]
    fields: pa.Table | None = None
    sent: list[str | None] | None = None


def _unread_in(raw: RawChunk, offset: int, after: int) -> Unread | None:
    local_after = pa.scalar(after - offset, pa.int64())
    rows = raw.table.filter(pc.greater(raw.table[RECORD_NUMBER], local_after))
    unparsed = raw.errors.filter(pc.greater(raw.errors["record_number"], local_after))
    numbers = cast("list[int]", pc.add(rows[RECORD_NUMBER], offset).to_pylist())
    if not numbers and not unparsed.num_rows:
        return None
    fields = rows.drop_columns([RECORD_NUMBER])
    as_text = all(pa.types.is_string(t) for t in fields.schema.types)
    if raw.lines is None and as_text and not unparsed.num_rows:
        return Unread(numbers, fields=fields)  # the common case: no Python object per record
    indices = cast(
        "list[int]",
        pc.indices_nonzero(pc.greater(raw.table[RECORD_NUMBER], local_after)).to_pylist(),
    )
    records: dict[int, str | None] = dict(zip(numbers, original_fields(raw, indices), strict=True))
    texts = cast("list[str | None]", unparsed["raw"].to_pylist())
    for number, text in zip(
        cast("list[int]", unparsed["record_number"].to_pylist()), texts, strict=True
    ):
        records[number + offset] = text
    ordered = sorted(records)
    return Unread(ordered, sent=[records[n] for n in ordered])


def originals_in(raw: RawChunk, offset: int, wanted: list[int]) -> dict[int, str]:
    """What was sent of the ``wanted`` record numbers among ``raw``'s records, numbered across
    sources (``offset``); records ``raw`` does not hold are left out."""
    numbers = pc.add(raw.table[RECORD_NUMBER], offset)
    hit = pc.is_in(numbers, value_set=pa.array(wanted, pa.int64()))
    indices = cast("list[int]", pc.indices_nonzero(hit).to_pylist())
    shifted = cast("list[int]", numbers.take(indices).to_pylist())
    return dict(zip(shifted, original_fields(raw, indices), strict=True))


def name_hint(source: Source) -> str | None:
    """The file name a source's URL ends in: breaks ties when its content cannot."""
    if source.url is None:
        return None
    return posixpath.basename(urlsplit(source.url).path) or None
