"""Read the start of a file into columns of values, the way the import will read the whole of it.

Only a bounded sample is read: at most ``sample_bytes`` of (decompressed) text and
``SAMPLE_RECORDS`` records; for Parquet the first rows, fewer when the file is wide. CSV is read
with Python's ``csv`` module (the reference docs/data-rules.md names for batchyard's reader),
JSON Lines one line at a time with ``json`` keeping each number's text, so that a ``Title`` that
is a number on one line and text on the next is seen as both rather than aborting the read.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from batchyard.client._uploads import FileArg
from batchyard.client.infer_quoting import QuotedText, mark_quoted

DEFAULT_SAMPLE_BYTES = 4 * 2**20
SAMPLE_RECORDS = 10_000
#: Values held at most for a Parquet sample: a 4,096-column file reads fewer rows.
SAMPLE_CELLS = 2_000_000
#: The delimiters a CSV sample is tried with, in order of preference on a tie.
DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SNIFF_RECORDS = 100
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
#: How much of a Parquet column chunk is read at a time.
_PARQUET_BUFFER = 1 << 20

Format = Literal["csv", "jsonl", "parquet"]


class JsonNumber(str):
    """A JSON number kept as the text it was written as (``12.50`` stays ``12.50``)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Sample:
    """The sampled records, column by column (``None`` is a missing value)."""

    format: Format
    fields: list[str]
    #: CSV: texts (``QuotedText`` where quoted); JSON Lines: str, JsonNumber, bool, dict or
    #: list; Parquet: Python values.
    columns: list[list[Any]]
    #: Parquet: each field's own type; CSV and JSON Lines: None.
    arrow_types: list[pa.DataType | None]
    records: int
    delimiter: str | None = None
    delimiter_detected: bool = False
    #: Records left out: a CSV line with the wrong number of fields, a line that is not JSON.
    skipped: int = 0


def read_sample(
    file: FileArg, *, sample_bytes: int = DEFAULT_SAMPLE_BYTES, delimiter: str | None = None
) -> Sample:
    """The first records of ``file`` (CSV, JSON Lines or Parquet, optionally gzip'd)."""
    with _open(file) as source:
        head = source.read(4)
        if head == _PARQUET_MAGIC:
            source.seek(source.tell() - len(head))
            return _parquet_sample(source)
        stream: io.BufferedIOBase = io.BufferedReader(_Prefixed(head, source))
        if head.startswith(_GZIP_MAGIC):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        try:
            data = stream.read(sample_bytes + 1)
        except (OSError, EOFError) as error:
            raise ValueError(f"cannot read the sample: {error}") from None
    truncated = len(data) > sample_bytes
    if truncated:  # whole records only; the last one may still be cut inside a quoted field
        data = data[: data.rfind(b"\n", 0, sample_bytes) + 1]
    text = data.decode("utf-8-sig", errors="replace")
    if _is_json_lines(text):
        return _jsonl_sample(text, truncated)
    if delimiter is not None:
        return _csv_sample(text, truncated, delimiter, detected=False)
    return _csv_sample(text, truncated, _delimiter_for_name(file), detected=True)


def _is_json_lines(text: str) -> bool:
    """Whether the input is JSON Lines: its first line that is not blank starts with ``{``, and
    one of the first lines is a JSON object or the first holds no delimiter (a CSV header
    ``{id},value`` is CSV; a JSON Lines file with a broken first line is still JSON Lines)."""
    lines = text.lstrip().split("\n", _SNIFF_RECORDS)[:_SNIFF_RECORDS]
    if not lines[0].startswith("{"):
        return False
    if not any(delimiter in lines[0] for delimiter in DELIMITERS):
        return True
    return any(_json_record(line) is not None for line in lines)


def _open(file: FileArg) -> contextlib.AbstractContextManager[BinaryIO]:
    """The file to read: a path is opened (and closed); a caller's file object stays open."""
    if isinstance(file, str | os.PathLike):
        return Path(file).open("rb")
    return contextlib.nullcontext(file)


def _delimiter_for_name(file: FileArg) -> str | None:
    """Tab for a ``.tsv`` file (also ``.tsv.gz``); otherwise the sample decides."""
    name = file if isinstance(file, str | os.PathLike) else getattr(file, "name", "")
    suffixes = Path(os.fspath(name)).suffixes if isinstance(name, str | os.PathLike) else []
    return "\t" if ".tsv" in [suffix.lower() for suffix in suffixes] else None


def _csv_sample(text: str, truncated: bool, delimiter: str | None, *, detected: bool) -> Sample:
    chosen = delimiter if delimiter is not None else detect_delimiter(text)
    records = mark_quoted(_csv_records(text, chosen), text, chosen)
    first = next(records, None)
    if first is None:
        raise ValueError("the sample is empty: no header line to name the columns")
    header = [field.strip() for field in first]  # the import trims header fields too
    rows: list[list[str]] = []
    skipped = 0
    for row in records:
        if len(row) != len(header):
            skipped += 1  # a wrong_field_count record at import: it says nothing of types
            continue
        rows.append(row)
        if len(rows) > SAMPLE_RECORDS:
            break
    if truncated and rows:
        rows.pop()
    rows = rows[:SAMPLE_RECORDS]
    by_column = zip(*rows, strict=True) if rows else ((),) * len(header)
    columns = [_values(column) for column in by_column]
    return Sample(
        format="csv",
        fields=header,
        columns=columns,
        arrow_types=[None] * len(header),
        records=len(rows),
        delimiter=chosen,
        delimiter_detected=detected,
        skipped=skipped,
    )


def _values(fields: tuple[str, ...]) -> list[str | None]:
    """A column's fields as the import reads them: only an unquoted empty field is missing
    (looked at one by one only in a column that has an empty field)."""
    if "" not in fields:
        return list(fields)
    return [None if f == "" and not isinstance(f, QuotedText) else f for f in fields]


def _csv_records(text: str, delimiter: str) -> Iterator[list[str]]:
    """Non-blank records; blank lines are not records, for batchyard as for ``csv``."""
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if row:
                yield row
    except csv.Error as error:
        raise ValueError(f"cannot read the sample as CSV: {error}") from None


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the sample's first records into the most regular table.

    Each of comma, tab, semicolon and pipe is tried on the first records: one that leaves the
    header a single field is out; of the others, the one under which most records have as many
    fields as the header wins, then the one giving more fields, then the earlier in that list.
    A semicolon file with decimal commas (``1,5;2,5``) is semicolon: its header has no comma.
    """
    best: tuple[float, int, int] | None = None
    chosen = ","
    for rank, delimiter in enumerate(DELIMITERS):
        records: list[list[str]] = []
        with contextlib.suppress(ValueError):
            for row in _csv_records(text, delimiter):
                records.append(row)
                if len(records) > _SNIFF_RECORDS:
                    break
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        body = records[1:]
        regular = sum(len(row) == width for row in body) / len(body) if body else 1.0
        score = (regular, width, -rank)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


def _jsonl_sample(text: str, truncated: bool) -> Sample:
    records: list[dict[str, Any]] = []
    skipped = 0
    lines = text.split("\n")
    if truncated:
        lines.pop()
    for line in lines:
        if not line.strip():
            continue
        record = _json_record(line)
        if record is None:
            skipped += 1  # a malformed_record at import
            continue
        records.append(record)
        if len(records) == SAMPLE_RECORDS:
            break
    if not records:
        raise ValueError("cannot read the sample as JSON Lines: no line holds a JSON object")
    fields = list(dict.fromkeys(key for record in records for key in record))
    columns = [[record.get(field) for record in records] for field in fields]
    return Sample(
        format="jsonl",
        fields=fields,
        columns=columns,
        arrow_types=[None] * len(fields),
        records=len(records),
        skipped=skipped,
    )


def _json_record(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(
            line,
            parse_int=JsonNumber,
            parse_float=JsonNumber,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object,
        )
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        raise ValueError("a key is named twice")  # refused at import as malformed_record
    return record


def _parquet_sample(source: BinaryIO) -> Sample:
    try:
        # Read as the rows are asked for: by default pyarrow would take whole column chunks.
        parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=_PARQUET_BUFFER)
        schema = parquet.schema_arrow
        rows = max(1, min(SAMPLE_RECORDS, SAMPLE_CELLS // max(1, len(schema))))
        first = next(parquet.iter_batches(batch_size=rows), None)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"cannot read the sample as Parquet: {error}") from None
    table = pa.Table.from_batches([first]) if first is not None else schema.empty_table()
    return Sample(
        format="parquet",
        fields=[str(name) for name in table.column_names],
        columns=[table.column(i).to_pylist() for i in range(table.num_columns)],
        arrow_types=[field.type for field in table.schema],
        records=table.num_rows,
    )


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
