"""A column whose whole cast failed on the last chunk skips it on the next, with the same results.

Validation remembers (FailedCasts) the columns whose whole cast failed, and casts only the
plain values of the next chunk's; the values, error codes, messages and record numbers must be
those of each chunk validated alone, whether the column fails in both chunks, in one only, or
in neither.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.test_text_columns import PLAIN, _raw, a_column, mixed_columns, whole_column

from batchyard.domain.schema import ColumnType, Dataset
from batchyard.pipeline.validate import validate_chunk
from batchyard.pipeline.validate_text import FailedCasts, parse_text


def _failed(column: Any) -> FailedCasts:
    failed = FailedCasts()
    failed.note(column, True)
    return failed


@settings(max_examples=300, deadline=None)
@given(mixed_columns())
def test_a_column_whose_cast_failed_before_is_parsed_as_the_exact_parsers_parse_it(
    case: tuple[ColumnType, list[str | None]],
) -> None:
    ctype, texts = case
    column, values = a_column(ctype), pa.array(texts, pa.string())
    typed, bad = parse_text(values, column, _failed(column))
    expected_typed, expected_bad = whole_column(values, column)
    assert bad.to_pylist() == expected_bad.to_pylist()
    assert typed.to_pylist() == expected_typed.to_pylist()
    assert typed.type == expected_typed.type


@st.composite
def plain_columns(draw: st.DrawFn) -> tuple[ColumnType, list[str | None]]:
    ctype = draw(st.sampled_from(sorted(PLAIN, key=lambda t: t.value)))
    return ctype, draw(st.lists(st.one_of(PLAIN[ctype], st.none()), min_size=1, max_size=300))


@settings(max_examples=100, deadline=None)
@given(plain_columns())
def test_a_clean_column_after_a_failed_one_is_cast_whole_and_forgotten(
    case: tuple[ColumnType, list[str | None]],
) -> None:
    ctype, texts = case
    column, values = a_column(ctype), pa.array(texts, pa.string())
    failed = _failed(column)
    typed, bad = parse_text(values, column, failed)
    expected_typed, expected_bad = whole_column(values, column)
    assert (typed.to_pylist(), bad.to_pylist()) == (
        expected_typed.to_pylist(),
        expected_bad.to_pylist(),
    )
    assert column not in failed


DATASET = Dataset.from_dict(
    {
        "name": "t",
        "columns": [
            {"name": "n", "type": "integer", "min": 0},
            {"name": "d", "type": "decimal", "precision": 8, "scale": 2},
            {"name": "ts", "type": "timestamp"},
            {"name": "u", "type": "uuid"},
        ],
    }
)
CLEAN = {
    "n": ["1", "22", "333", "-4"],
    "d": ["1.50", "22", "-3.1", "0.00"],
    "ts": ["2024-01-05T10:00:00", "2024-02-29 23:59:59", "2024-03-01T00:00:00Z", None],
    "u": ["0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"] * 4,
}
BAD = {
    "n": ["12x", "5", " 7 ", "+8"],
    "d": ["1.234", "2.5", "N/A", "+1.5"],
    "ts": ["2024-13-45T99:00:00", "2024-01-05 10:00", "2023-02-29T12:00:00", "2024-01-05"],
    "u": [
        "not-a-uuid",
        "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9",
        None,
        "{0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9}",
    ],
}


def _result(chunk: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return chunk.valid.to_pylist(), chunk.errors.to_pylist()


def test_chunks_validated_in_turn_are_each_as_validated_alone() -> None:
    """Bad then clean, clean then bad, bad then bad: each chunk as if validated alone."""
    for first, second in ((BAD, CLEAN), (CLEAN, BAD), (BAD, BAD), (CLEAN, CLEAN)):
        raws = [_raw(first), _raw(second, first=5)]
        failed = FailedCasts()
        in_turn = [_result(validate_chunk(raw, DATASET, None, failed)) for raw in raws]
        assert in_turn == [_result(validate_chunk(raw, DATASET)) for raw in raws]


def test_a_chunk_remembers_the_columns_whose_cast_failed_and_forgets_them_once_clean() -> None:
    failed = FailedCasts()
    validate_chunk(_raw(BAD), DATASET, None, failed)
    assert all(column in failed for column in DATASET.columns)
    validate_chunk(_raw(CLEAN, first=5), DATASET, None, failed)
    assert not any(column in failed for column in DATASET.columns)
