"""Deterministic "orders" test data (DESIGN.md's example dataset) with known bad records.

Used by the e2e tests and the benchmarks: ``write_orders_csv(path, rows, bad_every=100)`` writes
``rows`` records where every ``bad_every``-th record is invalid in one of several ways, and
returns exactly which record numbers are bad and with which error code.

Run as a script to make a benchmark file: ``python -m benchmarks.datagen out.csv 5000000``.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ORDERS_SCHEMA = {
    "name": "orders",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "email", "type": "string", "max_length": 200, "pattern": "^[^@]+@[^@]+$"},
        {"name": "amount", "type": "decimal", "precision": 12, "scale": 2, "min": 0},
        {"name": "status", "type": "string", "enum": ["new", "paid"]},
        {"name": "ts", "type": "timestamp"},
        {"name": "user_id", "type": "uuid"},
    ],
}
COLUMNS = [c["name"] for c in ORDERS_SCHEMA["columns"]]

#: (column, bad value, expected error code); None column = a ragged row (a field missing).
BAD_KINDS: list[tuple[str | None, str, str]] = [
    ("id", "12x", "invalid_integer"),
    ("email", "no-at-sign", "pattern_mismatch"),
    ("amount", "-5.00", "below_minimum"),
    ("status", "shipped", "not_in_enum"),
    ("ts", "2024-13-45T99:00:00", "invalid_timestamp"),
    ("user_id", "not-a-uuid", "invalid_uuid"),
    ("amount", "1.234", "invalid_decimal"),
    (None, "", "wrong_field_count"),
]


@dataclass
class Expected:
    rows: int
    #: record number → expected error code, for every bad record.
    bad: dict[int, str] = field(default_factory=dict)

    @property
    def good(self) -> int:
        return self.rows - len(self.bad)


def _block(start: int, count: int, rng: np.random.Generator) -> pa.Table:
    ids = np.arange(start, start + count, dtype=np.int64)
    cents = rng.integers(0, 10_000_000, count)
    amount = [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]
    ts = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 3e7, count).astype("timedelta64[s]")
    uuids = [
        f"{a:08x}-{b:04x}-4{c:03x}-8{d:03x}-{e:012x}"
        for a, b, c, d, e in zip(
            rng.integers(0, 2**32, count).tolist(),
            rng.integers(0, 2**16, count).tolist(),
            rng.integers(0, 2**12, count).tolist(),
            rng.integers(0, 2**12, count).tolist(),
            rng.integers(0, 2**48, count).tolist(),
            strict=True,
        )
    ]
    return pa.table(
        {
            "id": pa.array(ids).cast(pa.string()),
            "email": pa.array([f"user{i}@example.com" for i in ids.tolist()]),
            "amount": pa.array(amount),
            "status": pa.array(np.where(cents % 2 == 0, "new", "paid")),
            "ts": pa.array(np.datetime_as_string(ts, unit="s")).cast(pa.string()),
            "user_id": pa.array(uuids),
        }
    )


def _spoil(
    table: pa.Table, start: int, bad_every: int, expected: Expected
) -> tuple[pa.Table, set[int]]:
    """Put each bad record's bad value in place; return the records to make ragged."""
    columns = {name: table[name].to_pylist() for name in COLUMNS}
    ragged: set[int] = set()
    for offset in range(table.num_rows):
        number = start + offset
        if bad_every and number % bad_every == 0:
            column, value, code = BAD_KINDS[(number // bad_every) % len(BAD_KINDS)]
            expected.bad[number] = code
            if column is None:
                ragged.add(offset)
            else:
                columns[column][offset] = value
    return pa.table({n: pa.array(v, pa.string()) for n, v in columns.items()}), ragged


def write_orders_csv(path: Path, rows: int, *, bad_every: int = 100, seed: int = 7) -> Expected:
    """Write ``rows`` order records (plus a header) to ``path``; record numbers start at 1."""
    rng = np.random.default_rng(seed)
    expected = Expected(rows)
    block_rows = 200_000
    with path.open("wb") as out:
        out.write((",".join(COLUMNS) + "\n").encode())
        for start in range(1, rows + 1, block_rows):
            count = min(block_rows, rows - start + 1)
            table, ragged = _spoil(_block(start, count, rng), start, bad_every, expected)
            buffer = io.BytesIO()
            pacsv.write_csv(
                table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="none")
            )
            data = buffer.getvalue()
            if ragged:
                lines = data.split(b"\n")
                for offset in ragged:
                    lines[offset] = lines[offset].rsplit(b",", 1)[0]
                data = b"\n".join(lines)
            out.write(data)
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("rows", type=int)
    parser.add_argument("--bad-every", type=int, default=100, help="0 for no bad records")
    args = parser.parse_args()
    expected = write_orders_csv(args.path, args.rows, bad_every=args.bad_every)
    print(f"wrote {args.rows} records ({len(expected.bad)} bad) to {args.path}")


if __name__ == "__main__":
    main()
