"""Arrow columns turned into what each target database ingests, vectorized (no per-value Python).

The validated chunk holds one Arrow type per column type (pipeline.arrow_types). SQLite has no
decimal, date or timestamp type, so those become exact text; PostgreSQL takes most types as they
are (pg_copy.py has pgpq encode them as binary COPY fields), but a uuid must be its 16 bytes and
JSON text is marked as Arrow's ``json`` type, which pg_copy sends as jsonb.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeAlias, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.errors import PipelineError
from batchyard.domain.schema import ColumnType, Dataset
from batchyard.domain.uuid_text import canonical_octets

#: How SQLite stores timestamps: ISO 8601 in UTC with microseconds, so text order is time order.
SQLITE_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
#: A column's values, whole or in chunks.
Values: TypeAlias = "pa.Array[Any] | pa.ChunkedArray[Any]"


def _single(values: Values) -> pa.Array[Any]:
    """One array; a column of one chunk is used as it is (``combine_chunks`` would copy it)."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            return values.chunks[0]
        return values.combine_chunks()
    return values


def uuid_bytes(values: Values) -> pa.Array[Any]:
    """Canonical uuid text → fixed_size_binary(16): the dashes dropped in Arrow, then all the
    chunk's hex digits decoded in one ``bytes.fromhex`` call (C, one pass).

    Measured on 1M values: 0.34 s, against 1.32 s for decoding through Arrow uint8/uint16 views
    in the same run (and +1.7 s for staging the text and casting it in PostgreSQL). Validated
    columns are canonical, which ``canonical_octets`` decodes as one block, about three times
    faster again; this path stays for any other text, with its errors.
    """
    text = _single(values)
    decoded = canonical_octets(text)
    if decoded is not None:
        return decoded
    fill_null: Any = pc.fill_null
    filled: Any = fill_null(text, _ZERO_UUID)
    hex32 = _single(pc.replace_substring(filled, "-", ""))
    count = len(hex32)
    if count and pc.min(pc.binary_length(cast(Any, hex32))).as_py() != 32:
        raise PipelineError("a uuid value is not in canonical 8-4-4-4-12 form")
    fixed = hex32.cast(pa.binary(32))
    data = fixed.buffers()[1]
    digits = data.slice(32 * fixed.offset, 32 * count).to_pybytes() if data is not None else b""
    try:
        octets = bytes.fromhex(digits.decode("ascii"))
    except ValueError:  # UnicodeDecodeError included
        octets = b""
    if len(octets) != 16 * count:  # a non-hex digit, or whitespace that fromhex skips
        raise PipelineError("a uuid value holds a character that is not a hex digit")
    raw = pa.Array.from_buffers(pa.binary(16), count, [None, pa.py_buffer(octets)])
    if text.null_count == 0:
        return cast("pa.Array[Any]", raw)
    masked: pa.Array[Any] = pc.if_else(pc.is_valid(text), raw, pa.scalar(None, pa.binary(16)))
    return masked


def json_text(values: Values) -> Values:
    """JSON text as Arrow's ``json`` extension type (the same buffers, not copied): what
    pg_copy encodes as jsonb."""
    return values.cast(pa.json_())


def sqlite_timestamp_text(values: pa.ChunkedArray[Any]) -> Values:
    """UTC timestamps as SQLITE_TIMESTAMP_FORMAT text ("2024-01-02T03:04:05.000000Z").

    Same text as ``pc.strftime(values, format=SQLITE_TIMESTAMP_FORMAT)``, about twelve times
    faster: casting the naive UTC wall clock to text needs no time zone lookup per value, and
    that text has one width in the years 1 to 9999 ("2024-01-02 03:04:05.000000"), so the "T"
    and the "Z" go in with one copy of the characters as a table of fixed-width rows (0.036 s
    per million values against 0.088 s for Arrow's replace-slice and join, measured together).
    """
    _check_years(values)
    text = _single(values).cast(pa.timestamp("us")).cast(pa.string())
    count = len(text)
    fill_null: Any = pc.fill_null
    filled: Any = fill_null(text, _FILLER) if text.null_count else text
    offsets = np.frombuffer(filled.buffers()[1], np.int32, count + 1, 4 * filled.offset)
    if count and int(offsets[-1]) - int(offsets[0]) != _WALL_CLOCK_WIDTH * count:
        raise PipelineError("a timestamp's text is not YYYY-MM-DD HH:MM:SS.ffffff")
    rows = np.frombuffer(
        filled.buffers()[2], np.uint8, _WALL_CLOCK_WIDTH * count, int(offsets[0]) if count else 0
    ).reshape(count, _WALL_CLOCK_WIDTH)
    out = np.empty((count, _WALL_CLOCK_WIDTH + 1), np.uint8)
    out[:, :_WALL_CLOCK_WIDTH] = rows
    out[:, 10] = ord("T")
    out[:, _WALL_CLOCK_WIDTH] = ord("Z")
    width = _WALL_CLOCK_WIDTH + 1
    starts = np.arange(0, width * (count + 1), width, dtype=np.int64)
    validity = text.buffers()[0] if text.null_count else None
    return pa.Array.from_buffers(
        pa.large_string(),
        count,
        [validity, pa.py_buffer(starts.data), pa.py_buffer(out.data)],
        text.null_count,
        text.offset,
    )


#: Characters in a wall-clock timestamp's text from Arrow, years 1 to 9999 with microseconds.
_WALL_CLOCK_WIDTH = len("2024-01-02 03:04:05.000000")
_FILLER = "0001-01-01 00:00:00.000000"


def _check_years(values: Values) -> None:
    """Refuse what SQLite's text cannot hold in order (validation lets none through)."""
    first, last = _years_1_to_9999(pa.types.is_date(values.type))
    typed: Any = values
    outside: Any = pc.or_(pc.less(typed, first), pc.greater(typed, last))
    if pc.any(outside).as_py():
        raise PipelineError("a date or timestamp outside the years 1 to 9999 reached SQLite")


_UTC_US = pa.timestamp("us", tz="UTC")


def _years_1_to_9999(dates: bool) -> tuple[pa.Scalar[Any], pa.Scalar[Any]]:
    """(first, last) of the years 1 to 9999, for dates or timestamps: made when used, as
    converting at import would bring pandas in (pipeline/arrow_runtime.py)."""
    if dates:
        return pa.scalar(dt.date(1, 1, 1), pa.date32()), pa.scalar(
            dt.date(9999, 12, 31), pa.date32()
        )
    last = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    return pa.scalar(dt.datetime(1, 1, 1, tzinfo=dt.UTC), _UTC_US), pa.scalar(last, _UTC_US)


def _sqlite_column(ctype: ColumnType, values: pa.ChunkedArray[Any]) -> Values:
    if ctype == ColumnType.TIMESTAMP:
        return sqlite_timestamp_text(values)
    if ctype == ColumnType.DATE:
        _check_years(values)
    if ctype in (ColumnType.DECIMAL, ColumnType.DATE):
        return values.cast(pa.string())
    return values


def _postgres_column(ctype: ColumnType, values: pa.ChunkedArray[Any]) -> Values:
    if ctype == ColumnType.UUID:
        return uuid_bytes(values)
    if ctype == ColumnType.JSON:
        return json_text(values)
    return values


def for_sqlite(table: pa.Table, dataset: Dataset) -> pa.Table:
    """``table`` (a subset of the valid schema) with every column as SQLite stores it."""
    return _convert(table, dataset, _sqlite_column)


def for_postgres(table: pa.Table, dataset: Dataset) -> pa.Table:
    """``table`` (a subset of the valid schema) with every column as binary COPY wants it."""
    return _convert(table, dataset, _postgres_column)


_Converter: TypeAlias = "Callable[[ColumnType, pa.ChunkedArray[Any]], Values]"


def _convert(table: pa.Table, dataset: Dataset, convert: _Converter) -> pa.Table:
    arrays = []
    for name in table.column_names:
        column = dataset.column(name)
        values = table.column(name)
        arrays.append(values if column is None else convert(column.type, values))
    return pa.table(arrays, names=table.column_names)


def key_text(table: pa.Table, primary_key: tuple[str, ...]) -> Values:
    """Each record's primary key as text, composite keys joined with "," (ERRORS_SCHEMA.key)."""
    parts = [table.column(name).cast(pa.string()) for name in primary_key]
    if len(parts) == 1:
        return parts[0]
    join: Any = pc.binary_join_element_wise
    return cast(Values, join(*parts, ","))
