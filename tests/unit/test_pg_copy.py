"""What batchyard chooses before pgpq encodes a chunk as binary COPY data.

pgpq's own field encodings (numeric, timestamps, text) are checked where they matter, against
PostgreSQL (tests/integration/test_pg_copy_values.py); here: which output each column of the
form values.for_postgres gives is sent as, in which order, and the error for what cannot go.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid
from typing import Any

import pyarrow as pa
import pytest

from batchyard.domain.errors import PipelineError
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.targets import pg_copy, values

#: Binary COPY's signature, flags and header extension length; the trailer's field count -1.
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"


def decode(table: pa.Table) -> list[list[bytes | None]]:
    """``table`` encoded, then split into each record's fields (raw bytes, None for NULL)."""
    data = b"".join(pg_copy.encode(table))
    assert data.startswith(HEADER) and data.endswith(TRAILER)
    position, records = len(HEADER), []
    for _ in range(table.num_rows):
        (count,) = struct.unpack_from(">h", data, position)
        assert count == table.num_columns
        position += 2
        fields: list[bytes | None] = []
        for _ in range(count):
            (size,) = struct.unpack_from(">i", data, position)
            position += 4
            fields.append(None if size == -1 else data[position : position + size])
            position += max(size, 0)
        records.append(fields)
    assert position == len(data) - len(TRAILER)
    return records


DATASET = Dataset(
    name="things",
    primary_key=("id",),
    columns=(
        Column("doc", ColumnType.JSON),
        Column("id", ColumnType.INTEGER, nullable=False),
        Column("uid", ColumnType.UUID),
        Column("label", ColumnType.STRING),
    ),
)


def test_json_goes_as_jsonb_and_uuid_as_its_16_bytes_in_the_tables_column_order() -> None:
    first = uuid.uuid4()
    table = pa.table(
        {
            "doc": pa.array(['{"a": "Zoë"}', None], pa.string()),
            "id": pa.array([1, 2], pa.int64()),
            "uid": pa.array([str(first), None], pa.string()),
            "label": pa.array(["", None], pa.string()),
        }
    )
    converted = values.for_postgres(table, DATASET)
    assert converted.column_names == ["doc", "id", "uid", "label"]
    assert decode(converted) == [
        [b'\x01{"a": "Zo\xc3\xab"}', struct.pack(">q", 1), first.bytes, b""],
        [None, struct.pack(">q", 2), None, None],
    ]


def test_json_text_is_handed_over_without_a_copy() -> None:
    text = pa.chunked_array([pa.array(["{}", "[1]"])])
    plain, builders = pg_copy.prepare(values.for_postgres(pa.table({"doc": text}), DATASET))
    assert plain.schema.field("doc").type == pa.string()
    assert set(builders) == {"doc"}
    assert plain.column("doc").chunk(0).buffers()[2].address == text.chunk(0).buffers()[2].address


def test_a_column_without_a_type_is_all_nulls() -> None:
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "nothing": pa.nulls(2, pa.null())})
    assert [record[1] for record in decode(table)] == [None, None]


def test_a_table_in_several_chunks_is_one_copy_of_every_record() -> None:
    amounts = [decimal.Decimal("1.50"), None, decimal.Decimal("-0.01")]
    table = pa.concat_tables(
        [
            pa.table({"amount": pa.array(amounts[:1], pa.decimal128(12, 2))}),
            pa.table({"amount": pa.array(amounts[1:], pa.decimal128(12, 2))}),
        ]
    )
    records = decode(table)
    assert len(records) == 3 and records[1] == [None]


@pytest.mark.parametrize(
    "column",
    [
        pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], pa.timestamp("ns", tz="UTC")),
        pa.array(["a"]).dictionary_encode(),
        pa.array([decimal.Decimal("1.50")], pa.decimal256(40, 2)),
    ],
)
def test_a_type_pgpq_cannot_encode_is_a_clear_error_naming_the_column(
    column: pa.Array[Any],
) -> None:
    with pytest.raises(PipelineError, match=r"'when'.*cannot be sent to PostgreSQL"):
        list(pg_copy.encode(pa.table({"when": column})))
