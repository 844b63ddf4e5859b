"""Schema inference on samples built like the real files that defeated it (issue 17, points 4-5).

Each guess is checked against a reference reading of the same bytes (Python's ``csv`` and
``json``, pyarrow for Parquet): the header a column is read ``from`` is the reference header,
and every value of a typed column survives the type unchanged (``00501`` would not survive
integer, so it must stay a string).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard.client.infer import infer_dataset, infer_schema
from batchyard.client.infer_names import SQL_RESERVED, column_names, to_identifier
from batchyard.domain.schema import IDENTIFIER
from support.infer_reference import csv_reference, survives

HOSTILE_CSV = (
    "Airport Name,Date,1962,sepalLength,Zip,Price,Amount USD,Rate,Country,Note\n"
    'Heathrow,2009-06-01,17,5.1,00501,12.50,"1,234.00",0.5,GB,plain\n'
    "Orly,2009-06-02,15,4.9,02134,3.00,$5.00,NA,NA,NA\n"
    "Logan,2009-06-03,19,4.7,10001,100.10,7.00,1.25,US,\n"
)


def assert_against_reference(schema: Any, header: list[str], rows: list[list[str]]) -> None:
    markers = set(schema.null_markers or [""])
    assert [column.from_ or column.name for column in schema.columns] == header
    for position, column in enumerate(schema.columns):
        assert IDENTIFIER.fullmatch(column.name), column.name
        for row in rows:
            value = row[position]
            if value not in markers:
                assert survives(column.type, value, column.scale), (column, value)


def test_real_world_headers_become_identifiers_with_from(tmp_path):
    path = tmp_path / "airports 2009.csv"
    path.write_text(HOSTILE_CSV)
    schema = infer_schema(path)
    header, rows = csv_reference(HOSTILE_CSV)
    assert_against_reference(schema, header, rows)
    assert schema.name == "airports_2009"
    by_name = {c.name: c for c in schema.columns}
    assert [(c.name, c.from_) for c in schema.columns] == [
        ("airport_name", "Airport Name"),
        ("date", "Date"),
        ("c_1962", "1962"),
        ("sepal_length", "sepalLength"),
        ("zip", "Zip"),
        ("price", "Price"),
        ("amount_usd", "Amount USD"),
        ("rate", "Rate"),
        ("country", "Country"),
        ("note", "Note"),
    ]
    assert by_name["date"].type == "date"
    assert by_name["zip"].type == "string"  # 00501 keeps its zeros
    assert (by_name["price"].type, by_name["price"].scale) == ("decimal", 2)
    assert by_name["amount_usd"].type == "string"  # "1,234.00" and "$5.00": the import refuses both
    assert by_name["rate"].type == "float"  # NA read as missing
    assert by_name["c_1962"].type == "integer" and by_name["sepal_length"].type == "float"
    assert schema.null_markers == ["", "NA"]
    assert by_name["country"].type == "string" and by_name["note"].type == "string"


def test_header_fields_are_trimmed_as_the_import_trims_them(tmp_path):
    path = tmp_path / "padded.csv"
    path.write_text(" id , Contact Phone Number \n1,555\n")
    schema = infer_schema(path)
    assert [(c.name, c.from_) for c in schema.columns] == [
        ("id", None),
        ("contact_phone_number", "Contact Phone Number"),
    ]


def test_a_field_without_a_name_is_left_out_with_a_hint(tmp_path):
    path = tmp_path / "pandas.csv"
    path.write_text("\ufeff,Order ID,amount\r\n0,a1,1.50\r\n1,a2,2.00\r\n")  # BOM, CRLF
    inferred = infer_dataset(path)
    schema = inferred.schema
    assert [(c.name, c.from_, c.type) for c in schema.columns] == [
        ("order_id", "Order ID", "string"),
        ("amount", None, "decimal"),
    ]
    assert schema.primary_key == ["order_id"]
    assert "without a name in the header (position 1)" in inferred.notes[1]
    assert '"ignore_unknown_columns": true' in inferred.notes[1]


def test_the_notes_say_what_a_user_must_check(tmp_path):
    path = tmp_path / "hostile.csv"
    path.write_text(HOSTILE_CSV)
    notes = "\n".join(infer_dataset(path).notes)
    assert "delimiter comma (detected): 3 sampled records" in notes
    assert "'NA' is read as missing" in notes and "in Rate" in notes
    assert "zip: kept as text: '00501' has a leading zero" in notes
    assert "no primary key" in notes


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Contact Phone Number", "contact_phone_number"),
        ("sepalLength", "sepal_length"),
        ("userID", "user_id"),
        ("HTTPServer", "http_server"),
        ("1962", "c_1962"),
        ("Café au lait", "cafe_au_lait"),
        ("order", "order_"),
        ("Select", "select_"),
        ("__record_number", "record_number"),
        ("sqlite_master", "c_sqlite_master"),
        ("  Date  ", "date"),
        ("x" * 100, "x" * 63),
    ],
)
def test_the_naming_rule(header, name):
    assert to_identifier(header) == name
    assert IDENTIFIER.fullmatch(name) and name not in SQL_RESERVED


def test_names_are_distinct_and_kept_when_already_good():
    headers = ["a b", "a_b", "A B", "", "¿?", "Name", "name", "y" * 70, "Y" * 70]
    names = column_names(headers)
    assert names == [
        "a_b_2",
        "a_b",
        "a_b_3",
        "column_4",
        "column_5",
        "name_2",
        "name",
        "y" * 63,
        "y" * 61 + "_2",
    ]
    assert len(set(names)) == len(names)
    assert all(IDENTIFIER.fullmatch(name) for name in names)
    with pytest.raises(ValueError, match="names the field 'a' twice"):
        column_names(["a", "b", "a"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "2", "007"], ("string", None)),  # one leading zero is enough
        (["0", "-5", "+7"], ("integer", None)),
        (["12.50", "3.00", "7"], ("decimal", 2)),
        (["12.5", "3"], ("float", None)),
        (["0.50", "-1.25"], ("decimal", 2)),
        (["00.50"], ("string", None)),
        (["99999999999999999999"], ("decimal", 0)),  # beyond 64 bits, never a rounded float
        (["1" * 40], ("string", None)),
        (["1.5", "1e400"], ("string", None)),  # 1e400 is no float the import accepts
        (["1.5", "inf", "-Infinity"], ("float", None)),
        (["1", " "], ("string", None)),  # whitespace only is no number
        ([" 42 ", "7"], ("integer", None)),  # trimmed, as the import trims
        (["true", "False", "yes"], ("boolean", None)),
        (["1", "0"], ("integer", None)),
        (["2009-06-01", "2009-06-02"], ("date", None)),
        (["2009-06-01", "2009-06-02 10:00"], ("timestamp", None)),
        (["2009-06-01T10:00:00Z", "2009-06-01T10:00:00.123456+02:00"], ("timestamp", None)),
        (["2009-02-30"], ("string", None)),
        (["0b0e5d5e-2b1c-4a4e-9d55-1c1f6f0e6a01"], ("uuid", None)),
        (["1,5", "2,5"], ("string", None)),  # decimal commas: text
    ],
)
def test_text_types(tmp_path, values, expected):
    path = tmp_path / "one.csv"
    path.write_text("v\n" + "".join(f"{value}\n" for value in values))
    [column] = infer_schema(path).columns
    assert (column.type, column.scale) == expected
    for value in values:
        assert survives(column.type, value, column.scale), value


def test_markers_are_only_markers_among_other_types(tmp_path):
    namibia = tmp_path / "countries.csv"
    namibia.write_text("country,capital\nNA,Windhoek\nGB,London\n")
    schema = infer_schema(namibia)
    assert schema.null_markers is None  # NA is Namibia here
    assert [c.type for c in schema.columns] == ["string", "string"]

    r_export = tmp_path / "r.csv"
    r_export.write_text("length,width,label\n5.1,NA,NA\nN/A,3.5,setosa\n4.7,null,None\n")
    schema = infer_schema(r_export)
    assert schema.null_markers == ["", "NA", "N/A", "null"]  # None sits among texts only
    assert [c.type for c in schema.columns] == ["float", "float", "string"]


def test_delimiters_are_detected_and_can_be_given(tmp_path):
    rows = "id\trate\tname\n1\t0.5\ta,b\n2\t0.25\tc;d\n"
    tsv = tmp_path / "rates.tsv.gz"
    tsv.write_bytes(gzip.compress(rows.encode()))
    inferred = infer_dataset(tsv)
    header, _ = csv_reference(rows, "\t")
    assert (inferred.delimiter, inferred.delimiter_detected) == ("\t", True)
    assert [c.name for c in inferred.schema.columns] == header
    assert inferred.schema.name == "rates"

    semicolon = tmp_path / "prices.csv"
    text = "sku;price;qty\nA;1,5;3\nB;2,25;4\n"
    semicolon.write_text(text)
    inferred = infer_dataset(semicolon)
    assert inferred.delimiter == ";"
    assert [c.type for c in inferred.schema.columns] == ["string", "string", "integer"]
    assert_against_reference(inferred.schema, *csv_reference(text, ";"))

    pipe = tmp_path / "p.txt"
    pipe.write_text("a|b\n1|2\n3|4\n")
    assert infer_dataset(pipe).delimiter == "|"
    given = infer_dataset(pipe, delimiter=",")
    assert (given.delimiter, given.delimiter_detected) == (",", False)
    assert [(c.name, c.from_) for c in given.schema.columns] == [("a_b", "a|b")]


def test_json_lines_widen_mixed_kinds_instead_of_aborting(tmp_path):
    lines = [
        {"Title": "Common Sense", "year": 1776, "price": 12.5, "day": "2009-06-01", "tags": []},
        {"Title": 1776, "year": 1777, "price": "3.25", "day": "2009-06-02", "tags": None},
        {"Title": "Rights of Man", "year": None, "zip": "00501", "flag": True},
    ]
    path = tmp_path / "books.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    inferred = infer_dataset(path)
    types = {c.from_ or c.name: (c.type, c.scale) for c in inferred.schema.columns}
    assert types == {
        "Title": ("string", None),
        "year": ("integer", None),
        "price": ("float", None),  # 12.5: not a two-decimal amount
        "day": ("date", None),  # the same text is a date in every format
        "tags": ("json", None),
        "zip": ("string", None),
        "flag": ("boolean", None),
    }
    assert "title: holds JSON values of several kinds (number, string): string" in inferred.notes


def test_json_lines_keep_the_text_of_numbers(tmp_path):
    path = tmp_path / "amounts.jsonl"
    path.write_text('{"amount": 12.50}\n{"amount": 3}\n{"amount": 1.10}\n')
    [column] = infer_schema(path).columns
    assert (column.type, column.precision, column.scale) == ("decimal", 18, 2)


def test_malformed_lines_and_ragged_rows_are_left_out(tmp_path):
    jsonl = tmp_path / "some.jsonl"
    jsonl.write_text('{"a": 1}\n{"a": \n[1]\n{"a": 2, "a": 3}\n{"a": NaN}\n{"a": 4}\n')
    inferred = infer_dataset(jsonl)
    assert inferred.records == 2 and inferred.schema.columns[0].type == "integer"
    assert "(4 unreadable left out)" in inferred.notes[0]

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n4,5,6\n7,8\n")
    inferred = infer_dataset(ragged)
    assert inferred.records == 2 and "(2 unreadable left out)" in inferred.notes[0]


ROWS = [
    (1, "00501", "12.50", "2009-06-01", "2009-06-01T10:00:00", 0.5, True, "a"),
    (2, "02134", "3.00", "2009-06-02", "2009-06-02T11:30:00", 1.25, False, "b"),
    (3, "10001", "100.10", "2009-06-03", "2009-06-03T00:00:00", -2.0, True, None),
]
FIELDS = ["id", "zip", "amount", "day", "ts", "ratio", "flag", "note"]


def write_all_formats(root: Path) -> dict[str, Path]:
    """The same records as CSV, JSON Lines and Parquet, each written the way its tools do."""
    paths = {name: root / f"same.{name}" for name in ("csv", "jsonl", "parquet")}
    with paths["csv"].open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        writer.writerows(
            [[("true" if v is True else "false" if v is False else v) for v in row] for row in ROWS]
        )
    with paths["jsonl"].open("w") as out:
        for row in ROWS:
            record = dict(zip(FIELDS, row, strict=True))
            text = json.dumps({**record, "amount": "@"}).replace('"@"', row[2])
            out.write(text + "\n")  # the amount as a JSON number written 12.50
    table = pa.table(
        {
            "id": pa.array([r[0] for r in ROWS], pa.int64()),
            "zip": [r[1] for r in ROWS],
            "amount": pa.array([decimal.Decimal(r[2]) for r in ROWS], pa.decimal128(18, 2)),
            "day": pa.array([dt.date.fromisoformat(r[3]) for r in ROWS], pa.date32()),
            "ts": pa.array([dt.datetime.fromisoformat(r[4]) for r in ROWS], pa.timestamp("us")),
            "ratio": [r[5] for r in ROWS],
            "flag": [r[6] for r in ROWS],
            "note": [r[7] for r in ROWS],
        }
    )
    pq.write_table(table, paths["parquet"])
    return paths


def test_csv_json_lines_and_parquet_of_the_same_data_give_the_same_schema(tmp_path):
    paths = write_all_formats(tmp_path)
    schemas = {name: infer_schema(path, "same") for name, path in paths.items()}
    assert schemas["csv"] == schemas["jsonl"] == schemas["parquet"]
    csv_schema = schemas["csv"]
    assert [(c.name, c.type, c.nullable) for c in csv_schema.columns] == [
        ("id", "integer", False),
        ("zip", "string", True),
        ("amount", "decimal", True),
        ("day", "date", True),
        ("ts", "timestamp", True),
        ("ratio", "float", True),
        ("flag", "boolean", True),
        ("note", "string", True),
    ]
    assert csv_schema.primary_key == ["id"]
    reference = pq.read_table(paths["parquet"])
    assert reference.column_names == [c.name for c in csv_schema.columns]
    assert_against_reference(csv_schema, *csv_reference(paths["csv"].read_text()))


def test_a_parquet_string_column_is_judged_by_its_text(tmp_path):
    path = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"day": ["2009-06-01", None], "zip": ["00501", "501"]}), path)
    assert [c.type for c in infer_schema(path).columns] == ["date", "string"]


@pytest.mark.parametrize(
    ("csv_text", "key"),
    [
        ("id,order_id\n1,10\n2,11\n", "id"),  # id first
        ("name,customer_id\nann,c1\nbob,c2\n", "customer_id"),  # a string key, named as one
        ("sku_code,qty\nA-1,3\nA-2,3\n", "sku_code"),
        ("No,name\n1,a\n2,b\n3,c\n5,d\n8,e\n", "no"),  # a rising serial number
        ("No,name\n1,a\n2,b\n3,c\n", None),  # ... but 3 numbers may rise by chance
        (
            "name,uid\nann,0b0e5d5e-2b1c-4a4e-9d55-1c1f6f0e6a01\nbob,0b0e5d5e-2b1c-4a4e-9d55-1c1f6f0e6a02\n",
            "uid",
        ),
        ("country,1960,1961\nGB,52,53\nFR,46,47\nDE,72,73\n", None),  # yearly figures
        ("id,v\n1,a\n1,b\n", None),  # repeated
        ("customer_id,v\nc1,a\n,b\n", None),  # missing once
        ("id,v\n1,a\nNA,b\n", None),  # NA among integers: missing, so no key
        ("customer_id,v\nc1,a\nNA,b\n", "customer_id"),  # NA among texts is a text
        ("name,comment\nann,hi\nbob,ho\n", None),  # unique texts are no key by chance
    ],
)
def test_primary_key_proposal(tmp_path, csv_text, key):
    path = tmp_path / "keys.csv"
    path.write_text(csv_text)
    inferred = infer_dataset(path)
    assert inferred.schema.primary_key == ([key] if key else [])
    keyed = [c.name for c in inferred.schema.columns if not c.nullable]
    assert keyed == inferred.schema.primary_key
    note = next(n for n in inferred.notes if "primary key" in n)
    assert note.startswith(f"primary key: {key}," if key else "no primary key")


class CountingReader(io.RawIOBase):
    """A file object that counts the bytes taken from it."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.taken = 0
        self.name = "big.csv"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.taken += len(data)
        return len(data)


def test_only_a_bounded_sample_is_read_and_cut_records_are_dropped():
    lines = ["id,text"] + [f'{i},"line {i}\nstill {i}"' for i in range(1, 50_001)]
    data = ("\n".join(lines) + "\n").encode()
    source = CountingReader(data)
    inferred = infer_dataset(io.BufferedReader(source, 8192), sample_bytes=64 * 1024)
    assert source.taken < 64 * 1024 + 2 * 8192 < len(data)
    _, rows = csv_reference(data[: 64 * 1024].decode())
    # The last record, perhaps cut inside its quoted field, is never used; nothing else is lost.
    assert len(rows) - 2 <= inferred.records <= len(rows) - 1
    assert inferred.schema.primary_key == ["id"]
    assert [c.type for c in inferred.schema.columns] == ["integer", "string"]


class SeekableCountingReader(CountingReader):
    """A CountingReader that can seek, as a Parquet reader must."""

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()


def test_a_parquet_sample_reads_the_first_rows_not_the_whole_row_group():
    rows = 200_000
    offsets = pa.array(range(0, (rows + 1) * 100, 100), pa.int32())
    text = os.urandom(rows * 50).hex().encode()  # 20 MB Parquet cannot compress
    labels = pa.StringArray.from_buffers(rows, offsets.buffers()[1], pa.py_buffer(text))
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": range(rows), "label": labels}), sink, row_group_size=rows)
    source = SeekableCountingReader(sink.getvalue())
    inferred = infer_dataset(io.BufferedReader(source, 8192))
    assert inferred.format == "parquet" and inferred.records == 10_000
    # 10,000 rows of 100 bytes, and the buffer they are read through: not the 20 MB row group.
    assert source.taken < 4 * 2**20 < len(sink.getvalue())


def test_a_csv_header_starting_with_a_brace_is_still_csv(tmp_path):
    path = tmp_path / "braces.csv"
    path.write_text("{id},value\n1,2\n")
    inferred = infer_dataset(path)
    assert inferred.format == "csv"
    assert [(c.name, c.from_) for c in inferred.schema.columns] == [("id", "{id}"), ("value", None)]


def test_json_lines_with_a_broken_first_line_are_still_json_lines(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"a": 1, "b":\n{"a": 2, "b": "x"}\n')
    inferred = infer_dataset(path)
    assert inferred.format == "jsonl" and inferred.records == 1
