"""A column with a few bad values is parsed as the exact parsers would parse all of it.

parse_text casts the plain-looking values of such a column at once and parses only the others
the exact way. The reference is what parse_text did before: the whole column cast at once if the
cast takes every value, else the exact parsers over the whole column. Generated columns mix plain
values with hostile texts: values that look plain but do not cast (the 30th of February, hour
24, 19 digits), values the cast takes only after trimming, other spellings of valid values, nulls.
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.arrow_types import arrow_type
from batchyard.pipeline.chunks import RECORD_NUMBER, RawChunk, empty_errors
from batchyard.pipeline.validate import validate_chunk
from batchyard.pipeline.validate_text import fast_cast, parse_text
from batchyard.pipeline.validate_types import PARSERS, all_false, mask, refuse_unstorable

_UTC = dt.UTC
CANONICAL = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PLAIN: dict[ColumnType, st.SearchStrategy[str]] = {
    ColumnType.INTEGER: st.integers(-(10**18) + 1, 10**18 - 1).map(str),
    ColumnType.FLOAT: st.floats(allow_nan=False, allow_infinity=False).map(repr),
    ColumnType.DECIMAL: st.integers(-(10**8) + 1, 10**8 - 1).map(
        lambda c: f"{'-' if c < 0 else ''}{abs(c) // 100}.{abs(c) % 100:02d}"
    ),
    ColumnType.DATE: st.dates().map(dt.date.isoformat),
    ColumnType.TIMESTAMP: st.datetimes().map(lambda t: t.isoformat()),
    ColumnType.UUID: st.uuids().map(str),
}
#: Texts near each type's plain form, on both sides of the line.
HOSTILE = [
    *["", " ", "x", " 12 ", "+5", "-0", "0x10", "0X1f", "-0x1", "\uff11\uff12", "\u00a012", "12x"],
    *["1_000"],
    *["9223372036854775807", "9223372036854775808", "-9223372036854775808", "0" * 19 + "1"],
    *["1e400", "1e-400", "nan", "NaN", "inf", "-Infinity", "1e3", ".5", "5.", "-.5e-3"],
    *["1.234", "1.230", "123456.7", "1234567.8", "000001.00", "1.", "+1.5", "1e2"],
    *["2024-02-29", "2023-02-29", "2024-02-30", "2024-04-31", "2024-13-01", "2024-00-10"],
    *["0000-01-01", "9999-12-31", "10000-01-01", "2024-1-5", " 2024-01-05 "],
    *["2024-01-05T24:00:00", "2024-01-05T23:59:60", "2024-01-05T10:60:00", "2024-01-05T10"],
    *["2024-01-05t10:00:00z", "2024-01-05T10:00:00+0200", "2024-01-05T10+01", "2024-01-05 10:00"],
    *["2024-01-05T10:00:00.1234567", "2024-01-05T10:00:00.", "2024-01-05T10:00:00+25:00"],
    *["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-01-05T10:00:00Z"],
    *["2024-02-29T12:00:00", "2023-02-29T12:00:00", "1700000000", "2024-01-05T10:00:00-00:30"],
    *["0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9", "{0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9}"],
    *["0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0a1b2c3d-4e5f-6071-8293", "not-a-uuid"],
]


def whole_column(values: pa.Array, column: Column) -> tuple[Any, Any]:
    """The reference: one cast of the whole column, else the exact parsers over all of it."""
    typed = fast_cast(values, column)
    if (
        column.type == ColumnType.UUID
        and pc.all(pc.match_substring_regex(values, CANONICAL)).as_py()
    ):
        typed = values  # canonical text is kept as it is
    if typed is not None:
        return refuse_unstorable(typed, all_false(len(values)), column)
    typed, bad = PARSERS[column.type](pc.utf8_trim_whitespace(values), arrow_type(column))
    return refuse_unstorable(typed, mask(bad), column)


def a_column(ctype: ColumnType) -> Column:
    if ctype == ColumnType.DECIMAL:
        return Column(name="v", type=ctype, precision=8, scale=2)
    return Column(name="v", type=ctype)


@st.composite
def mixed_columns(draw: st.DrawFn) -> tuple[ColumnType, list[str | None]]:
    """A column of one type: mostly plain values, a few hostile texts and nulls among them."""
    ctype = draw(st.sampled_from(sorted(PLAIN, key=lambda t: t.value)))
    values: list[str | None] = draw(st.lists(PLAIN[ctype], min_size=1, max_size=300))
    others = st.one_of(st.sampled_from(HOSTILE), st.none(), st.text(string.printable, max_size=8))
    for text in draw(st.lists(others, min_size=1, max_size=12)):
        values.insert(draw(st.integers(0, len(values))), text)
    return ctype, values


@settings(max_examples=300, deadline=None)
@given(mixed_columns())
def test_a_column_with_a_few_bad_values_is_parsed_as_the_exact_parsers_parse_it(
    case: tuple[ColumnType, list[str | None]],
) -> None:
    ctype, texts = case
    column, values = a_column(ctype), pa.array(texts, pa.string())
    typed, bad = parse_text(values, column)
    expected_typed, expected_bad = whole_column(values, column)
    assert bad.to_pylist() == expected_bad.to_pylist()
    assert typed.to_pylist() == expected_typed.to_pylist()
    assert typed.type == expected_typed.type


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=40))
def test_messages_built_together_are_those_of_each_record_alone(texts: list[str]) -> None:
    """Each failing record's code and message, with its neighbours, is what it gets alone."""
    dataset = Dataset.from_dict(
        {
            "name": "t",
            "columns": [
                {"name": "d", "type": "date"},
                {"name": "ts", "type": "timestamp"},
                {"name": "f", "type": "float"},
                {"name": "n", "type": "integer", "min": 0},
            ],
        }
    )
    columns = {name: [*texts, *texts[:1]] for name in ("d", "ts", "f", "n")}
    together = validate_chunk(_raw(columns), dataset).errors.to_pylist()
    alone = []
    for at in range(len(texts) + 1):
        single = {name: [values[at]] for name, values in columns.items()}
        for row in validate_chunk(_raw(single, first=at + 1), dataset).errors.to_pylist():
            alone.append(row)
    assert together == alone


_ISO = "is not an ISO 8601 timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM])"
_YEARS = "is outside the years 1 to 9999 (in UTC), which not every target can store"
#: Reasons that take Arrow's judgement of the value, as each value got them alone.
REASONS = {
    "date": [
        ("2024-02-30", "is not a date (YYYY-MM-DD)"),
        ("0000-01-01", _YEARS),
        ("10000-01-01", _YEARS),
        ("2024-01-05T10:00:00.1234567", "has more than 6 fractional digits (never rounded)"),
    ],
    "timestamp": [
        ("2023-02-29T12:00:00", _ISO),
        ("0000-01-01", _YEARS),
        ("2024-01-05T10:00:00.1234567", "has more than 6 fractional digits (never rounded)"),
        ("1700000000", "is a number, not a timestamp (no epoch or unit is assumed)"),
        ("2024-01-05T24:00:00", _ISO),
        ("0001-01-01T00:00:00+01:00", _YEARS),
        ("9999-12-31T23:59:59-01:00", _YEARS),
        (" 0000-01-01T10:00:00 ", _YEARS),
        ("2024-12-31T23:59:59-99:00", _ISO),
    ],
    "float": [
        ("nan", "is refused: NaN is not stored (SQLite cannot hold it)"),
        ("1e400", "is out of range for a 64-bit float"),
        ("1e-400", "is out of range for a 64-bit float"),
        ("1,5", "is not a number"),
        ("2024-02-30", "is not a number"),
    ],
}


def test_reasons_found_together_are_those_each_value_got_alone() -> None:
    for ctype, cases in REASONS.items():
        plain = "1.5" if ctype == "float" else "2024-01-05"
        texts = [plain, *[text for text, _ in cases], plain]
        table = Dataset.from_dict({"name": "t", "columns": [{"name": "v", "type": ctype}]})
        errors = validate_chunk(_raw({"v": texts}), table).errors
        assert errors["message"].to_pylist() == [
            f"column 'v': {text!r} {reason}" for text, reason in cases
        ]


def test_a_bad_timestamp_in_a_clean_column_is_named_and_the_rest_kept() -> None:
    values = ["2024-01-05T10:00:00"] * 5_000
    values[1_234] = "2024-13-45T99:00:00"
    values[4_321] = "2023-02-29T10:00:00"
    table = Dataset.from_dict({"name": "t", "columns": [{"name": "ts", "type": "timestamp"}]})
    checked = validate_chunk(_raw({"ts": values}), table)
    assert checked.errors["record_number"].to_pylist() == [1_235, 4_322]
    assert checked.errors["message"].to_pylist() == [
        "column 'ts': '2024-13-45T99:00:00' is not an ISO 8601 timestamp "
        "(YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM])",
        "column 'ts': '2023-02-29T10:00:00' is not an ISO 8601 timestamp "
        "(YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM])",
    ]
    assert checked.valid["ts"].to_pylist() == [dt.datetime(2024, 1, 5, 10, tzinfo=_UTC)] * 4_998


def _raw(columns: dict[str, list[str | None]], first: int = 1) -> RawChunk:
    arrays = {name: pa.array(values, pa.string()) for name, values in columns.items()}
    length = len(next(iter(arrays.values())))
    arrays[RECORD_NUMBER] = pa.array(range(first, first + length), pa.int64())
    return RawChunk(0, first, length, pa.table(arrays), empty_errors())


_ZONED = pa.timestamp("us", tz="UTC")


def _casts(text: str, target: pa.DataType) -> bool:
    try:
        pc.cast(pa.array([text], pa.string()), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.sampled_from(HOSTILE),
        PLAIN[ColumnType.TIMESTAMP],
        st.datetimes(timezones=st.just(_UTC)).map(lambda t: t.isoformat()),
        st.text(string.printable, max_size=30),
    )
)
def test_no_text_casts_both_as_a_naive_and_as_a_zoned_timestamp(text: str) -> None:
    """What lets a timestamp column with a bad value skip the second kind's failed cast once
    a value has cast as the first kind (validate_text._fast_timestamp)."""
    assert not (_casts(text, pa.timestamp("us")) and _casts(text, _ZONED))
