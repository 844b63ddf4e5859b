"""The failed-records CSV text built column-wise by Arrow is the text built record by record."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from batchyard.pipeline.chunks import ERRORS_SCHEMA
from batchyard.pipeline.failed_records import FailedRecordsFormat

VALUES = [None, "", "plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "tab\tx", "café", " "]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_columnwise_text_equals_record_by_record(delimiter: str) -> None:
    columns = ["id", "note", "absent"]
    fields = pa.table(
        {"id": pa.array([str(n) for n in range(len(VALUES))]), "note": pa.array(VALUES)}
    )
    form = FailedRecordsFormat("csv", columns, delimiter)
    reason = "the batch was cancelled before this record was applied"
    raws = [json.dumps(row) for row in fields.to_pylist()]
    failed = pa.table(
        {
            "record_number": pa.array(range(1, len(VALUES) + 1), pa.int64()),
            "column": pa.nulls(len(VALUES), pa.string()),
            "code": pa.array(["not_processed"] * len(VALUES)),
            "message": pa.array([reason] * len(VALUES)),
            "key": pa.nulls(len(VALUES), pa.string()),
            "raw": pa.array(raws),
        },
        schema=ERRORS_SCHEMA,
    )
    assert form.csv_rows(fields, f"not_processed: {reason}") == form.rows(failed)
