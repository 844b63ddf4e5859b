"""The failed-records file's error column is recognised by its exact name, and only while the
dataset has no column of that name."""

from __future__ import annotations

from batchyard.domain.schema import Dataset
from batchyard.pipeline.failed_records import is_error_column


def dataset(*names: str) -> Dataset:
    return Dataset.from_dict(
        {"name": "t", "columns": [{"name": n, "type": "string"} for n in names]}
    )


def test_only_the_exact_name_is_the_error_column() -> None:
    plain = dataset("id")
    assert is_error_column("error", plain)
    assert not any(is_error_column(n, plain) for n in ("Error", "errors", " error", "id"))


def test_a_dataset_column_named_error_is_data() -> None:
    assert not is_error_column("error", dataset("id", "error"))
