"""Validation: each type's accept/reject table, each constraint, and the chunk's bookkeeping."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from batchyard.domain.schema import Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, RawChunk, empty_errors
from batchyard.pipeline.validate import validate_chunk

UTC = dt.UTC


def dataset(*columns: dict[str, Any], primary_key: tuple[str, ...] = ()) -> Dataset:
    return Dataset.from_dict({"name": "t", "columns": list(columns), "primary_key": primary_key})


def raw_chunk(columns: dict[str, pa.Array | list[Any]], first: int = 1) -> RawChunk:
    arrays = {
        name: values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        for name, values in columns.items()
    }
    length = len(next(iter(arrays.values())))
    arrays[RECORD_NUMBER] = pa.array(range(first, first + length), pa.int64())
    return RawChunk(0, first, length, pa.table(arrays), empty_errors())


def one(column: dict[str, Any], value: Any) -> tuple[Any, dict[str, Any] | None]:
    """Validate a single value: (typed value, None) or (None, its error row)."""
    ds = dataset({"name": "v", **column})
    values = value if isinstance(value, pa.Array) else [value]
    result = validate_chunk(raw_chunk({"v": values}), ds)
    assert result.valid.schema == valid_schema(ds)
    assert result.valid.num_rows + result.errors.num_rows == 1
    if result.valid.num_rows:
        return result.valid["v"][0].as_py(), None
    return None, result.errors.to_pylist()[0]


def assert_accepts(column: dict[str, Any], text: str, expected: Any) -> None:
    value, error = one(column, text)
    assert error is None, error
    assert value == expected


def assert_rejects(column: dict[str, Any], text: str, code: str, words: str = "") -> None:
    value, error = one(column, text)
    assert error is not None, f"{text!r} was accepted as {value!r}"
    assert error["code"] == code
    assert error["column"] == "v"
    assert error["message"].startswith("column 'v': ")
    assert words in error["message"]


ACCEPTED = [
    ("integer", "42", 42),
    ("integer", "+7", 7),
    ("integer", " -3 ", -3),
    ("integer", "9223372036854775807", 2**63 - 1),
    ("float", "1e3", 1000.0),
    ("float", "-0.5", -0.5),
    ("float", "Infinity", float("inf")),
    ("boolean", "TRUE", True),
    ("boolean", "f", False),
    ("boolean", "Yes", True),
    ("boolean", "0", False),
    ("date", "2024-02-29", dt.date(2024, 2, 29)),
    ("timestamp", "2024-01-05T10:00:00Z", dt.datetime(2024, 1, 5, 10, tzinfo=UTC)),
    ("timestamp", "2024-01-05 10:00:00", dt.datetime(2024, 1, 5, 10, tzinfo=UTC)),
    ("timestamp", "2024-01-05T10:00:00.5+02:00", dt.datetime(2024, 1, 5, 8, 0, 0, 500000, UTC)),
    ("timestamp", "2024-01-05T10:30", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
    ("timestamp", "2024-01-05", dt.datetime(2024, 1, 5, tzinfo=UTC)),
    ("uuid", "{0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9}", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"),
    ("uuid", "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"),
    ("json", ' {"a": [1, null]} ', '{"a": [1, null]}'),  # outer whitespace trimmed
    ("json", "3", "3"),
    ("string", "  kept as is ", "  kept as is "),
]

REJECTED = [
    ("integer", "1.0", "invalid_integer", "'1.0' is not an integer"),
    ("integer", "0x10", "invalid_integer", "not an integer"),
    ("integer", "0X1F", "invalid_integer", "not an integer"),
    ("integer", "9223372036854775808", "invalid_integer", "out of range"),
    ("float", "1,5", "invalid_float", "not a number"),
    ("float", "1e400", "invalid_float", "out of range"),
    ("boolean", "maybe", "invalid_boolean", "'maybe'"),
    ("date", "2024-02-30", "invalid_date", "'2024-02-30'"),
    ("date", "05/01/2024", "invalid_date", "YYYY-MM-DD"),
    ("timestamp", "2024-01-05T25:00:00", "invalid_timestamp", "ISO 8601"),
    ("timestamp", "yesterday", "invalid_timestamp", "'yesterday'"),
    ("uuid", "0a1b2c3d-4e5f-6071-8293", "invalid_uuid", "not a UUID"),
    ("uuid", "{0a1b2c3d4e5f60718293a4b5c6d7e8f9", "invalid_uuid", "not a UUID"),
    ("json", "{'a': 1}", "invalid_json", "not valid JSON"),
]


@pytest.mark.parametrize(("ctype", "text", "expected"), ACCEPTED)
def test_type_accepts(ctype: str, text: str, expected: Any) -> None:
    assert_accepts({"type": ctype}, text, expected)


@pytest.mark.parametrize(("ctype", "text", "code", "words"), REJECTED)
def test_type_rejects(ctype: str, text: str, code: str, words: str) -> None:
    assert_rejects({"type": ctype}, text, code, words)


DECIMAL = {"type": "decimal", "precision": 6, "scale": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.3", Decimal("12.30")), ("1.50", Decimal("1.50")), ("-0.01", Decimal("-0.01"))],
)
def test_decimal_accepts(text: str, expected: Decimal) -> None:
    assert_accepts(DECIMAL, text, expected)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("12.345", "'12.345' has more than 2 decimal places"),
        ("12345.6", "more than 4 digits before the decimal point"),
        ("abc", "not a decimal number"),
    ],
)
def test_decimal_never_rounds(text: str, words: str) -> None:
    assert_rejects(DECIMAL, text, "invalid_decimal", words)


@pytest.mark.parametrize(
    ("column", "good", "bad", "code", "words"),
    [
        ({"type": "string", "max_length": 3}, "abc", "abcd", "too_long", "longer than 3"),
        ({"type": "string", "pattern": "^[^@]+@[^@]+$"}, "a@b", "ab", "pattern_mismatch", "'ab'"),
        ({"type": "string", "pattern": "[0-9]+"}, "123", "abc123", "pattern_mismatch", "'abc123'"),
        ({"type": "string", "enum": ["new", "paid"]}, "new", "old", "not_in_enum", "new, paid"),
        ({"type": "integer", "min": 0}, "0", "-1", "below_minimum", "minimum 0"),
        ({"type": "integer", "max": 10}, "10", "11", "above_maximum", "maximum 10"),
        ({"type": "decimal", "scale": 2, "min": 0.5}, "0.50", "0.49", "below_minimum", "0.5"),
        ({"type": "date", "max": "2024-12-31"}, "2024-12-31", "2025-01-01", "above_maximum", ""),
        (
            {"type": "timestamp", "min": "2024-01-01"},
            "2024-01-01T00:00:00Z",
            "2023-12-31T23:59:59Z",
            "below_minimum",
            "",
        ),
    ],
)
def test_constraints(column: dict[str, Any], good: str, bad: str, code: str, words: str) -> None:
    assert one(column, good)[1] is None
    assert_rejects(column, bad, code, words)


@pytest.mark.parametrize(("ctype", "value"), [("integer", None), ("string", None)])
def test_required_column(ctype: str, value: str | None) -> None:
    _, error = one({"type": ctype, "nullable": False}, value)
    assert error is not None
    assert error["code"] == "missing_value"
    assert error["message"] == "column 'v' is required"


@pytest.mark.parametrize("text", ["", "  ", "\t"])
def test_empty_or_blank_text_in_a_non_string_column_is_refused_not_null(text: str) -> None:
    assert_rejects({"type": "integer"}, text, "invalid_integer", "is not an integer")


ORDERS = dataset(
    {"name": "id", "type": "integer", "nullable": False},
    {"name": "email", "type": "string", "max_length": 200, "pattern": "^[^@]+@[^@]+$"},
    {"name": "amount", "type": "decimal", "precision": 12, "scale": 2, "min": 0},
    {"name": "status", "type": "string", "enum": ["new", "paid"]},
    {"name": "ts", "type": "timestamp"},
    {"name": "user_id", "type": "uuid"},
    primary_key=("id",),
)


def test_chunk_bookkeeping_first_failing_column_and_raw() -> None:
    raw = raw_chunk(
        {
            "id": ["1", "2", "x", "4", "5"],
            "email": ["a@b", "nope", "c@d", "e@f", "g@h"],
            "amount": ["1.00", "-1", "2", "3.999", "4"],
            "status": ["new", "paid", "new", "old", "paid"],
        },
        first=11,
    )
    result = validate_chunk(raw, ORDERS)
    assert result.valid.schema == valid_schema(ORDERS)
    assert result.errors.schema == ERRORS_SCHEMA
    assert result.valid[RECORD_NUMBER].to_pylist() == [11, 15]
    assert result.valid["ts"].null_count == 2  # absent nullable column: all null
    errors = result.errors.to_pylist()
    assert [(e["record_number"], e["column"], e["code"]) for e in errors] == [
        (12, "email", "pattern_mismatch"),
        (13, "id", "invalid_integer"),
        (14, "amount", "invalid_decimal"),
    ]
    assert errors[0]["key"] == "2"
    assert json.loads(errors[0]["raw"]) == {
        "id": "2",
        "email": "nope",
        "amount": "-1",
        "status": "paid",
    }
    assert result.valid.num_rows + result.errors.num_rows == raw.record_count


def test_reader_errors_are_kept_and_sorted() -> None:
    raw = raw_chunk({"id": ["1", "bad"]}, first=1)
    reader_error = pa.table(
        {
            "record_number": [2],
            "column": [None],
            "code": ["wrong_field_count"],
            "message": ["expected 1 fields, found 2"],
            "key": [None],
            "raw": [None],
        },
        schema=ERRORS_SCHEMA,
    )
    raw = RawChunk(0, 1, 3, raw.table.set_column(1, RECORD_NUMBER, pa.array([1, 3])), reader_error)
    result = validate_chunk(raw, dataset({"name": "id", "type": "integer"}))
    assert result.errors["record_number"].to_pylist() == [2, 3]
    assert result.valid.num_rows + result.errors.num_rows == 3


def test_typed_parquet_columns() -> None:
    ds = dataset(
        {"name": "i", "type": "integer"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "decimal", "precision": 10, "scale": 2},
        {"name": "ts", "type": "timestamp"},
        {"name": "j", "type": "json"},
    )
    raw = raw_chunk(
        {
            "i": pa.array([1, 2**40, 3], pa.int64()),
            "f": pa.array([1, 2, 3], pa.int32()),
            "d": pa.array([1, 2, 3], pa.int64()),
            "ts": pa.array([dt.datetime(2024, 1, 1)] * 3, pa.timestamp("ns")),
            "j": pa.array([{"a": 1}, {"a": 2}, None]),
        }
    )
    result = validate_chunk(raw, ds)
    assert result.valid.schema == valid_schema(ds)
    assert result.errors.num_rows == 0
    row = result.valid.to_pylist()[0]
    assert row["f"] == 1.0
    assert row["d"] == Decimal("1.00")
    assert row["ts"] == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert row["j"] == '{"a":1}'


def test_typed_float_into_integer_is_rejected_if_fractional() -> None:
    _, error = one({"type": "integer"}, pa.array([1.5]))
    assert error is not None
    assert error["code"] == "invalid_integer"


def test_many_bad_values_in_a_large_column() -> None:
    values = [str(i) for i in range(20_000)]
    for at in (5, 777, 19_999):
        values[at] = "99999999999999999999"
    raw = raw_chunk({"v": values})
    result = validate_chunk(raw, dataset({"name": "v", "type": "integer"}))
    assert result.errors["record_number"].to_pylist() == [6, 778, 20_000]
    assert result.valid.num_rows == 19_997


@pytest.mark.parametrize(
    ("head", "utc_hour"), [("2024-01-05 10:00:00", 10), ("2024-01-05T10:00:00+02:00", 8)]
)
def test_timestamp_column_mixing_kinds_after_the_first_values_is_read_value_by_value(
    head: str, utc_hour: int
) -> None:
    """Which cast is tried first depends on the first values; the outcome must not."""
    values = [head] * 2_000 + ["2024-01-05T10:00:00Z", "2024-01-05 12:00:00", "not a time"]
    table = dataset({"name": "ts", "type": "timestamp"})
    checked = validate_chunk(raw_chunk({"ts": values}), table)

    typed = checked.valid["ts"].to_pylist()
    first = dt.datetime(2024, 1, 5, utc_hour, tzinfo=UTC)
    assert typed[:2_000] == [first] * 2_000
    assert typed[2_000:] == [
        dt.datetime(2024, 1, 5, 10, tzinfo=UTC),
        dt.datetime(2024, 1, 5, 12, tzinfo=UTC),
    ]
    assert checked.errors["record_number"].to_pylist() == [2_003]
    assert checked.errors["code"].to_pylist() == ["invalid_timestamp"]
