"""JSON Lines against Python's json module: every line counted, stored exactly or failed."""

from __future__ import annotations

from hypothesis import given, note

from batchyard.domain.batches import InputFormat
from differential.budget import budget
from differential.expect import check_import
from differential.harness import PipelineHarness
from differential.jsonl_files import DATASET, JsonlCase, jsonl_cases


@budget(80)
@given(case=jsonl_cases())
def test_jsonl_records_match_the_json_module(
    harness: PipelineHarness, backend: str, case: JsonlCase
) -> None:
    note(f"input: {case.data!r}")
    dataset = harness.new_dataset(DATASET)
    got = harness.run(dataset, case.data, InputFormat.JSONL)
    check_import(got, dataset, case.records, "n", backend)
