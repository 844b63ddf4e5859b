"""Generated Parquet files with the Arrow types other tools write, and pyarrow.parquet's reading.

Each dataset column is written as one of the Arrow types a user's tool might choose for it
(narrow and unsigned integers, float32, decimals of other precision and scale, timestamps in
s/ms/us/ns with and without a zone, dates, dictionary strings, nested lists and structs, …),
in many small row groups. The reference is the file read back by ``pyarrow.parquet``; what each
value must become follows docs/data-rules.md: the value itself when the column can hold it
exactly, a failed record when it cannot.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import io
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

from batchyard.domain.schema import ColumnType
from differential.expect import Either, Exact, Expectation, Record, Reject
from differential.rules import decimal_rule, from_text

DATASET = {
    "name": "parquetdiff",
    "primary_key": ["n"],
    "columns": [
        {"name": "n", "type": "integer", "nullable": False},
        {"name": "i", "type": "integer"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "decimal", "precision": 20, "scale": 4},
        {"name": "b", "type": "boolean"},
        {"name": "day", "type": "date"},
        {"name": "ts", "type": "timestamp"},
        {"name": "s", "type": "string"},
        {"name": "u", "type": "uuid"},
        {"name": "j", "type": "json"},
    ],
}
_INT64 = (-(2**63), 2**63 - 1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_DECIMAL_4 = decimal_rule(4, 20)
Expect = Callable[[Any], Expectation]


@dataclass(frozen=True)
class Kind:
    """One way a tool writes a column: its Arrow type, its values, what each must become."""

    type: pa.DataType
    values: st.SearchStrategy[Any]
    expect: Expect


def _int_to_integer(v: int) -> Expectation:
    return Exact(v) if _INT64[0] <= v <= _INT64[1] else Reject("beyond int64")


def _float(v: float) -> Expectation:
    return Reject("NaN cannot be stored on SQLite") if math.isnan(v) else Exact(float(v))


def _int_to_float(v: int) -> Expectation:
    """Docs: a float column stores the nearest float64 (2**53 + 1 → 2**53), as PostgreSQL does."""
    return Exact(float(v))


def _float_to_decimal(v: float) -> Expectation:
    """Docs: a float is not cast to a decimal but judged by its text, as in CSV."""
    return _DECIMAL_4(repr(v)) if math.isfinite(v) else Reject("not finite")


def _decimal_to_decimal(v: decimal.Decimal) -> Expectation:
    return _DECIMAL_4(format(v, "f"))


def _timestamp(unit: str, tz: str | None) -> Kind:
    # Parquet keeps no seconds: they are written as milliseconds, which must not overflow.
    span = {"s": (2**63 - 1) // 1000, "ns": 2**62}.get(unit, 2**63 - 1)
    return Kind(
        pa.timestamp(unit, tz=tz),
        st.one_of(st.integers(-span, span), st.integers(-(10**9), 10**12)),
        lambda v: _moment(*v),
    )


def _moment(v: int, unit: str) -> Expectation:
    """An integer count of ``unit`` since the epoch: a UTC moment, exact to the microsecond."""
    micros, rest = divmod(v * 1_000_000, _PER_SECOND[unit])
    if rest:
        return Reject("finer than a microsecond")
    try:
        return Exact(_EPOCH + dt.timedelta(microseconds=micros))
    except OverflowError:
        return Reject("outside years 1-9999")


def _date_kind(arrow_type: pa.DataType) -> Kind:
    days = st.integers(-719_162, 2_932_896)  # 0001-01-01 .. 9999-12-31
    return Kind(
        arrow_type,
        days.map(lambda d: dt.date(1970, 1, 1) + dt.timedelta(days=d)),
        Exact,
    )


def _texts(ctype: ColumnType, samples: list[str]) -> Kind:
    return Kind(pa.string(), st.sampled_from(samples), lambda v: from_text(ctype, v))


_UUIDS = ["5f0c6d7e-8a1b-4c2d-9e3f-0a1b2c3d4e5f", "{5F0C6D7E8A1B4C2D9E3F0A1B2C3D4E5F}", "x"]
_WORDS = ["", " ", "abc", "Zoë 😀", "line\nbreak", "12"]

KINDS: dict[str, list[Kind]] = {
    "i": [
        Kind(pa.int8(), st.integers(-128, 127), Exact),
        Kind(pa.int32(), st.integers(-(2**31), 2**31 - 1), Exact),
        Kind(pa.int64(), st.integers(*_INT64), Exact),
        Kind(pa.uint64(), st.integers(0, 2**64 - 1), _int_to_integer),
        Kind(pa.float64(), st.floats(), lambda v: Reject("a float is not an integer")),
        Kind(pa.bool_(), st.booleans(), lambda v: Reject("a boolean is not an integer")),
        _texts(ColumnType.INTEGER, ["1", "-5", " 7 ", "x", "1.5", "99999999999999999999"]),
    ],
    "f": [
        Kind(pa.float32(), st.floats(width=32), _float),
        Kind(pa.float64(), st.floats(), _float),
        Kind(pa.int64(), st.integers(*_INT64), _int_to_float),
        _texts(ColumnType.FLOAT, ["1.5", "nan", "-Infinity", "1e400", "1e-400", "x"]),
    ],
    "d": [
        Kind(pa.decimal128(10, 2), st.decimals(-(10**8) + 1, 10**8 - 1, places=2), Exact),
        Kind(pa.decimal128(38, 10), st.decimals(-(10**20), 10**20, places=10), _decimal_to_decimal),
        Kind(pa.int64(), st.integers(*_INT64), lambda v: _DECIMAL_4(str(v))),
        Kind(pa.float64(), st.floats(), _float_to_decimal),
        Kind(
            pa.string(),
            st.sampled_from(["1.5", "1e3", "-0.00001", "12345678901234567", "x", " 2 "]),
            lambda v: from_text(ColumnType.DECIMAL, v, _DECIMAL_4),
        ),
    ],
    "b": [
        Kind(pa.bool_(), st.booleans(), Exact),
        _texts(ColumnType.BOOLEAN, ["true", "F", "yes", "2", ""]),
    ],
    "day": [
        _date_kind(pa.date32()),
        _date_kind(pa.date64()),
        _texts(ColumnType.DATE, ["2024-02-29", "2023-02-29", "2024-1-2"]),
    ],
    "ts": [
        *(_timestamp(unit, tz) for unit in _PER_SECOND for tz in (None, "UTC")),
        _timestamp("us", "+01:00"),
        _timestamp("ms", "America/New_York"),
        Kind(pa.int64(), st.integers(0, 2**40), lambda v: Reject("a number is not a moment")),
        _texts(ColumnType.TIMESTAMP, ["2024-01-02T03:04:05Z", "9999-12-31T23:59:59-01:00"]),
    ],
    "s": [
        Kind(pa.string(), st.sampled_from(_WORDS), Exact),
        Kind(pa.large_string(), st.sampled_from(_WORDS), Exact),
        Kind(pa.dictionary(pa.int32(), pa.string()), st.sampled_from(_WORDS), Exact),
        Kind(pa.int64(), st.integers(*_INT64), lambda v: Either.of(str(v))),
    ],
    "u": [
        _texts(ColumnType.UUID, _UUIDS),
        Kind(
            pa.binary(16),
            st.binary(min_size=16, max_size=16),
            lambda v: Exact(str(uuid.UUID(bytes=v))),
        ),
    ],
    "j": [
        Kind(pa.list_(pa.int64()), st.lists(st.integers(*_INT64), max_size=3), Exact),
        Kind(
            pa.struct([("a", pa.int64()), ("b", pa.string())]),
            st.fixed_dictionaries({"a": st.integers(-5, 5), "b": st.sampled_from(_WORDS)}),
            Exact,
        ),
    ],
}


def _read_back(column: pa.ChunkedArray[Any]) -> list[Any]:
    """The reference's values; timestamps as (count, unit) (Parquet has no seconds: s → ms)."""
    if pa.types.is_timestamp(column.type):
        unit = column.type.unit
        return [None if v is None else (v, unit) for v in column.cast(pa.int64()).to_pylist()]
    return column.to_pylist()


@dataclass(frozen=True)
class ParquetCase:
    data: bytes
    records: list[Record]
    #: Each column's Arrow type, and the rows as the reference reads them (for failure reports).
    types: dict[str, str]


@st.composite
def parquet_cases(draw: st.DrawFn, max_records: int = 10) -> ParquetCase:
    """A Parquet file (maybe gzip'd) in small row groups, and what each record must become."""
    count = draw(st.integers(0, max_records))
    arrays: dict[str, pa.Array[Any]] = {"n": pa.array(range(1, count + 1), pa.int64())}
    expectations: list[dict[str, Expectation]] = [{"n": Exact(i + 1)} for i in range(count)]
    kinds = {name: draw(st.sampled_from(options)) for name, options in KINDS.items()}
    for name, kind in kinds.items():
        values = draw(st.lists(st.one_of(st.none(), kind.values), min_size=count, max_size=count))
        arrays[name] = pa.array(values, kind.type)
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays), sink, row_group_size=draw(st.integers(1, 4)))
    data = sink.getvalue()
    reference = pq.read_table(io.BytesIO(data))
    for name, kind in kinds.items():
        for fields, value in zip(expectations, _read_back(reference.column(name)), strict=True):
            fields[name] = Exact(None) if value is None else kind.expect(value)
    payload = gzip.compress(data, mtime=0) if draw(st.booleans()) else data
    types = {name: str(kind.type) for name, kind in kinds.items()}
    types["values"] = str({name: _read_back(reference.column(name)) for name in kinds})
    return ParquetCase(payload, [Record(fields) for fields in expectations], types)
