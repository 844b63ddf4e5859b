"""Target against target: the same input stores the same values on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from batchyard.domain.batches import InputFormat
from differential import csv_files, jsonl_files, parquet_files
from differential.budget import CHUNK_BYTES, PG_CHUNK_BYTES, budget
from differential.expect import same
from differential.harness import Imported, PipelineHarness, harness_settings, open_harness
from differential.stored import normalize

CASES = st.one_of(
    st.tuples(st.just(csv_files.DATASET), st.just(InputFormat.CSV), csv_files.csv_cases()),
    st.tuples(st.just(jsonl_files.DATASET), st.just(InputFormat.JSONL), jsonl_files.jsonl_cases()),
    st.tuples(
        st.just(parquet_files.DATASET), st.just(InputFormat.PARQUET), parquet_files.parquet_cases()
    ),
)


@pytest.fixture
def harnesses(tmp_path: Path, pg_url: str) -> Iterator[dict[str, PipelineHarness]]:
    sqlite_url = f"sqlite:///{tmp_path / 'target.db'}"
    with (
        open_harness(harness_settings(tmp_path / "s", sqlite_url, CHUNK_BYTES)) as on_sqlite,
        open_harness(harness_settings(tmp_path / "p", pg_url, PG_CHUNK_BYTES)) as on_postgres,
    ):
        yield {"sqlite": on_sqlite, "postgresql": on_postgres}


def _seen(got: Imported, backend: str, dataset: Any) -> tuple[Any, ...]:
    status = (got.batch.status.value, got.batch.error_message)
    outcomes = [(r["record_number"], r["outcome"], r["error_code"]) for r in got.results]
    rows = sorted((normalize(row, dataset, backend) for row in got.rows), key=lambda r: r["n"])
    return status, got.batch.counts, outcomes, rows


@budget(30)
@given(case=CASES)
def test_sqlite_and_postgresql_store_the_same_values(
    harnesses: dict[str, PipelineHarness], case: tuple[dict[str, Any], InputFormat, Any]
) -> None:
    body, fmt, generated = case
    note(f"{fmt.value} input: {generated.data!r}")
    seen = {}
    for backend, harness in harnesses.items():
        dataset = harness.new_dataset(body)
        seen[backend] = _seen(harness.run(dataset, generated.data, fmt), backend, dataset)
    on_sqlite, on_postgres = seen["sqlite"], seen["postgresql"]
    assert on_sqlite[0] == on_postgres[0]
    if on_sqlite[0][0] != "completed":
        return  # a failed batch's counters say what each target took before it stopped
    assert on_sqlite[1] == on_postgres[1]
    assert on_sqlite[2] == on_postgres[2]
    for left, right in zip(on_sqlite[3], on_postgres[3], strict=True):
        differ = {k: (left[k], right[k]) for k in left if not same(left[k], right[k])}
        assert not differ, f"record n={left['n']}: (sqlite, postgresql) = {differ}"
