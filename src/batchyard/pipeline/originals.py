"""Records as the client sent them, read again from the stored input for the failed-records file.

Validation keeps the original fields of the records it refuses. Records the target refuses
(a duplicate key, say) were valid, so only their typed values were staged, and typed values
written back as text are not what was sent (``Z`` would come back as ``+00:00``). Those few
records are read again here: one streaming pass over the stored input with the same readers,
keeping only the wanted records' fields, so memory holds one chunk and the records asked for.
"""

from __future__ import annotations

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
from batchyard.pipeline.formats_common import line_raw, to_json
from batchyard.storage.blobs import BlobStore

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


def as_text(values: Any) -> Any:
    """Dates and timestamps as text, others as they are."""
    if pa.types.is_timestamp(values.type):
        aware = values.cast(pa.timestamp(values.type.unit, tz=values.type.tz or "UTC"))
        return aware.cast(pa.string())
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

    def originals(self, wanted: set[int]) -> dict[int, str]:
        """The original fields (ERRORS_SCHEMA.raw) of the ``wanted`` record numbers."""
        found: dict[int, str] = {}
        if not wanted:
            return found
        for raw, offset in self._chunks():
            first = raw.first_record + offset
            if not any(first <= n < first + raw.record_count for n in wanted):
                continue
            numbers = pc.add(raw.table[RECORD_NUMBER], offset)
            hit = pc.is_in(numbers, value_set=pa.array(sorted(wanted), pa.int64()))
            indices = cast("list[int]", pc.indices_nonzero(hit).to_pylist())
            shifted = cast("list[int]", numbers.take(indices).to_pylist())
            found.update(zip(shifted, original_fields(raw, indices), strict=True))
            if len(found) == len(wanted):
                break
        return found

    def _chunks(self) -> Iterator[tuple[RawChunk, int]]:
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
                chunk_bytes=self.chunk_bytes,
                max_decompressed_bytes=self.max_decompressed_bytes,
            )
        finally:
            reader.close()


def name_hint(source: Source) -> str | None:
    """The file name a source's URL ends in: breaks ties when its content cannot."""
    if source.url is None:
        return None
    return posixpath.basename(urlsplit(source.url).path) or None
