"""Guess a dataset schema from a sample file, so a first import needs no hand-written schema.

Only the start of the file is read (``sample_bytes``; Parquet: the first rows), so a huge file
costs no more than a small one. The guess is deliberately permissive: every column is nullable
except an ``id`` primary key, since a sample cannot prove a later record has no empty value.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from batchyard.client._uploads import FileArg
from batchyard.client.models import Column, DatasetSchema

DEFAULT_SAMPLE_BYTES = 4 * 2**20
SAMPLE_ROWS = 10_000
MAX_DECIMAL_PRECISION = 38
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_SUFFIXES = (".gz", ".csv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".tsv", ".txt")


def infer_schema(
    file: FileArg,
    name: str | None = None,
    *,
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
    delimiter: str | None = None,
) -> DatasetSchema:
    """A schema for the records in ``file`` (CSV, JSON Lines or Parquet, optionally gzip'd).

    ``name`` defaults to the file name without its extensions, made an identifier;
    ``delimiter`` is the CSV field separator (default: a comma).
    """
    with _open(file) as source:
        sample = _read_sample(source, sample_bytes, delimiter or ",")
    if sample.num_columns == 0:
        raise ValueError("the sample has no columns to infer a schema from")
    primary_key = _primary_key(sample)
    columns = [
        _column(str(field.name), sample.column(i), field.name in primary_key)
        for i, field in enumerate(sample.schema)
    ]
    return DatasetSchema(
        name=name or _name_from(file), columns=columns, primary_key=list(primary_key)
    )


def _open(file: FileArg) -> contextlib.AbstractContextManager[BinaryIO]:
    """The file to read: a path is opened (and closed); a caller's file object stays open."""
    if isinstance(file, str | os.PathLike):
        return Path(file).open("rb")
    return contextlib.nullcontext(file)


def _read_sample(source: BinaryIO, sample_bytes: int, delimiter: str) -> pa.Table:
    head = source.read(4)
    if head == _PARQUET_MAGIC:
        return _parquet_sample(source, head)
    stream: io.BufferedIOBase = io.BufferedReader(_Prefixed(head, source))
    if head.startswith(_GZIP_MAGIC):
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    data = stream.read(sample_bytes)
    if len(data) == sample_bytes and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]  # whole records only
    try:
        if data.lstrip().startswith(b"{"):
            return pajson.read_json(io.BytesIO(data)).slice(0, SAMPLE_ROWS)
        # A ragged row in the sample says nothing about the columns: skip it.
        parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=lambda _row: "skip")
        return pacsv.read_csv(io.BytesIO(data), parse_options=parse).slice(0, SAMPLE_ROWS)
    except pa.ArrowInvalid as error:
        raise ValueError(f"cannot read the sample as CSV or JSON Lines: {error}") from None


def _parquet_sample(source: BinaryIO, head: bytes) -> pa.Table:
    source.seek(source.tell() - len(head))
    parquet = pq.ParquetFile(source)
    first = next(parquet.iter_batches(batch_size=SAMPLE_ROWS), None)
    if first is None:
        return parquet.schema_arrow.empty_table()
    return pa.Table.from_batches([first])


class _Prefixed(io.RawIOBase):
    """``source`` with bytes already read from it put back in front (for sniffing magic)."""

    def __init__(self, prefix: bytes, source: BinaryIO) -> None:
        self._prefix = prefix
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _primary_key(sample: pa.Table) -> tuple[str, ...]:
    """``id`` when the sample shows it is a usable key: present in every record and unique."""
    if "id" not in sample.column_names:
        return ()
    ids = sample.column("id")
    keyable = pa.types.is_integer(ids.type) or pa.types.is_string(ids.type)
    if keyable and ids.null_count == 0 and len(pc.unique(ids)) == len(ids) > 0:
        return ("id",)
    return ()


def _column(name: str, values: pa.ChunkedArray[Any], is_key: bool) -> Column:
    kind = values.type
    if pa.types.is_boolean(kind):
        return Column(name=name, type="boolean", nullable=not is_key)
    if pa.types.is_integer(kind):
        return Column(name=name, type="integer", nullable=not is_key)
    if pa.types.is_floating(kind):
        return Column(name=name, type="float")
    if pa.types.is_decimal(kind):
        precision = min(int(kind.precision), MAX_DECIMAL_PRECISION)
        scale = min(int(kind.scale), precision)
        return Column(name=name, type="decimal", precision=precision, scale=scale)
    if pa.types.is_date(kind):
        return Column(name=name, type="date")
    if pa.types.is_timestamp(kind):
        return Column(name=name, type="timestamp")
    if pa.types.is_nested(kind):
        return Column(name=name, type="json")
    if _all_uuids(values):
        return Column(name=name, type="uuid", nullable=not is_key)
    return Column(name=name, type="string", nullable=not is_key)


def _all_uuids(values: pa.ChunkedArray[Any]) -> bool:
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    present = pc.drop_null(values)
    return len(present) > 0 and bool(pc.all(pc.match_substring_regex(present, _UUID)).as_py())


def _name_from(file: FileArg) -> str:
    raw = getattr(file, "name", None) if not isinstance(file, str | os.PathLike) else file
    stem = Path(os.fspath(raw)).name.lower() if isinstance(raw, str | os.PathLike) else "dataset"
    while stem.endswith(_SUFFIXES):
        stem = stem[: stem.rindex(".")]
    name = re.sub(r"[^a-z0-9_]+", "_", stem).strip("_") or "dataset"
    return ("_" + name if name[0].isdigit() else name)[:63]
