"""Parquet against pyarrow.parquet: every row counted, stored exactly or failed with a code."""

from __future__ import annotations

from hypothesis import given, note

from batchyard.domain.batches import InputFormat
from differential.budget import budget
from differential.expect import check_import
from differential.harness import PipelineHarness
from differential.parquet_files import DATASET, ParquetCase, parquet_cases


@budget(40)
@given(case=parquet_cases())
def test_parquet_rows_match_pyarrow(
    harness: PipelineHarness, backend: str, case: ParquetCase
) -> None:
    note(f"column types: {case.types}")
    dataset = harness.new_dataset(DATASET)
    got = harness.run(dataset, case.data, InputFormat.PARQUET)
    check_import(got, dataset, case.records, "n", backend)
