"""Values at the edges of their types, applied by binary COPY: PostgreSQL stores each exactly.

The rows pg_copy builds are read by PostgreSQL's receive functions; what it stores is read back
as PostgreSQL prints it and compared with the value validation handed over.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random

import psycopg
import pyarrow as pa

from batchyard.domain.batches import Operation
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.pipeline.chunks import RECORD_NUMBER
from batchyard.targets import open_target

#: (precision, scale) of the decimal columns: widths of one to ten base-10000 digits.
DECIMALS = ((12, 2), (1, 0), (4, 4), (5, 5), (18, 3), (19, 0), (38, 0), (38, 10), (38, 38))
EDGES = Dataset(
    name="edges",
    primary_key=("id",),
    columns=(
        Column("id", ColumnType.INTEGER, nullable=False),
        *(
            Column(f"d_{precision}_{scale}", ColumnType.DECIMAL, precision=precision, scale=scale)
            for precision, scale in DECIMALS
        ),
        Column("ts", ColumnType.TIMESTAMP),
        Column("day", ColumnType.DATE),
        Column("label", ColumnType.STRING),
    ),
)
WIDE = decimal.Context(prec=80)


def decimal_values(precision: int, scale: int, count: int) -> list[decimal.Decimal | None]:
    rng = random.Random(precision * 100 + scale)
    limit = 10**precision - 1
    unscaled = [0, limit, -limit, 1, -1, *(rng.randint(-limit, limit) for _ in range(count - 5))]
    values: list[decimal.Decimal | None] = [
        decimal.Decimal(n).scaleb(-scale, WIDE) for n in unscaled
    ]
    return [*values, None]


def test_edge_values_are_stored_exactly(pg_url: str) -> None:
    count = 300
    first, last = (
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    )
    columns: dict[str, list[object]] = {"id": list(range(count))}
    for precision, scale in DECIMALS:
        columns[f"d_{precision}_{scale}"] = decimal_values(precision, scale, count - 1)
    columns["ts"] = [first, last, None, *([dt.datetime(2000, 1, 1, tzinfo=dt.UTC)] * (count - 3))]
    columns["day"] = [
        dt.date(1, 1, 1),
        dt.date(9999, 12, 31),
        None,
        *([dt.date(1999, 12, 31)] * (count - 3)),
    ]
    columns["label"] = ["", "Zoë 😀", None, *(f"l{i}" for i in range(count - 3))]
    columns[RECORD_NUMBER] = list(range(1, count + 1))
    table = pa.Table.from_pydict(columns, schema=valid_schema(EDGES))
    target = open_target(pg_url)
    try:
        target.ensure_table(EDGES)
        with target.transaction() as tx:
            outcome = tx.apply_chunk(EDGES, "batch", 0, Operation.INSERT, table)
    finally:
        target.close()
    assert outcome.succeeded == count
    names = [c.name for c in EDGES.columns]
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        stored = conn.execute(
            f"SELECT {', '.join(f'{n}::text' for n in names)} FROM edges ORDER BY edges.id"
        ).fetchall()
    for name in names:
        sent = columns[name]
        got = [row[names.index(name)] for row in stored]
        if name.startswith("d_"):
            assert [None if g is None else decimal.Decimal(g) for g in got] == sent, name
    assert [row[names.index("ts")] for row in stored][:3] == [
        "0001-01-01 00:00:00+00",
        "9999-12-31 23:59:59.999999+00",
        None,
    ]
    assert [row[names.index("day")] for row in stored][:4] == [
        "0001-01-01",
        "9999-12-31",
        None,
        "1999-12-31",
    ]
    assert [row[names.index("label")] for row in stored][:3] == ["", "Zoë 😀", None]
    # numeric's text keeps the column's scale: what psql and every reader shows
    assert stored[0][names.index("d_12_2")] == "0.00"
