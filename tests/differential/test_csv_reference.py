"""CSV against Python's csv module: every record counted, stored exactly or failed with a code."""

from __future__ import annotations

from hypothesis import given, note

from batchyard.domain.batches import InputFormat
from differential.budget import budget
from differential.csv_files import DATASET, CsvCase, csv_cases
from differential.expect import check_import
from differential.harness import PipelineHarness


@budget(100)
@given(case=csv_cases())
def test_csv_records_match_the_csv_module(
    harness: PipelineHarness, backend: str, case: CsvCase
) -> None:
    note(f"input: {case.data!r}")
    dataset = harness.new_dataset(DATASET)
    got = harness.run(dataset, case.data, InputFormat.CSV)
    check_import(got, dataset, case.records, "n", backend)
