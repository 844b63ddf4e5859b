"""Binary COPY rows built column-wise: the bytes PostgreSQL's receive functions read.

Each row is decoded here by the format's own rules (field count, then per field a length or -1
and the value), so the tests say what a field holds without a database; the integration tests
(test_targets.py, test_value_rules.py) check that PostgreSQL stores the same values.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import struct
from typing import Any

import pyarrow as pa
import pytest

from batchyard.targets import pg_copy

#: Room for 38 digits and more (the default context rounds to 28).
WIDE = decimal.Context(prec=80)


def decode_rows(rows: pg_copy.Rows, count: int) -> list[dict[str, bytes | None]]:
    """Split binary COPY rows into each record's fields (raw bytes, None for NULL)."""
    data, position, records = rows.data.to_pybytes(), 0, []
    for _ in range(count):
        (fields,) = struct.unpack_from(">h", data, position)
        position += 2
        assert fields == len(rows.columns)
        record: dict[str, bytes | None] = {}
        for name in rows.columns:
            (size,) = struct.unpack_from(">i", data, position)
            position += 4
            if size == -1:
                record[name] = None
                continue
            record[name] = data[position : position + size]
            position += size
        records.append(record)
    assert position == len(data)
    return records


def numeric_value(field: bytes) -> decimal.Decimal:
    """A numeric field read the way PostgreSQL's numeric_recv reads it."""
    with decimal.localcontext(WIDE):
        return _numeric_value(field)


def _numeric_value(field: bytes) -> decimal.Decimal:
    ndigits, weight, sign, dscale = struct.unpack_from(">hhHh", field)
    digits = struct.unpack_from(f">{ndigits}h", field, 8)
    assert len(field) == 8 + 2 * ndigits and all(0 <= d < 10_000 for d in digits)
    value = sum(
        decimal.Decimal(d) * decimal.Decimal(10_000) ** (weight - i) for i, d in enumerate(digits)
    )
    assert sign in (0, 0x4000)
    return (-value if sign else value).quantize(decimal.Decimal(1).scaleb(-dscale))


def test_fixed_width_columns_come_first_with_big_endian_values() -> None:
    ts = dt.datetime(2000, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    table = pa.table(
        {
            "label": pa.array(["Zoë", ""], pa.string()),
            "id": pa.array([1, -2], pa.int64()),
            "score": pa.array([1.5, -0.0], pa.float64()),
            "paid": pa.array([True, False]),
            "day": pa.array([dt.date(2000, 1, 2), dt.date(1999, 12, 31)], pa.date32()),
            "ts": pa.array([ts, ts], pa.timestamp("us", tz="UTC")),
            "uid": pa.array([bytes(range(16)), b"\xff" * 16], pa.binary(16)),
        }
    )
    rows = pg_copy.encode(table)
    assert rows.columns == ["id", "score", "paid", "day", "ts", "uid", "label"]
    first, second = decode_rows(rows, 2)
    assert first == {
        "id": struct.pack(">q", 1),
        "score": struct.pack(">d", 1.5),
        "paid": b"\x01",
        "day": struct.pack(">i", 1),
        "ts": struct.pack(">q", 1_000_000),
        "uid": bytes(range(16)),
        "label": "Zoë".encode(),
    }
    assert second["id"] == struct.pack(">q", -2)
    assert second["paid"] == b"\x00"
    assert second["day"] == struct.pack(">i", -1)
    assert second["label"] == b""


def test_nulls_are_length_minus_one_in_every_kind_of_column() -> None:
    table = pa.table(
        {
            "id": pa.array([None, 7], pa.int64()),
            "amount": pa.array([decimal.Decimal("1.50"), None], pa.decimal128(5, 2)),
            "label": pa.array([None, "x"], pa.string()),
            "doc": pa.array([b"\x01{}", None], pa.binary()),
            "uid": pa.array([None, b"u" * 16], pa.binary(16)),
            "nothing": pa.nulls(2, pa.null()),
        }
    )
    rows = pg_copy.encode(table)
    first, second = decode_rows(rows, 2)
    assert first["id"] is None and second["id"] == struct.pack(">q", 7)
    assert first["amount"] is not None and numeric_value(first["amount"]) == decimal.Decimal("1.50")
    assert second["amount"] is None
    assert (first["label"], second["label"]) == (None, b"x")
    assert (first["doc"], second["doc"]) == (b"\x01{}", None)
    assert (first["uid"], second["uid"]) == (None, b"u" * 16)
    assert first["nothing"] is None and second["nothing"] is None


@pytest.mark.parametrize(
    ("precision", "scale"),
    [(12, 2), (1, 0), (4, 4), (5, 5), (18, 3), (19, 0), (38, 0), (38, 10), (38, 38)],
)
def test_numeric_fields_hold_each_decimal_exactly(precision: int, scale: int) -> None:
    rng = random.Random(precision * 100 + scale)
    limit = 10**precision - 1
    unscaled = [0, 1, -1, limit, -limit, *(rng.randint(-limit, limit) for _ in range(200))]
    unscaled += [10 ** rng.randint(0, precision - 1) for _ in range(20)]
    values = [decimal.Decimal(n).scaleb(-scale, WIDE) for n in unscaled]
    array = pa.array(values, pa.decimal128(precision, scale))
    fields = pg_copy.numeric_fields(array.slice(1))  # an offset into the buffer too
    decoded = [numeric_value(bytes(row)) for row in fields]
    assert decoded == values[1:]


def test_numeric_fields_of_one_type_have_one_width() -> None:
    array = pa.array(
        [decimal.Decimal("0.01"), decimal.Decimal("9999999999.99")], pa.decimal128(12, 2)
    )
    fields: Any = pg_copy.numeric_fields(array)
    assert fields.shape == (2, 8 + 2 * 4)  # three integer groups and one of the fraction
