"""How validated values are written to SQLite: the text must not change with the fast path."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from batchyard.domain.errors import PipelineError
from batchyard.targets.values import SQLITE_TIMESTAMP_FORMAT, sqlite_timestamp_text

EDGES_US = [0, -1, 1, 1_704_164_645_123_456, 253_402_300_799_999_999, -62_135_596_800_000_000]


def test_sqlite_timestamp_text_is_what_strftime_writes() -> None:
    spread = [n * 987_654_321_123 for n in range(-500, 500)]
    values = pa.chunked_array(
        [pa.array([*EDGES_US, None, *spread], pa.int64()).cast(pa.timestamp("us", tz="UTC"))]
    )

    fast = sqlite_timestamp_text(values)

    assert fast.to_pylist() == pc.strftime(values, format=SQLITE_TIMESTAMP_FORMAT).to_pylist()
    assert fast.to_pylist()[:7] == [
        "1970-01-01T00:00:00.000000Z",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00.000001Z",
        "2024-01-02T03:04:05.123456Z",
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00.000000Z",
        None,
    ]


def test_sqlite_refuses_a_timestamp_its_text_cannot_hold() -> None:
    """Validation refuses such values; should one reach the target, it fails, never garbage."""
    beyond = pa.chunked_array([pa.array([2**62], pa.int64()).cast(pa.timestamp("us", tz="UTC"))])
    with pytest.raises(PipelineError, match="years 1 to 9999"):
        sqlite_timestamp_text(beyond)


@pytest.mark.parametrize(
    "pieces",
    [
        [[5, None], [None, 7, -3]],  # several chunks, nulls inside
        [[None, None]],  # nothing but nulls
        [[]],  # no value at all
    ],
)
def test_sqlite_timestamp_text_of_chunked_sliced_and_null_values(pieces: list[list[int]]) -> None:
    arrays = [pa.array(p, pa.int64()).cast(pa.timestamp("us", tz="UTC")) for p in pieces]
    sliced = pa.array([1, 2, *EDGES_US, None], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    values = pa.chunked_array([*arrays, sliced.slice(2)], pa.timestamp("us", tz="UTC"))

    fast = sqlite_timestamp_text(values)

    assert fast.to_pylist() == pc.strftime(values, format=SQLITE_TIMESTAMP_FORMAT).to_pylist()
