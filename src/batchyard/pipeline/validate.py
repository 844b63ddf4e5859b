"""Validation: a raw chunk's records typed per the dataset schema, or rejected with a reason.

Whole columns are checked with pyarrow.compute; Python only touches the records that fail (to
write their messages). A record fails on the first failing column in dataset order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.schema import Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, RawChunk, ValidatedChunk
from batchyard.pipeline.originals import as_text, field_values, original_fields
from batchyard.pipeline.validate_checks import Failure, check_column
from batchyard.pipeline.validate_types import Arr, all_false

__all__ = ["validate_chunk"]


@dataclass
class _Rejections:
    """The records rejected so far: a mask over the chunk, and (index, column, code, message)."""

    failed: Arr
    rows: list[tuple[int, str, str, str]] = field(default_factory=list)

    def add(self, failure: Failure, column: str, originals: Arr | None) -> None:
        new: Arr = pc.and_(failure.mask, pc.invert(self.failed))
        if not pc.any(new).as_py():
            return
        indices: Arr = pc.indices_nonzero(new)
        shown = (
            as_text(originals.take(indices)).to_pylist()
            if originals is not None
            else [None] * len(indices)
        )
        for index, value in zip(indices.to_pylist(), shown, strict=True):
            self.rows.append((index, column, failure.code.value, failure.reason(value)))
        self.failed = pc.or_(self.failed, failure.mask)


def _column(table: pa.Table, name: str) -> Arr | None:
    if name not in table.column_names:
        return None
    return table.column(name).combine_chunks()


def validate_chunk(raw: RawChunk, dataset: Dataset) -> ValidatedChunk:
    """Type and check every record of ``raw``; each ends in exactly one of valid and errors."""
    table = raw.table
    rejections = _Rejections(all_false(table.num_rows))
    typed_columns: list[Arr] = []
    for column in dataset.columns:
        originals = _column(table, column.name)
        typed, failures = check_column(originals, column, table.num_rows)
        typed_columns.append(typed)
        for failure in failures:
            rejections.add(failure, column.name, originals)
    numbers = _column(table, RECORD_NUMBER)
    numbers = numbers if numbers is not None else pa.array([], pa.int64())
    keep: Arr = pc.invert(rejections.failed)
    valid = pa.Table.from_arrays(
        [pc.filter(a, keep) for a in [*typed_columns, numbers]], schema=valid_schema(dataset)
    )
    errors = _error_table(rejections.rows, raw, dataset)
    all_errors = pa.concat_tables([raw.errors, errors]).sort_by("record_number")
    return ValidatedChunk(raw.index, raw.first_record, raw.record_count, valid, all_errors)


def _error_table(
    rows: list[tuple[int, str, str, str]], raw: RawChunk, dataset: Dataset
) -> pa.Table:
    """ERRORS_SCHEMA rows for newly rejected records, with their key and what was sent."""
    if not rows:
        return ERRORS_SCHEMA.empty_table()
    indices = [row[0] for row in rows]
    picked = raw.table.take(pa.array(indices, pa.int64()))
    raws = original_fields(raw, indices)
    originals = field_values(picked)
    return pa.table(
        {
            "record_number": picked.column(RECORD_NUMBER),
            "column": [row[1] for row in rows],
            "code": [row[2] for row in rows],
            "message": [row[3] for row in rows],
            "key": [_key(record, dataset) for record in originals],
            "raw": raws,
        },
        schema=ERRORS_SCHEMA,
    )


def _key(record: dict[str, Any], dataset: Dataset) -> str | None:
    """The record's primary key as sent (composite keys joined with ",")."""
    if not dataset.primary_key:
        return None
    parts = [record.get(name) for name in dataset.primary_key]
    if all(part is None for part in parts):
        return None
    return ",".join("" if part is None else str(part) for part in parts)
