"""Parquet: record batches straight from the file, keeping the file's own column types."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from batchyard.domain.errors import InputRejected
from batchyard.domain.reading import Reading
from batchyard.pipeline.chunks import RawChunk, empty_errors
from batchyard.pipeline.formats_common import Reader, check_fields, number_records
from batchyard.pipeline.parquet_row_groups import RowGroupReader, random_access

#: Spooled gzip'd Parquet stays in memory up to this size, then goes to a temporary file.
_SPOOL_IN_MEMORY = 8 << 20


def read_parquet(
    stream: Any,
    *,
    reading: Reading,
    chunk_bytes: int,
    spool: bool = False,
    max_fields: int = 4096,
) -> Iterator[RawChunk]:
    """One RawChunk per record batch of about ``chunk_bytes`` (uncompressed).

    Args:
        spool: copy ``stream`` to a temporary file first (Parquet needs to seek; a gunzip
            stream cannot).
        max_fields: most fields the schema may have, the cap on a CSV header's fields.
    """
    if not spool:
        yield from _read_file(stream, reading, chunk_bytes, max_fields)
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as copy:
        _copy(stream, copy)
        copy.seek(0)
        yield from _read_file(copy, reading, chunk_bytes, max_fields)


def _copy(stream: Reader, target: IO[bytes]) -> None:
    shutil.copyfileobj(stream, target, 1 << 20)


def _open(source: Any) -> pq.ParquetFile:
    """The file's footer, read now; its row groups are read as batches are asked for."""
    try:
        return pq.ParquetFile(source, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputRejected(f"the input is not a readable Parquet file ({exc})") from exc


def _batch_rows(parquet: pq.ParquetFile, chunk_bytes: int) -> int:
    """Rows per batch so that a batch holds about ``chunk_bytes`` of uncompressed data."""
    meta = parquet.metadata
    if meta.num_rows == 0:
        return 1024
    total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    per_row = max(1, total // meta.num_rows)
    return max(1, chunk_bytes // per_row)


def _read_file(
    source: Any, reading: Reading, chunk_bytes: int, max_fields: int
) -> Iterator[RawChunk]:
    source, remote = random_access(source)
    parquet = _open(source)
    names = parquet.schema_arrow.names
    if len(names) > max_fields:
        # As a CSV header: a schema this wide is refused before any of it is read.
        raise InputRejected(
            f"the Parquet schema has {len(names)} fields, more than the {max_fields} allowed"
        )
    keep = check_fields(names, reading, "Parquet schema")
    next_record = 1
    row_groups = RowGroupReader(source, parquet, remote=remote, columns=keep)
    batches = row_groups.batches(_batch_rows(parquet, chunk_bytes))
    index = 0
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            table = number_records(pa.Table.from_batches([batch]).select(keep), next_record)
            yield RawChunk(index, next_record, batch.num_rows, table, empty_errors())
            index += 1
            next_record += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputRejected(f"the Parquet file cannot be read ({exc})") from exc
