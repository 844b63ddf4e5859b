"""String columns: the whole-block shortcuts decide as Arrow's per-value kernels would.

A string column skips the search for NUL characters when its block of characters holds no zero
byte, and the character count of ``max_length`` when no value has more bytes than the limit.
The reference is the per-value kernel over the same values, generated with NULs, multi-byte
characters around the limit, nulls and slices (a chunk of a larger column).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from batchyard.domain.records import RecordErrorCode
from batchyard.domain.schema import Column, ColumnType
from batchyard.pipeline.validate_checks import check_column
from batchyard.pipeline.validate_types import parse_string

LIMIT = 5
_texts = st.one_of(
    st.text(alphabet=st.sampled_from(["a", "é", "€", "😀", "\x00", " "]), max_size=8),
    st.text(max_size=8),
    st.none(),
)


def _array(values: list[str | None], head: int) -> Any:
    whole = pa.array(values, pa.string())
    return whole.slice(min(head, len(values)))


@given(st.lists(_texts, max_size=30), st.integers(0, 4))
def test_nul_check_flags_what_a_substring_search_flags(values: list[str | None], head: int) -> None:
    array = _array(values, head)
    expected_bad = pc.fill_null(pc.match_substring(array, "\x00"), False).to_pylist()

    typed, bad = parse_string(array, pa.string())

    assert pc.fill_null(bad, False).to_pylist() == expected_bad
    kept = [
        None if flag else value for value, flag in zip(array.to_pylist(), expected_bad, strict=True)
    ]
    assert typed.to_pylist() == kept


@given(st.lists(_texts, max_size=30), st.integers(0, 4))
def test_max_length_counts_characters_not_bytes(values: list[str | None], head: int) -> None:
    array = _array(values, head)
    column = Column(name="s", type=ColumnType.STRING, max_length=LIMIT)

    _, failures = check_column(array, column, len(array))

    too_long = [f for f in failures if f.code == RecordErrorCode.TOO_LONG]
    assert len(too_long) == 1
    expected = [v is not None and "\x00" not in v and len(v) > LIMIT for v in array.to_pylist()]
    assert too_long[0].mask.to_pylist() == expected


def test_a_multi_byte_text_at_the_limit_is_not_too_long() -> None:
    """Five characters in twenty bytes: longer than the limit in bytes, not in characters."""
    array = pa.array(["😀" * LIMIT, "😀" * (LIMIT + 1), None], pa.string())
    column = Column(name="s", type=ColumnType.STRING, max_length=LIMIT)

    _, failures = check_column(array, column, len(array))

    (too_long,) = [f for f in failures if f.code == RecordErrorCode.TOO_LONG]
    assert too_long.mask.to_pylist() == [False, True, False]
