"""Reading inputs: which format a file is in, and its records as a stream of RawChunks.

Every reader streams: memory is bounded by the chunk size, never by the file size.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.batches import BatchOptions, InputFormat, Operation
from batchyard.domain.errors import InputRejected, UnsupportedFormat
from batchyard.domain.reading import Reading
from batchyard.domain.records import RecordErrorCode
from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import RECORD_NUMBER, RawChunk
from batchyard.pipeline.formats_blocks import BOM
from batchyard.pipeline.formats_common import (
    DEFAULT_HEADER_LIMITS,
    ErrorRows,
    GunzipReader,
    HeaderLimits,
    Reader,
)
from batchyard.pipeline.formats_csv import read_csv
from batchyard.pipeline.formats_jsonl import read_jsonl
from batchyard.pipeline.formats_parquet import read_parquet

__all__ = ["detect_format", "read_chunks"]

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
#: How much of a gzip'd head is inflated to sniff the inner format.
_SNIFF_BYTES = 64 * 1024
_SUFFIXES = {
    ".csv": InputFormat.CSV,
    ".tsv": InputFormat.CSV,
    ".jsonl": InputFormat.JSONL,
    ".ndjson": InputFormat.JSONL,
    ".parquet": InputFormat.PARQUET,
}


def _format_from_name(name_hint: str | None) -> InputFormat | None:
    if not name_hint:
        return None
    name = name_hint.lower().removesuffix(".gz").removesuffix(".gzip")
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def _gunzip_head(head: bytes) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _SNIFF_BYTES)
    except zlib.error as exc:
        raise InputRejected(f"the input starts like gzip but cannot be inflated ({exc})") from exc


def _sniff(inner: bytes, hint: InputFormat | None) -> InputFormat:
    """The format the content shows; the name decides only when the content cannot."""
    if inner.startswith(PARQUET_MAGIC):
        return InputFormat.PARQUET
    if hint == InputFormat.PARQUET:
        raise InputRejected("the input is named like a Parquet file but is not one (no PAR1 magic)")
    text = inner.removeprefix(BOM).lstrip()
    if not text:
        return hint or InputFormat.CSV
    if b"\0" in text[:4096]:
        raise UnsupportedFormat(
            "the input is binary data, not CSV, JSON Lines or Parquet "
            "(gzip is the only compression read)"
        )
    if text.startswith(b"["):
        raise UnsupportedFormat(
            "the input is a JSON array; send JSON Lines instead (one object per line)"
        )
    return InputFormat.JSONL if text.startswith(b"{") else InputFormat.CSV


def detect_format(
    head: bytes, name_hint: str | None, declared: InputFormat | None
) -> tuple[InputFormat, bool]:
    """The input's format and whether it is gzip'd, from its first bytes.

    Content decides (gzip and Parquet magic numbers, '{' for JSON Lines, else CSV); a declared
    format wins over what the content shows; the name's suffix only breaks ties (an empty head).
    """
    is_gzip = head.startswith(GZIP_MAGIC)
    inner = _gunzip_head(head) if is_gzip else head
    if declared is None:
        return _sniff(inner, _format_from_name(name_hint)), is_gzip
    if declared == InputFormat.PARQUET and inner and not inner.startswith(PARQUET_MAGIC):
        raise InputRejected("the batch declares format parquet but the input is not a Parquet file")
    return declared, is_gzip


#: Types whose values make a Parquet row large.
_TEXT_TYPES = (pa.string(), pa.large_string(), pa.binary(), pa.large_binary())


def _text_bytes(table: pa.Table) -> Any:
    """Per row, the bytes of its string and binary values (the bulk of any large row)."""
    total: Any = None
    for column in table.columns:
        if column.type in _TEXT_TYPES:
            lengths = pc.fill_null(pc.cast(pc.binary_length(column), pa.int64()), 0)
            total = lengths if total is None else pc.add(total, lengths)
    return total


def rows_within_limit(chunk: RawChunk, limit: int) -> RawChunk:
    """Parquet rows over the record size limit fail alone with record_too_large, as CSV records
    and JSON lines do (the values are already read: Parquet has no smaller unit to skip)."""
    sizes = _text_bytes(chunk.table)
    if sizes is None:
        return chunk
    big = pc.greater(sizes, pa.scalar(limit, pa.int64()))
    if not pc.any(big).as_py():
        return chunk
    errors = ErrorRows()
    message = f"record is larger than {limit} bytes"
    for number in chunk.table[RECORD_NUMBER].filter(big).to_pylist():
        errors.add(cast(int, number), RecordErrorCode.RECORD_TOO_LARGE, message)
    table = chunk.table.filter(pc.invert(big))
    merged = pa.concat_tables([chunk.errors, errors.table()]).sort_by("record_number")
    return dataclasses.replace(chunk, table=table, errors=merged)


def read_chunks(
    stream: BinaryIO,
    fmt: InputFormat,
    *,
    gzip: bool,
    dataset: Dataset,
    options: BatchOptions,
    operation: str = Operation.INSERT,
    chunk_bytes: int = 16 * 2**20,
    max_decompressed_bytes: int | None = None,
    max_record_bytes: int = 16 * 2**20,
    header_limits: HeaderLimits = DEFAULT_HEADER_LIMITS,
) -> Iterator[RawChunk]:
    """The input's records, chunk by chunk, numbered from 1 in input order.

    Raw tables name their columns by input field (what was sent); ``Reading`` says which
    column each field fills.

    Raises InputRejected when the input cannot be read as a whole (bad header, unknown or missing
    columns), PayloadTooLarge past ``max_decompressed_bytes`` of gzip'd input; a record that alone
    is bad becomes a row in its chunk's ``errors`` instead.
    """
    reading = Reading.of(dataset, options, operation)
    source: Reader = GunzipReader(stream, max_decompressed_bytes) if gzip else stream
    if fmt == InputFormat.PARQUET:
        parquet_source = source if gzip else stream
        chunks = read_parquet(
            parquet_source,
            reading=reading,
            chunk_bytes=chunk_bytes,
            spool=gzip,
            max_fields=header_limits.columns,
        )
        yield from (rows_within_limit(chunk, max_record_bytes) for chunk in chunks)
        return
    if fmt == InputFormat.CSV:
        yield from read_csv(
            source,
            reading=reading,
            chunk_bytes=chunk_bytes,
            max_record_bytes=max_record_bytes,
            header_limits=header_limits,
        )
        return
    yield from read_jsonl(
        source,
        reading=reading,
        chunk_bytes=chunk_bytes,
        max_record_bytes=max_record_bytes,
    )
