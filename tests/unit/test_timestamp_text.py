"""Parquet timestamps outside the years 1 to 9999 are shown as the number they were sent as."""

from __future__ import annotations

import pyarrow as pa

from batchyard.domain.schema import Column, ColumnType
from batchyard.pipeline.originals import as_text
from batchyard.pipeline.validate_checks import check_column


def test_timestamps_beyond_year_9999_are_shown_as_their_number_and_unit() -> None:
    values = pa.array(
        [9_223_372_036_854_775, 1_700_000_000, None, -62_135_596_801, -62_135_596_800],
        pa.timestamp("s"),
    )
    assert as_text(values).to_pylist() == [
        "9223372036854775 s since the epoch",
        "2023-11-14 22:13:20Z",
        None,
        "-62135596801 s since the epoch",
        "0001-01-01 00:00:00Z",
    ]
    assert as_text(pa.array([2**62], pa.timestamp("us"))).to_pylist() == [
        "4611686018427387904 us since the epoch"
    ]


def test_the_reason_for_such_a_timestamp_names_the_years_not_garbage() -> None:
    column = Column(name="ts", type=ColumnType.TIMESTAMP)
    values = pa.array([9_223_372_036_854_775_000, 1_700_000_000_000], pa.timestamp("ms"))
    _typed, failures = check_column(values, column, len(values))
    failure = failures[0]
    assert failure.mask.to_pylist() == [True, False]
    reason = failure.reason(as_text(values)[0].as_py())
    assert "'9223372036854775000 ms since the epoch' is outside the years 1 to 9999" in reason
