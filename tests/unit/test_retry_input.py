"""A Parquet batch's retry input: exactly the records results.csv does not list as succeeded,
with the input's own values and types, taken in one pass over input chunks and results blocks
whose boundaries do not line up."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard.pipeline.chunks import RawChunk, empty_errors
from batchyard.pipeline.formats_common import number_records
from batchyard.pipeline.retry_input import NotOneParquetSchema, write_unapplied_parquet

RECORDS = 120_000  # results.csv of this many records is several 1 MiB blocks


class Sources:
    """Stands in for InputReader: sources cut into raw chunks, numbered across sources."""

    def __init__(self, *sources: pa.Table, rows_per_chunk: int = 7_001) -> None:
        self.sources = sources
        self.rows_per_chunk = rows_per_chunk

    def chunks(self) -> Iterator[tuple[RawChunk, int]]:
        offset = 0
        for source in self.sources:
            for index, start in enumerate(range(0, source.num_rows, self.rows_per_chunk)):
                piece = source.slice(start, self.rows_per_chunk)
                table = number_records(piece, start + 1)
                yield RawChunk(index, start + 1, piece.num_rows, table, empty_errors()), offset
            offset += source.num_rows


def records(first: int, count: int) -> pa.Table:
    ids = range(first, first + count)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "label": pa.array([None if n % 11 == 0 else ("NA" if n % 3 else "") for n in ids]),
            "amount": pa.array([Decimal(n) / 100 for n in ids], pa.decimal128(12, 2)),
            "score": pa.array([float("nan") if n % 17 == 0 else n / 7 for n in ids]),
        }
    )


def results_csv(outcomes: dict[int, str], total: int) -> io.BytesIO:
    lines = ["record_number,outcome,error_code,error_column,error_message,key"]
    for n in range(1, total + 1):
        outcome = outcomes.get(n, "succeeded")
        lines.append(f'{n},{outcome},,,"message, with a comma",{n}')
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def unapplied(total: int) -> dict[int, str]:
    """Scattered failures, a run of records never processed at the end, and the first and
    last records."""
    failed = {n: "failed" for n in range(1, total + 1, 997)}
    waiting = {n: "not_processed" for n in range(total - 9_000, total + 1)}
    return {**failed, **waiting}


def test_takes_exactly_the_unapplied_records_with_their_values(tmp_path: Path) -> None:
    first, second = records(1, 70_000), records(70_001, RECORDS - 70_000)
    outcomes = unapplied(RECORDS)
    path = tmp_path / "retry.parquet"

    written = write_unapplied_parquet(
        Sources(first, second),
        results_csv(outcomes, RECORDS),
        path,  # type: ignore[arg-type]
    )

    everything = pa.concat_tables([first, second])
    expected = everything.take(pa.array(sorted(n - 1 for n in outcomes), pa.int64()))
    got = pq.read_table(path)
    assert written == len(outcomes) == got.num_rows
    assert got.schema.equals(first.schema)
    # repr: a NaN is the NaN that was sent (NaN != NaN), a Decimal keeps its scale.
    assert repr(got.to_pylist()) == repr(expected.to_pylist())


def test_sources_of_different_types_are_not_one_parquet_file(tmp_path: Path) -> None:
    other = records(20_001, 100).set_column(1, "label", pa.array(["x"] * 100, pa.large_string()))
    sources = Sources(records(1, 20_000), other)
    with pytest.raises(NotOneParquetSchema):
        write_unapplied_parquet(
            sources,  # type: ignore[arg-type]
            results_csv({2: "failed", 20_050: "failed"}, 20_100),
            tmp_path / "retry.parquet",
        )


def test_records_the_input_no_longer_holds_are_not_left_out_silently(tmp_path: Path) -> None:
    with pytest.raises(NotOneParquetSchema):
        write_unapplied_parquet(
            Sources(records(1, 100)),  # type: ignore[arg-type]
            results_csv({5: "failed", 150: "not_processed"}, 150),
            tmp_path / "retry.parquet",
        )
