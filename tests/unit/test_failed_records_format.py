"""The failed-records file's text: fields and lines as sent, plus the reason."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa

from batchyard.pipeline.chunks import ERRORS_SCHEMA
from batchyard.pipeline.failed_records import FailedRecordsFormat


def failed(*raws: dict[str, object] | None) -> pa.Table:
    rows = [
        {
            "record_number": n,
            "column": "v",
            "code": "invalid_integer",
            "message": f"bad {n}",
            "key": None,
            "raw": None if raw is None else json.dumps(raw),
        }
        for n, raw in enumerate(raws, start=1)
    ]
    return pa.Table.from_pylist(rows, schema=ERRORS_SCHEMA)


def test_csv_keeps_null_and_empty_apart_and_the_delimiter() -> None:
    fmt = FailedRecordsFormat("csv", ["id", "v", "note"], delimiter=";")
    text = fmt.header() + fmt.rows(
        failed(
            {"id": "1", "v": "", "note": None},
            {"id": "2", "v": 'a;"b"\nc', "note": " x "},
            {"_fields": ["3", "only"]},
            None,
        )
    )
    assert text.splitlines()[:2] == ["id;v;note;error", '1;"";;invalid_integer (column v): bad 1']
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[2] == ["2", 'a;"b"\nc', " x ", "invalid_integer (column v): bad 2"]
    assert rows[3] == ["3", "only", "", "invalid_integer (column v): bad 3"]
    assert rows[4] == ["", "", "", "invalid_integer (column v): bad 4"]


def test_jsonl_lines_come_back_as_sent_with_the_reason_last() -> None:
    fmt = FailedRecordsFormat("jsonl", ["id", "v"])
    lines = [
        '{"id": 1,  "v": 1e400 , "note": "café"}  ',
        "{ }",
        '{"id": 3, "v": "x"',
        "[1, 2]",
        '{"id": 5, "v": "y", "error": "invalid_integer (column v): bad earlier"}',
    ]
    assert fmt.header() == ""
    got = fmt.rows(failed(*({"_line": line} for line in lines))).splitlines()
    assert got == [
        '{"id": 1,  "v": 1e400 , "note": "café", "error": "invalid_integer (column v): bad 1"}',
        '{"error": "invalid_integer (column v): bad 2"}',
        '{"id": 3, "v": "x"',
        "[1, 2]",
        '{"id": 5, "v": "y", "error": "invalid_integer (column v): bad 5"}',
    ]


def test_fields_the_fast_decoder_refuses_read_as_json_reads_them() -> None:
    """JSON Lines fields kept without their line: NaN, a number beyond a float and a lone
    surrogate come back as Python's json module reads them, and a raw that is not JSON as an
    empty record."""
    fmt = FailedRecordsFormat("csv", ["id", "v"])
    raws = ['{"id": NaN, "v": 1e400}', '{"id": "\\ud800", "v": 12345678901234567890123}', "{x"]
    table = failed(None, None, None).set_column(5, "raw", pa.array(raws, pa.string()))
    assert fmt.rows(table).splitlines() == [
        "NaN,Infinity,invalid_integer (column v): bad 1",
        "\ud800,12345678901234567890123,invalid_integer (column v): bad 2",
        ",,invalid_integer (column v): bad 3",
    ]
