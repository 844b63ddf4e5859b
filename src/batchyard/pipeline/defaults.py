"""Column defaults: the value a column takes when the input has no such field at all.

A default is given as JSON (``"default": 0``, ``"default": "n/a"``) and read like a value sent
in that field: as its text, through the column's own checks. So a default is valid exactly when
the same text in a CSV field would be, which is checked once, when the dataset is declared.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from batchyard.domain.errors import InvalidSchema
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.formats_common import to_json
from batchyard.pipeline.validate_checks import check_column, show
from batchyard.pipeline.validate_types import Arr

__all__ = ["check_dataset_defaults", "default_text", "default_values"]


def default_text(value: Any) -> str:
    """A default as the text a CSV field would hold: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else to_json(value)


def default_values(column: Column, length: int) -> Arr:
    """The column's default ``length`` times, as text for validation (no copy per record)."""
    text = default_text(column.default)
    if column.type == ColumnType.JSON and isinstance(column.default, str):
        text = to_json(column.default)  # a json column's default is the JSON value itself
    values: Arr = pa.repeat(pa.scalar(text, pa.string()), length)
    return values


def check_dataset_defaults(dataset: Dataset) -> None:
    """InvalidSchema naming the first column whose default is not a valid value of it."""
    for column in dataset.columns:
        if column.default is None:
            continue
        if isinstance(column.default, dict | list) and column.type != ColumnType.JSON:
            raise _invalid(column, f"{show(to_json(column.default))} is not a {column.type.value}")
        _, failures = check_column(default_values(column, 1), column, 1)
        failed = [f for f in failures if f.mask[0].as_py()]
        if failed:
            raise _invalid(column, failed[0].reason(default_text(column.default)))


def _invalid(column: Column, reason: str) -> InvalidSchema:
    return InvalidSchema(
        f"the default of column {column.name!r} is not valid: {reason}",
        details={"column": column.name},
    )
