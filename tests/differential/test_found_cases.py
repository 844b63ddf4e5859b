"""Inputs the generated tests found mishandled, kept as plain examples after the fix."""

from __future__ import annotations

from batchyard.domain.batches import InputFormat
from differential.harness import PipelineHarness
from differential.jsonl_files import DATASET as JSONL_DATASET


def test_jsonl_line_with_invalid_utf8_in_a_string_fails_alone(harness: PipelineHarness) -> None:
    """msgspec raises UnicodeDecodeError (not DecodeError) for bad bytes inside a string: the
    batch used to fail with "internal error: UnicodeDecodeError"."""
    dataset = harness.new_dataset(JSONL_DATASET)
    data = b'{"n": 1, "s": "\xff"}\n{"n": 2, "s": "ok"}\n'
    got = harness.run(dataset, data, InputFormat.JSONL)
    assert got.batch.status.value == "completed", got.batch.error_message
    outcomes = [(r["record_number"], r["outcome"], r["error_code"]) for r in got.results]
    assert outcomes == [("1", "failed", "invalid_encoding"), ("2", "succeeded", "")]
    assert [(row["n"], row["s"]) for row in got.rows] == [(2, "ok")]
