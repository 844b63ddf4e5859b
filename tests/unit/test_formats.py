"""Record readers: what a user sees for their file — record numbers, nulls, errors, refusals."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard.domain.batches import BatchOptions, InputFormat
from batchyard.domain.errors import InputRejected, PayloadTooLarge, UnsupportedFormat
from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, RawChunk
from batchyard.pipeline.formats import detect_format, read_chunks

DATASET = Dataset.from_dict(
    {
        "name": "people",
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "integer", "nullable": False},
            {"name": "name", "type": "string"},
            {"name": "note", "type": "string"},
        ],
    }
)


def read(data: bytes, fmt: InputFormat = InputFormat.CSV, **kwargs: Any) -> list[RawChunk]:
    options = kwargs.pop("options", BatchOptions())
    gz = kwargs.pop("gzip", False)
    stream = io.BytesIO(data)
    return list(read_chunks(stream, fmt, gzip=gz, dataset=DATASET, options=options, **kwargs))


def records(chunks: list[RawChunk]) -> list[dict[str, Any]]:
    return [row for chunk in chunks for row in chunk.table.to_pylist()]


def errors(chunks: list[RawChunk]) -> list[dict[str, Any]]:
    return [row for chunk in chunks for row in chunk.errors.to_pylist()]


def check_counts(chunks: list[RawChunk]) -> None:
    """Chunks cover every record once, in order, numbered from 1."""
    expected = 1
    for index, chunk in enumerate(chunks):
        assert chunk.index == index
        assert chunk.first_record == expected
        numbers = sorted(
            chunk.table[RECORD_NUMBER].to_pylist() + chunk.errors["record_number"].to_pylist()
        )
        assert numbers == list(range(expected, expected + chunk.record_count))
        assert chunk.errors.schema == ERRORS_SCHEMA
        expected += chunk.record_count


# A file with a quoted newline, a ragged row, bad UTF-8, an escaped quote and a blank line.
MESSY = b'\xef\xbb\xbfid, name ,note\r\n1,"a\nb",x\r\n2,,""\r\n\r\n3,c\n4,\xff,z\n5,"q""q",w\n6,f,g'


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1 << 20])
def test_csv_record_numbers_are_exact_across_blocks(chunk_bytes: int) -> None:
    chunks = read(MESSY, chunk_bytes=chunk_bytes)
    check_counts(chunks)
    got = {r[RECORD_NUMBER]: (r["id"], r["name"], r["note"]) for r in records(chunks)}
    assert got == {
        1: ("1", "a\nb", "x"),
        2: ("2", None, ""),  # unquoted empty is NULL, quoted "" the empty string
        5: ("5", 'q"q', "w"),
        6: ("6", "f", "g"),
    }
    bad = {e["record_number"]: e for e in errors(chunks)}
    assert set(bad) == {3, 4}
    assert bad[3]["code"] == "wrong_field_count"
    assert bad[3]["message"] == "expected 3 fields, found 2"
    assert json.loads(bad[3]["raw"]) == {"_fields": ["3", "c"]}
    assert bad[4]["code"] == "invalid_encoding"
    assert bad[4]["column"] == "name"
    assert "0xff" in bad[4]["message"]
    assert bad[4]["key"] == "4"


# Ragged records among quoted newlines and blank lines, but nothing pyarrow cannot parse: the
# records around a ragged one must keep their numbers and values exactly.
RAGGED = b'id,name,note\n1,"a\nb",x\n2,b\n\n3,"c",""\n4,d,e,extra\n5,"e\n\ne",f\n6,g,h\n'


@pytest.mark.parametrize("chunk_bytes", [1, 9, 1 << 20])
def test_csv_ragged_records_fail_alone_and_neighbours_keep_their_numbers(chunk_bytes: int) -> None:
    chunks = read(RAGGED, chunk_bytes=chunk_bytes)
    check_counts(chunks)
    got = {r[RECORD_NUMBER]: (r["id"], r["name"], r["note"]) for r in records(chunks)}
    assert got == {
        1: ("1", "a\nb", "x"),
        3: ("3", "c", ""),
        5: ("5", "e\n\ne", "f"),
        6: ("6", "g", "h"),
    }
    bad = {e["record_number"]: e for e in errors(chunks)}
    assert {n: e["code"] for n, e in bad.items()} == {
        2: "wrong_field_count",
        4: "wrong_field_count",
    }
    assert bad[2]["message"] == "expected 3 fields, found 2"
    assert json.loads(bad[4]["raw"]) == {"_fields": ["4", "d", "e", "extra"]}


def test_csv_one_ragged_record_in_a_big_block_keeps_the_rest_in_arrow() -> None:
    lines = [f"{i},name{i},note{i}" for i in range(1, 20_001)]
    lines[9_999] = "10000,short"
    (chunk,) = read(("id,name,note\n" + "\n".join(lines) + "\n").encode(), chunk_bytes=1 << 22)
    assert chunk.record_count == 20_000
    assert chunk.errors["record_number"].to_pylist() == [10_000]
    numbers = chunk.table[RECORD_NUMBER].to_pylist()
    assert numbers == [*range(1, 10_000), *range(10_001, 20_001)]
    assert chunk.table["name"][10_000].as_py() == "name10002"


def test_csv_many_blocks_count_every_record() -> None:
    body = "".join(f'{i},"line\n{i}",n\n' for i in range(1, 501))
    chunks = read(b"id,name,note\n" + body.encode(), chunk_bytes=100)
    check_counts(chunks)
    assert len(chunks) > 10
    rows = records(chunks)
    assert [r[RECORD_NUMBER] for r in rows] == list(range(1, 501))
    assert rows[499]["name"] == "line\n500"


def test_csv_literal_null_word_is_a_string() -> None:
    (chunk,) = read(b"id,name,note\n1,NULL,NaN\n")
    assert chunk.table.to_pylist()[0]["name"] == "NULL"


def test_csv_delimiter_option() -> None:
    (chunk,) = read(b"id;name\n1;a,b\n", options=BatchOptions(delimiter=";"))
    assert chunk.table.to_pylist() == [{"id": "1", "name": "a,b", RECORD_NUMBER: 1}]


def test_csv_header_only_files_have_no_records() -> None:
    assert read(b"id,name\n") == []
    assert read(b"\xef\xbb\xbf\r\n\nid,name") == []


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n", b"  \n"])
def test_csv_without_a_header_is_refused(data: bytes) -> None:
    with pytest.raises(InputRejected, match="the input is empty"):
        read(data)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (b"id,name,color\n", ["'color'", "ignore_unknown_columns"]),
        (b"name,note\n", ["required", "'id'"]),
        (b"id,name,name\n", ["more than once", "'name'"]),
    ],
)
def test_csv_header_problems_reject_the_input(header: bytes, words: list[str]) -> None:
    with pytest.raises(InputRejected) as caught:
        read(header + b"1,a,b\n")
    for word in words:
        assert word in caught.value.message


def test_csv_unknown_columns_dropped_when_asked() -> None:
    options = BatchOptions(ignore_unknown_columns=True)
    (chunk,) = read(b"id,color,name\n1,red,a\n", options=options)
    assert chunk.table.column_names == ["id", "name", RECORD_NUMBER]


def test_csv_record_too_large_is_one_error() -> None:
    data = b"id,name\n1,a\n2," + b"x" * 5000 + b"\n3,c\n"
    chunks = read(data, chunk_bytes=256, max_record_bytes=1000)
    check_counts(chunks)
    assert [r["id"] for r in records(chunks)] == ["1", "3"]
    (error,) = errors(chunks)
    assert error["record_number"] == 2
    assert error["code"] == "record_too_large"


def test_gzip_round_trip_and_detection() -> None:
    data = gzip.compress(b"id,name\n" + b"".join(b"%d,n\n" % i for i in range(1000)))
    assert detect_format(data[:100], None, None) == (InputFormat.CSV, True)
    chunks = read(data, gzip=True, chunk_bytes=512)
    check_counts(chunks)
    assert len(records(chunks)) == 1000


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"id,name\n" + b"1,aaaaaaaaaa\n" * 200_000)
    with pytest.raises(PayloadTooLarge, match="decompressed input exceeds 100000 bytes"):
        read(bomb, gzip=True, max_decompressed_bytes=100_000)


@pytest.mark.parametrize(
    ("head", "hint", "declared", "expected"),
    [
        (b"id,name\n1,a\n", None, None, (InputFormat.CSV, False)),
        (b'  {"id": 1}\n', None, None, (InputFormat.JSONL, False)),
        (b"PAR1\x15\x04", None, None, (InputFormat.PARQUET, False)),
        (gzip.compress(b'{"id": 1}\n'), None, None, (InputFormat.JSONL, True)),
        (b"", "data.ndjson", None, (InputFormat.JSONL, False)),
        (b"", "data.csv.gz", None, (InputFormat.CSV, False)),
        (b'{"id": 1}\n', None, InputFormat.CSV, (InputFormat.CSV, False)),
    ],
)
def test_detect_format(
    head: bytes,
    hint: str | None,
    declared: InputFormat | None,
    expected: tuple[InputFormat, bool],
) -> None:
    assert detect_format(head, hint, declared) == expected


@pytest.mark.parametrize(
    ("head", "hint", "declared", "error"),
    [
        (b"[1, 2]", None, None, UnsupportedFormat),
        (b"PK\x03\x04\x00\x00", None, None, UnsupportedFormat),
        (b"id,name\n", "x.parquet", None, InputRejected),
        (b"id,name\n", None, InputFormat.PARQUET, InputRejected),
    ],
)
def test_detect_format_refusals(
    head: bytes, hint: str | None, declared: InputFormat | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        detect_format(head, hint, declared)


JSONL = (
    b'{"id": 1, "name": "x", "note": 1.50}\n'
    b"\n"
    b'{"id": 2, "name": true, "extra": 1}\r\n'
    b"[1]\n"
    b"{broken\n"
    b'{"id": 3, "note": {"a": [1, 2.5]}, "name": null}\n'
)


@pytest.mark.parametrize("chunk_bytes", [5, 1 << 20])
def test_jsonl_records_errors_and_blank_lines(chunk_bytes: int) -> None:
    chunks = read(JSONL, InputFormat.JSONL, chunk_bytes=chunk_bytes)
    check_counts(chunks)
    assert records(chunks) == [{"id": "1", "name": "x", "note": "1.50", RECORD_NUMBER: 1}]
    bad = {e["record_number"]: e for e in errors(chunks)}
    assert bad[5]["code"] == "invalid_string"  # an object sent to a string column
    assert json.loads(bad[5]["raw"]) == {
        "_line": '{"id": 3, "note": {"a": [1, 2.5]}, "name": null}'
    }
    assert json.loads(bad[2]["raw"]) == {"_line": '{"id": 2, "name": true, "extra": 1}'}  # no \r
    lines = [line for chunk in chunks for line in chunk.lines or []]
    assert lines == [b'{"id": 1, "name": "x", "note": 1.50}']
    assert bad[2]["code"] == "unknown_column"
    assert bad[2]["column"] == "extra"
    assert bad[2]["key"] == "2"
    assert bad[3]["code"] == "malformed_record"
    assert "an array" in bad[3]["message"]
    assert bad[4]["code"] == "malformed_record"
    assert "not valid JSON" in bad[4]["message"]


def test_jsonl_scalar_text_and_ignore_unknown() -> None:
    data = b'{"id": 12, "name": false, "note": 12345678901234567890.123, "x": 1}\n'
    options = BatchOptions(ignore_unknown_columns=True)
    chunks = read(data, InputFormat.JSONL, options=options)
    assert records(chunks) == [
        {"id": "12", "name": "false", "note": "12345678901234567890.123", RECORD_NUMBER: 1}
    ]


def parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def test_parquet_keeps_types_and_numbers_records() -> None:
    table = pa.table(
        {"id": pa.array(range(100), pa.int32()), "name": [f"n{i}" for i in range(100)]}
    )
    chunks = read(parquet_bytes(table, 30), InputFormat.PARQUET, chunk_bytes=200)
    check_counts(chunks)
    assert len(chunks) > 1
    assert chunks[0].table.schema.field("id").type == pa.int32()
    assert [r[RECORD_NUMBER] for r in records(chunks)] == list(range(1, 101))


def test_parquet_gzip_and_schema_checks() -> None:
    data = gzip.compress(parquet_bytes(pa.table({"id": [1, 2], "color": ["r", "g"]})))
    assert detect_format(data[:4096], None, None) == (InputFormat.PARQUET, True)
    with pytest.raises(InputRejected, match="'color'"):
        read(data, InputFormat.PARQUET, gzip=True)
    options = BatchOptions(ignore_unknown_columns=True)
    chunks = read(data, InputFormat.PARQUET, gzip=True, options=options)
    assert records(chunks) == [{"id": 1, RECORD_NUMBER: 1}, {"id": 2, RECORD_NUMBER: 2}]


def test_parquet_not_readable_is_rejected() -> None:
    with pytest.raises(InputRejected):
        read(b"PAR1 but not really", InputFormat.PARQUET)
