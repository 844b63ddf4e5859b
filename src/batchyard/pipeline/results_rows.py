"""Rows of the results file, and what was sent of the records the target refused."""

from __future__ import annotations

import json
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import RECORD_NUMBER

_RESULT_TEXT_COLUMNS = ("outcome", "error_code", "error_column", "error_message", "key")
_RESULT_FIELDS: list[pa.Field[Any]] = [pa.field("record_number", pa.int64())]
RESULTS_SCHEMA = pa.schema(
    _RESULT_FIELDS + [pa.field(n, pa.string()) for n in _RESULT_TEXT_COLUMNS]
)


def key_text(table: pa.Table, dataset: Dataset) -> pa.Array[Any]:
    """Each record's primary key as text (composite keys joined with ","), null without a key."""
    if not dataset.primary_key:
        return pa.nulls(table.num_rows, pa.string())
    parts = [pc.cast(table[name], pa.string()) for name in dataset.primary_key]
    if len(parts) == 1:
        return parts[0].combine_chunks() if isinstance(parts[0], pa.ChunkedArray) else parts[0]
    joined = pc.binary_join_element_wise(*cast(list[Any], parts), ",")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def result_rows(
    record_numbers: Any,
    outcome: str,
    *,
    key: Any,
    code: Any = None,
    column: Any = None,
    message: Any = None,
) -> pa.Table:
    """RESULTS_SCHEMA rows with one ``outcome`` for all; absent error columns are nulls."""
    n = len(record_numbers)
    no_text = pa.nulls(n, pa.string())
    return pa.table(
        {
            "record_number": record_numbers,
            "outcome": pa.repeat(outcome, n),
            "error_code": no_text if code is None else code,
            "error_column": no_text if column is None else column,
            "error_message": no_text if message is None else message,
            "key": key,
        },
        schema=RESULTS_SCHEMA,
    )


def failed_rows(failed: pa.Table) -> pa.Table:
    """RESULTS_SCHEMA rows for ERRORS_SCHEMA rows: each record ``failed`` with its error."""
    return result_rows(
        failed["record_number"],
        "failed",
        key=failed["key"],
        code=failed["code"],
        column=failed["column"],
        message=failed["message"],
    )


def raw_or_typed(failed: pa.Table, valid: pa.Table, originals: dict[int, str]) -> pa.Table:
    """Fill ``raw`` for records the target refused (validation already filled its own): what was
    sent, else (without the input to read it from) the typed values as text."""
    missing = pc.is_null(failed["raw"])
    if not pc.any(missing).as_py():
        return failed
    by_number = {
        row[RECORD_NUMBER]: row
        for row in valid.filter(
            pc.is_in(valid[RECORD_NUMBER], value_set=failed.filter(missing)["record_number"])
        ).to_pylist()
    }
    numbers = cast("list[int]", failed["record_number"].to_pylist())
    raws = [
        raw if raw is not None else originals.get(number) or _raw_json(by_number.get(number))
        for number, raw in zip(numbers, failed["raw"].to_pylist(), strict=True)
    ]
    return failed.set_column(
        failed.schema.get_field_index("raw"), "raw", pa.array(raws, pa.string())
    )


def _raw_json(row: dict[str, Any] | None) -> str | None:
    if row is None:
        return None
    return json.dumps({k: _text(v) for k, v in row.items() if k != RECORD_NUMBER})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value).lower() if isinstance(value, bool) else str(value)
