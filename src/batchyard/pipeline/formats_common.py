"""What every record reader shares: field checks, error rows, block reads and the gzip guard."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import msgspec
import pyarrow as pa

from batchyard.domain.errors import InputRejected, PayloadTooLarge
from batchyard.domain.reading import Reading
from batchyard.domain.records import RecordErrorCode
from batchyard.pipeline.chunks import ERROR_FIELD, ERRORS_SCHEMA, ORIGINAL_LINE_FIELD, RECORD_NUMBER

# Decimals (Parquet) are written as JSON numbers; msgspec.Raw (JSON Lines numbers) as sent.
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class Reader(Protocol):
    """The one method readers need from a binary stream."""

    def read(self, size: int = ..., /) -> bytes: ...


def to_json(value: Any) -> str:
    """Compact JSON text of ``value``; for ``raw`` columns and nested JSON values."""
    return _ENCODER.encode(value).decode("utf-8")


#: How many names a message lists before it says how many more there are.
LISTED_NAMES = 10


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    """Caps on a header (CSV's first line), past which the input is refused before any work."""

    columns: int = 4096
    bytes: int = 1 << 20


DEFAULT_HEADER_LIMITS = HeaderLimits()


def line_raw(line: bytes) -> str:
    """ERRORS_SCHEMA.raw for a record known by its line: the line as sent (bad bytes as U+FFFD)."""
    return to_json({ORIGINAL_LINE_FIELD: line.decode("utf-8", "replace")})


def names_list(names: Sequence[str]) -> str:
    """The names quoted, at most LISTED_NAMES of them: a message stays short whatever the input."""
    shown = ", ".join(repr(n[:100]) for n in names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def check_fields(names: Sequence[str], reading: Reading, what: str) -> list[str]:
    """The input fields to keep, in input order; raise InputRejected if they cannot map to columns.

    A field is kept when a column reads it (its ``from``, its name, or the batch's
    options.columns); a required column whose field is absent and that has no default refuses
    the input, unless the batch does not check it (a delete checks only its key).

    Args:
        what: how the field list is called in messages ("CSV header", "Parquet schema").
    """
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise InputRejected(f"{what} names these fields more than once: {names_list(duplicates)}")
    dataset = reading.dataset
    # The failed-records file's error column, unless the dataset reads one: read back, ignored.
    unknown = [n for n in names if reading.column_for(n) is None and n != ERROR_FIELD]
    if unknown and not reading.options.ignore_unknown_columns:
        raise InputRejected(
            f"{what} has fields the dataset {dataset.name!r} does not declare: "
            f"{names_list(unknown)} (set options.ignore_unknown_columns to skip them, or map "
            "them with a column's from or options.columns)"
        )
    present = set(names)
    missing = [
        reading.describe(c)
        for c in dataset.columns
        if not c.nullable
        and c.default is None
        and reading.is_checked(c)
        and reading.field_of(c) not in present
    ]
    if missing:
        shown = ", ".join(missing[:LISTED_NAMES])
        more = f" and {len(missing) - LISTED_NAMES} more" if len(missing) > LISTED_NAMES else ""
        raise InputRejected(f"{what} lacks required (nullable: false) columns: {shown}{more}")
    return [n for n in names if reading.column_for(n) is not None]


def record_key(fields: dict[str, Any], reading: Reading) -> str | None:
    """The primary key of a record (input field → value) as text (composite keys joined with
    ","), if it has one."""
    dataset = reading.dataset
    if not dataset.primary_key:
        return None
    sources = [reading.fields.get(k) for k in dataset.primary_key]
    parts = [None if source is None else fields.get(source) for source in sources]
    if any(p is None for p in parts):
        return None
    return ",".join(p if isinstance(p, str) else to_json(p) for p in parts)


class ErrorRows:
    """Collects one chunk's per-record errors, then hands them over as an ERRORS_SCHEMA table."""

    def __init__(self) -> None:
        self._rows: dict[str, list[Any]] = {name: [] for name in ERRORS_SCHEMA.names}

    def __len__(self) -> int:
        return len(self._rows["record_number"])

    def add(
        self,
        record_number: int,
        code: RecordErrorCode,
        message: str,
        *,
        column: str | None = None,
        key: str | None = None,
        raw: str | None = None,
    ) -> None:
        values = (record_number, column, code.value, message, key, raw)
        for name, value in zip(ERRORS_SCHEMA.names, values, strict=True):
            self._rows[name].append(value)

    def table(self) -> pa.Table:
        return pa.table(self._rows, schema=ERRORS_SCHEMA)


def empty_raw_table(names: Sequence[str]) -> pa.Table:
    """A table of string fields with no records (for chunks made only of errors)."""
    fields: list[pa.Field[Any]] = [pa.field(n, pa.string()) for n in names]
    fields.append(pa.field(RECORD_NUMBER, pa.int64()))
    return pa.schema(fields).empty_table()


def number_records(table: pa.Table, first_record: int) -> pa.Table:
    """Append RECORD_NUMBER counting from ``first_record`` (the table holds consecutive records)."""
    # pa.arange builds the numbers in C (the stubs do not know it yet).
    arange: Any = getattr(pa, "arange")  # noqa: B009
    numbers = arange(first_record, first_record + table.num_rows)  # int64
    return table.append_column(pa.field(RECORD_NUMBER, pa.int64()), numbers)


def read_block(stream: Reader, size: int) -> bytes:
    """Up to ``size`` bytes; short only at the end (object-store readers may return less)."""
    first = stream.read(size)
    if not first or len(first) >= size:
        return first
    parts = [first]
    got = len(first)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class GunzipReader:
    """Streams a gzip'd input inflated, refusing to go past ``limit`` bytes (gzip bombs)."""

    def __init__(self, stream: BinaryIO, limit: int | None) -> None:
        self._gz = gzip.GzipFile(fileobj=stream, mode="rb")
        self._limit = limit
        self.total = 0

    def read(self, size: int = -1, /) -> bytes:
        # Never read unbounded: a 1 MiB bomb would inflate to gigabytes in memory at once.
        want = size if size >= 0 else 1 << 20
        if self._limit is not None:
            want = min(want, self._limit + 1 - self.total)
        try:
            data = self._gz.read(max(want, 1))
        except (OSError, EOFError, zlib.error) as exc:
            raise InputRejected(f"the input is not a valid gzip stream ({exc})") from exc
        self.total += len(data)
        if self._limit is not None and self.total > self._limit:
            raise PayloadTooLarge(f"decompressed input exceeds {self._limit} bytes")
        return data

    def close(self) -> None:
        self._gz.close()
