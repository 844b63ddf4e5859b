"""Inference on generated CSV files: whatever the values, every one survives its column's type.

Columns mix integers (some past 64 bits), zero-padded codes, amounts, floats, dates,
timestamps, booleans, UUIDs, free text and missing-value markers under arbitrary headers; the
reference is Python's ``csv`` module reading the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import string
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from batchyard.client.infer import infer_dataset
from batchyard.client.infer_names import SQL_RESERVED
from batchyard.client.infer_types import NULL_MARKER_CANDIDATES
from batchyard.domain.batches import BatchOptions, InputFormat
from batchyard.domain.reading import Reading
from batchyard.domain.schema import IDENTIFIER, Dataset
from batchyard.pipeline.formats import read_chunks
from batchyard.pipeline.validate import validate_chunk
from support.infer_reference import csv_reference, survives

VALUES: dict[str, st.SearchStrategy[str]] = {
    "integer": st.integers(-(10**20), 10**20).map(str),
    "code": st.integers(0, 99_999).map(lambda i: f"{i:05d}"),
    "amount": st.integers(-(10**9), 10**9).map(lambda c: f"{c // 100}.{c % 100:02d}"),
    "float": st.floats(allow_nan=False).map(repr),
    "date": st.dates().map(lambda d: d.isoformat()),
    "timestamp": st.datetimes().map(lambda t: t.isoformat(sep=" ")),
    "boolean": st.sampled_from(["true", "False", "yes", "NO", "t", "F"]),
    "uuid": st.uuids().map(str),
    "text": st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    "marker": st.sampled_from(NULL_MARKER_CANDIDATES),
    "missing": st.just(""),
}
#: Headers of a comma-separated file: anything but another delimiter or a line break.
HEADER_CHARACTERS = "".join(c for c in string.printable if c not in "\t;|\r\n\x0b\x0c") + "éßÅ"
HEADERS = st.text(HEADER_CHARACTERS, min_size=1, max_size=20).filter(
    lambda header: header.strip() != ""
)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, list[list[str]]]:
    """A CSV text with 1-4 columns, each drawn from 1-3 kinds of value, and its column kinds."""
    width = draw(st.integers(1, 4))
    headers = draw(st.lists(HEADERS, min_size=width, max_size=width, unique_by=str.strip))
    # A first line starting with { and holding no JSON object nor delimiter is JSON Lines.
    assume(not (headers[0].lstrip().startswith("{") and width == 1))
    kinds = [
        draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=3)) for _ in headers
    ]
    rows = draw(st.integers(1, 30))
    columns = [
        [draw(st.one_of([VALUES[kind] for kind in column_kinds])) for _ in range(rows)]
        for column_kinds in kinds
    ]
    out = io.StringIO()
    writer = csv.writer(out)  # quotes a value holding \r or \n, as a file must
    writer.writerow(headers)
    writer.writerows(zip(*columns, strict=True))
    return out.getvalue(), kinds


def only_kinds(kinds: list[str], allowed: set[str]) -> bool:
    return set(kinds) <= allowed


@settings(max_examples=300, deadline=None)
@given(case=csv_files())
def test_every_value_survives_its_inferred_type(case: tuple[str, list[list[str]]]) -> None:
    text, kinds = case
    note(repr(text))
    header, rows = csv_reference(text)
    inferred = infer_dataset(io.BytesIO(text.encode()))
    schema = inferred.schema
    note(repr(schema))
    names = [column.name for column in schema.columns]
    assert len(set(names)) == len(names)
    assert all(IDENTIFIER.fullmatch(name) and name not in SQL_RESERVED for name in names)
    assert [column.from_ or column.name for column in schema.columns] == [h.strip() for h in header]
    markers = set(schema.null_markers or [""])
    for position, (column, column_kinds) in enumerate(zip(schema.columns, kinds, strict=True)):
        values = [row[position] for row in rows]
        for value in values:
            if value not in markers:
                assert survives(column.type, value, column.scale), (column, value)
        if len(kinds) == 1 and "" in values:
            # csv.writer quotes the empty field of a one-field record ("" : a line of its own
            # would be blank), and the import reads a quoted "" as an empty text.
            assert column.type == "string"
            continue
        _assert_tight(column, column_kinds, values)
    for key in schema.primary_key:
        keyed = [row[names.index(key)] for row in rows]
        assert "" not in keyed and not markers.intersection(keyed)
        assert len({_key(value, schema, key) for value in keyed}) == len(rows)


#: A field of a typed column as a file may hold it, quoted or not, empty or a null marker.
TYPED_FIELDS = st.one_of(
    st.integers(-999, 999).map(str),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["", '""', "NA", '"NA"', "N/A", '"7"']),
)


@settings(max_examples=300, deadline=None)
@given(
    columns=st.lists(st.lists(TYPED_FIELDS, min_size=1, max_size=8), min_size=1, max_size=3),
    delimiter=st.sampled_from([",", ";"]),
)
def test_the_import_accepts_every_record_of_the_file_a_schema_was_inferred_from(
    columns: list[list[str]], delimiter: str
) -> None:
    """Quoted "" is an empty text and quoted "NA" the text NA for the import; unquoted, they
    are missing: inference reads them the same way, so its schema refuses none of them."""
    rows = min(len(column) for column in columns)
    lines = [delimiter.join(f"c{i}" for i in range(len(columns)))]
    lines += [delimiter.join(column[r] for column in columns) for r in range(rows)]
    text = "\n".join(lines) + "\n"
    note(repr(text))
    data = text.encode()
    schema = infer_dataset(io.BytesIO(data)).schema
    note(repr(schema))
    dataset = Dataset.from_dict(msgspec.to_builtins(schema))
    options = BatchOptions(delimiter=delimiter)
    records = 0
    for raw in read_chunks(
        io.BytesIO(data), InputFormat.CSV, gzip=False, dataset=dataset, options=options
    ):
        checked = validate_chunk(raw, dataset, Reading.of(dataset, options))
        assert checked.errors.num_rows == 0, checked.errors.to_pylist()
        records += checked.valid.num_rows
    assert records == len(csv_reference(text, delimiter)[1])


def _assert_tight(column: Any, kinds: list[str], values: list[str]) -> None:
    """A column of one plain kind gets that kind's type, not a string that holds anything."""
    present = [value for value in values if value]
    if not present:
        return
    if only_kinds(kinds, {"date", "missing"}):
        assert column.type == "date"
    if only_kinds(kinds, {"uuid", "missing"}):
        assert column.type == "uuid"
    if only_kinds(kinds, {"amount", "missing"}):
        assert (column.type, column.scale) == ("decimal", 2)
    if only_kinds(kinds, {"code", "missing"}) and any(v.startswith("0") for v in present):
        assert column.type == "string"
    if only_kinds(kinds, {"float", "missing", "marker"}) and column.type != "string":
        assert column.type in ("float", "integer", "decimal")


def _key(value: str, schema: Any, key: str) -> Any:
    kind = next(column.type for column in schema.columns if column.name == key)
    return int(value) if kind == "integer" else value.strip().lower() if kind == "uuid" else value


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(sorted(VALUES)).flatmap(lambda kind: VALUES[kind]),
    st.lists(st.integers(), max_size=2),
)
JSON_RECORDS = st.lists(
    st.dictionaries(st.sampled_from(["id", "Title", "1962", "day"]), JSON_VALUES, min_size=1),
    min_size=1,
    max_size=20,
)


def import_text(value: Any) -> str:
    """The text the import judges a JSON value by: a number as written, true/false, a string."""
    return value if isinstance(value, str) else json.dumps(value)


@settings(max_examples=200, deadline=None)
@given(records=JSON_RECORDS)
def test_json_lines_of_any_kinds_are_inferred_without_failing(
    records: list[dict[str, Any]],
) -> None:
    text = "".join(json.dumps(record) + "\n" for record in records)
    note(text)
    schema = infer_dataset(io.BytesIO(text.encode())).schema
    by_field = {column.from_ or column.name: column for column in schema.columns}
    assert list(by_field) == list(dict.fromkeys(key for record in records for key in record))
    for record in records:
        for field, value in record.items():
            column = by_field[field]
            if isinstance(value, list):
                assert column.type == "json"
            elif value is not None and column.type != "json":
                assert survives(column.type, import_text(value), column.scale), (column, value)


#: One kind of value as each format writes it: CSV text, JSON value, Parquet value and type.
TYPED: dict[str, tuple[st.SearchStrategy[Any], Any, Any, pa.DataType]] = {
    "integer": (st.integers(-(2**63) + 1, 2**63 - 1), str, lambda v: v, pa.int64()),
    "amount": (
        st.integers(-(10**9), 10**9).map(lambda c: decimal.Decimal(c).scaleb(-2)),
        str,
        lambda v: JsonRaw(str(v)),
        pa.decimal128(18, 2),
    ),
    "date": (st.dates(), dt.date.isoformat, dt.date.isoformat, pa.date32()),
    "timestamp": (
        st.datetimes(),
        lambda v: v.isoformat(),
        lambda v: v.isoformat(),
        pa.timestamp("us"),
    ),
    "boolean": (st.booleans(), lambda v: "true" if v else "false", lambda v: v, pa.bool_()),
    "code": (VALUES["code"], str, str, pa.string()),
    "uuid": (st.uuids().map(str), str, str, pa.string()),
}


FORMATS = ("csv", "jsonl", "parquet")


class JsonRaw(str):
    """A number written into JSON as it is (``12.50``, not ``"12.50"``)."""


def dump_json(record: dict[str, Any]) -> str:
    raws = {key: value for key, value in record.items() if isinstance(value, JsonRaw)}
    text = json.dumps({key: f"@{key}@" if key in raws else v for key, v in record.items()})
    for key, raw in raws.items():
        text = text.replace(f'"@{key}@"', raw)
    return text


def write_same_values(root: Path, kinds: list[str], columns: list[list[Any]]) -> None:
    """The columns as CSV, JSON Lines and Parquet, each in its format's own types."""
    fields = [f"f{i}" for i in range(len(kinds))]
    written = [
        (field, TYPED[kind], column)
        for field, kind, column in zip(fields, kinds, columns, strict=True)
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    texts = [[typed[1](value) for value in column] for _, typed, column in written]
    writer.writerows(zip(*texts, strict=True))
    (root / "same.csv").write_text(out.getvalue())
    with (root / "same.jsonl").open("w") as lines:
        for i in range(len(columns[0])):
            lines.write(dump_json({f: typed[2](column[i]) for f, typed, column in written}) + "\n")
    arrays = {field: pa.array(column, typed[3]) for field, typed, column in written}
    pq.write_table(pa.table(arrays), root / "same.parquet")


@settings(max_examples=100, deadline=None)
@given(kinds=st.lists(st.sampled_from(sorted(TYPED)), min_size=1, max_size=4), data=st.data())
def test_csv_json_lines_and_parquet_of_the_same_values_give_the_same_schema(
    kinds: list[str], data: st.DataObject, tmp_path_factory: Any
) -> None:
    rows = data.draw(st.integers(1, 20))
    columns = [data.draw(st.lists(TYPED[k][0], min_size=rows, max_size=rows)) for k in kinds]
    root = tmp_path_factory.mktemp("same")
    write_same_values(root, kinds, columns)
    schemas = [infer_dataset(root / f"same.{ext}", "same").schema for ext in FORMATS]
    note(repr(schemas))
    assert schemas[0] == schemas[1] == schemas[2]
