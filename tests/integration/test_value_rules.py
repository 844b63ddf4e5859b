"""Values are exact: each rule of docs/data-rules.md, the same for CSV, JSON Lines and Parquet,
on SQLite and PostgreSQL, and the same input stored as the same values on both targets."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard.domain.batches import BatchOptions, InputFormat, Operation
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.formats import read_chunks
from batchyard.pipeline.validate import validate_chunk
from batchyard.targets import open_target

TYPES = Dataset(
    name="vals",
    primary_key=("id",),
    columns=(
        Column("id", ColumnType.INTEGER, nullable=False),
        Column("s", ColumnType.STRING),
        Column("n", ColumnType.INTEGER),
        Column("f", ColumnType.FLOAT),
        Column("d", ColumnType.DECIMAL, precision=38, scale=6),
        Column("b", ColumnType.BOOLEAN),
        Column("day", ColumnType.DATE),
        Column("ts", ColumnType.TIMESTAMP),
        Column("u", ColumnType.UUID),
        Column("j", ColumnType.JSON),
    ),
)
NAMES = [c.name for c in TYPES.columns]


def load(
    target_url: str, data: bytes, fmt: InputFormat
) -> tuple[dict[int, tuple[Any, ...]], dict[int, str]]:
    """``data`` read, validated and inserted: (stored rows by id, error code by record number)."""
    chunks = read_chunks(
        io.BytesIO(data), fmt, gzip=False, dataset=TYPES, options=BatchOptions(), chunk_bytes=256
    )
    codes: dict[int, str] = {}
    target = open_target(target_url)
    batch_id = uuid.uuid4().hex
    try:
        target.drop_table(TYPES.name)  # each load starts from an empty table
        target.ensure_table(TYPES)
        for raw in chunks:
            checked = validate_chunk(raw, TYPES)
            for row in checked.errors.to_pylist():
                codes[row["record_number"]] = row["code"]
            with target.transaction() as tx:
                outcome = tx.apply_chunk(
                    TYPES, batch_id, raw.index, Operation.INSERT, checked.valid
                )
            for row in outcome.failures.to_pylist():
                codes[row["record_number"]] = row["code"]
        with target._session() as session:
            rows = session.rows(f'SELECT {", ".join(NAMES)} FROM "vals" ORDER BY "id"')
    finally:
        target.close()
    return {int(row[0]): _canonical(row) for row in rows}, codes


def _canonical(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A stored row as Python values, whichever target it was read from."""
    return tuple(
        _value(column.type, value) for column, value in zip(TYPES.columns, row, strict=True)
    )


def _value(ctype: ColumnType, value: Any) -> Any:
    if value is None:
        return None
    if ctype == ColumnType.DECIMAL:
        return Decimal(str(value))
    if ctype == ColumnType.BOOLEAN:
        return bool(value)
    if ctype == ColumnType.DATE and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if ctype == ColumnType.TIMESTAMP and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if ctype == ColumnType.UUID:
        return uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(str(value))
    if ctype == ColumnType.JSON:
        # jsonb rewrites the text (spacing, key order, 1e400 in full): compare the values.
        return json.loads(value, parse_float=Decimal, parse_int=Decimal)
    if ctype == ColumnType.FLOAT:
        return repr(float(value))  # keeps -0.0 apart from 0.0
    return value


def csv_bytes(*rows: dict[str, str]) -> bytes:
    lines = [",".join(NAMES)] + [",".join(row.get(n, "") for n in NAMES) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def jsonl_bytes(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@pytest.fixture
def loaded(target_url: str) -> Any:
    return lambda data, fmt=InputFormat.CSV: load(target_url, data, fmt)


# (column, CSV field text, JSON Lines value text, code): each refused in both text formats.
REFUSED = [
    ("f", "NaN", '"NaN"', "invalid_float"),
    ("f", "1e-400", "1e-400", "invalid_float"),
    ("f", "1e400", "1e400", "invalid_float"),
    ("n", '"  "', '"  "', "invalid_integer"),
    ("n", '""', '""', "invalid_integer"),
    ("d", '"  "', '" "', "invalid_decimal"),
    ("ts", "9999-12-31T23:59:59-01:00", '"9999-12-31T23:59:59-01:00"', "invalid_timestamp"),
    ("ts", "0000-12-31T23:00:00Z", '"0000-12-31T23:00:00Z"', "invalid_timestamp"),
    ("ts", "1700000000", "1700000000", "invalid_timestamp"),
    ("day", "0000-01-01", '"0000-01-01"', "invalid_date"),
    ("s", '"a\x00b"', '"a\\u0000b"', "invalid_string"),
    ("j", '"{""a"": ""\\u0000""}"', '{"a": "\\u0000"}', "invalid_json"),
]


def test_unstorable_values_are_failed_records_in_csv_and_jsonl(loaded: Any) -> None:
    """Record 2k+1 sends one REFUSED value, record 2k+2 (its neighbour) leaves it empty."""
    csv_rows: list[dict[str, str]] = []
    json_lines: list[str] = []
    for at, (column, csv_text, json_text, _) in enumerate(REFUSED):
        bad, ok = str(2 * at + 1), str(2 * at + 2)
        csv_rows += [{"id": bad, column: csv_text}, {"id": ok, column: ""}]
        json_lines += [f'{{"id": {bad}, "{column}": {json_text}}}', f'{{"id": {ok}}}']
    expected = {2 * at + 1: code for at, (*_, code) in enumerate(REFUSED)}
    for data, fmt in (
        (csv_bytes(*csv_rows), InputFormat.CSV),
        (jsonl_bytes(*json_lines), InputFormat.JSONL),
    ):
        rows, codes = loaded(data, fmt)
        assert codes == expected, fmt
        assert list(rows) == [2 * at + 2 for at in range(len(REFUSED))]


def test_parquet_values_follow_the_same_rules(loaded: Any) -> None:
    us = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "id": pa.array([1, 2, 3, 4, 5, 6, 7], pa.int64()),
            "f": pa.array([float("nan"), -0.0, None, None, None, None, None]),
            "ts": pa.array([None, None, 2**62, None, None, None, None], us),
            "n": pa.array([None, None, None, 1.0, None, None, None], pa.float64()),
            "s": pa.array([None, None, None, None, "", None, None]),
            "day": pa.array([None, None, None, None, None, None, dt.date(2024, 1, 2)]),
        }
    ).append_column("j", pa.array([None] * 5 + [[1, 2], None], pa.list_(pa.int64())))
    rows, codes = loaded(parquet_bytes(table), InputFormat.PARQUET)
    assert codes == {1: "invalid_float", 3: "invalid_timestamp", 4: "invalid_integer"}
    assert rows[2][3] == "0.0"  # -0.0 is stored as 0.0, as SQLite stores it
    assert rows[5][1] == ""
    assert rows[6][9] == [1, 2]
    assert rows[7][6] == dt.date(2024, 1, 2)


@pytest.mark.parametrize(
    ("values", "code"),
    [
        (pa.array([1_700_000_000], pa.int64()), "invalid_timestamp"),
        (pa.array([19_000], pa.int32()), "invalid_timestamp"),
        (pa.array([1.5], pa.float64()), "invalid_timestamp"),
    ],
)
def test_parquet_numbers_are_not_read_as_epoch_timestamps(
    loaded: Any, values: pa.Array, code: str
) -> None:
    table = pa.table({"id": pa.array([1], pa.int64()), "ts": values})
    rows, codes = loaded(parquet_bytes(table), InputFormat.PARQUET)
    assert (rows, codes) == ({}, {1: code})


def test_parquet_struct_in_string_and_bool_in_integer_are_refused(loaded: Any) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "s": pa.array([{"a": 1}, None], pa.struct([("a", pa.int64())])),
            "n": pa.array([None, True], pa.bool_()),
        }
    )
    rows, codes = loaded(parquet_bytes(table), InputFormat.PARQUET)
    assert (rows, codes) == ({}, {1: "invalid_string", 2: "invalid_integer"})


def test_jsonl_objects_repeated_keys_and_exponents(loaded: Any) -> None:
    data = jsonl_bytes(
        '{"id": 1, "s": {"a": 1}}',
        '{"id": 2, "s": [1]}',
        '{"id": 3, "n": 1, "n": 2}',
        '{"id": 4, "j": {"a": 1, "a": 2}}',
        '{"id": 5, "d": 1e3, "s": 1e400, "f": 1.50}',
        '{"id": 6, "d": "1.5E2"}',
    )
    rows, codes = loaded(data, InputFormat.JSONL)
    assert codes == {
        1: "invalid_string",
        2: "invalid_string",
        3: "malformed_record",
        4: "malformed_record",
    }
    assert rows[5][1:5] == ("1e400", None, "1.5", Decimal("1000"))
    assert rows[6][4] == Decimal("150")


EDGE_CSV = csv_bytes(
    {"id": "1", "s": '"Zoë ☃ 𝄞"', "n": "9223372036854775807", "f": "5e-324", "d": "1e3"},
    {"id": "2", "s": '""', "n": "-9223372036854775808", "f": "-0", "d": "-0.000001"},
    {"id": "3", "f": "1.7976931348623157e308", "d": "99999999999999999999999999999999.999999"},
    {"id": "4", "f": "-inf", "b": "YES", "day": "0001-01-01", "ts": "0001-01-01T00:00:00Z"},
    {
        "id": "5",
        "f": "Infinity",
        "b": "f",
        "day": "9999-12-31",
        "ts": "9999-12-31T23:59:59.999999Z",
    },
    {"id": "6", "ts": "2024-02-29 12:00+05:30", "u": "{5F0C6D7E8A1B4C2D9E3F0A1B2C3D4E5F}"},
    {
        "id": "7",
        "ts": "2024-01-01T00:00:00-01",
        "j": '"{""b"": [1, 2.50, {""c"": null}], ""a"": 1e400}"',
    },
    {"id": "8", "s": '" padded "', "n": " 42 ", "f": " 1.5 ", "j": '"""text"""'},
    {"id": "9", "f": "NaN", "ts": "9999-12-31T23:59:59-01:00", "n": "  "},
    {"id": "10", "s": '"a,""b""\nc"', "f": "1e-400", "day": "10000-01-01"},
)


def test_the_same_input_stores_the_same_values_on_sqlite_and_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    on_sqlite = load(f"sqlite:///{tmp_path / 'target.db'}", EDGE_CSV, InputFormat.CSV)
    on_postgres = load(pg_url, EDGE_CSV, InputFormat.CSV)
    assert on_sqlite == on_postgres
    rows, codes = on_sqlite
    assert codes == {9: "invalid_integer", 10: "invalid_float"}
    assert sorted(rows) == list(range(1, 9))
    assert rows[2][3] == "0.0" and rows[4][3] == "-inf" and rows[3][3] == "1.7976931348623157e+308"
    assert rows[5][7] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def test_jsonl_json_column_takes_the_json_value_on_the_line(loaded: Any) -> None:
    data = jsonl_bytes(
        '{"id": 1, "j": "abc"}',
        '{"id": 2, "j": "[1, 2]"}',
        '{"id": 3, "j": ""}',
        '{"id": 4, "j": 1.50}',
        '{"id": 5, "j": {"a": [1e400, 2.50]}, "f": 2.5}',
        '{"id": 6, "j": 7, "s": "x"}',
    )
    rows, codes = loaded(data, InputFormat.JSONL)
    assert codes == {}
    stored = {key: row[9] for key, row in rows.items()}
    assert stored == {
        1: "abc",
        2: "[1, 2]",
        3: "",
        4: Decimal("1.50"),
        5: {"a": [Decimal("1e400"), Decimal("2.50")]},
        6: Decimal(7),
    }
    assert rows[5][3] == "2.5"


def test_jsonl_invalid_utf8_inside_a_string_is_one_failed_record(loaded: Any) -> None:
    rows, codes = loaded(b'{"id": 1, "s": "\xff"}\n{"id": 2}\n', InputFormat.JSONL)
    assert (list(rows), codes) == ([2], {1: "invalid_encoding"})


def _edge_parquet() -> bytes:
    n = 4
    return parquet_bytes(
        pa.table(
            {
                "id": pa.array([1, 2, 3, 4], pa.int8()),
                "s": pa.array(["Zoë", "", None, "x"], pa.large_string()).dictionary_encode(),
                "n": pa.array([2**63 - 1, 0, None, 2**64 - 1], pa.uint64()),
                "f": pa.array([-0.0, float("inf"), 5e-324, 0.1], pa.float32()).cast(pa.float64()),
                "d": pa.array(
                    [Decimal("12.5"), None, Decimal("-0.000001"), None], pa.decimal128(20, 6)
                ),
                "b": pa.array([True, False, None, True]),
                "day": pa.array([dt.date(1, 1, 1), dt.date(9999, 12, 31), None, None], pa.date32()),
                "ts": pa.array(
                    [1_700_000_000_123_456_000, 1_700_000_000_123_456_789, 0, None],
                    pa.timestamp("ns", tz="Europe/Paris"),
                ),
                "u": pa.array([str(uuid.UUID(int=7)), None, None, None]),
                "j": pa.array(
                    [{"a": 1.5}, None, {"a": None}, None], pa.struct([("a", pa.float64())])
                ),
            }
        ).slice(0, n)
    )


def test_parquet_types_store_the_same_values_on_sqlite_and_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    data = _edge_parquet()
    on_sqlite = load(f"sqlite:///{tmp_path / 'target.db'}", data, InputFormat.PARQUET)
    on_postgres = load(pg_url, data, InputFormat.PARQUET)
    assert on_sqlite == on_postgres
    rows, codes = on_sqlite
    # 2^64 - 1 is not a 64-bit integer; nanoseconds are refused, never truncated
    assert codes == {2: "invalid_timestamp", 4: "invalid_integer"}
    assert rows[1][7] == dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)
    assert rows[1][9] == {"a": Decimal("1.5")} and rows[3][9] == {"a": None}
    assert rows[1][:4] == (1, "Zoë", 2**63 - 1, "0.0")


def test_jsonl_numbers_into_a_string_column_keep_their_text(loaded: Any) -> None:
    data = jsonl_bytes('{"id": 1, "s": -0}', '{"id": 2, "s": 1.50}', '{"id": 3, "s": 1e3, "n": -0}')
    rows, codes = loaded(data, InputFormat.JSONL)
    assert codes == {}
    assert [rows[k][1] for k in (1, 2, 3)] == ["-0", "1.50", "1e3"]
    assert rows[3][2] == 0


def test_parquet_bytes_uuid_and_nanoseconds(loaded: Any) -> None:
    one = uuid.UUID(int=1)
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "u": pa.array([one.bytes, b"\xff" * 16, None], pa.binary(16)),
            "s": pa.array([None, None, b"\xff"], pa.binary()),
            "ts": pa.array([1001, None, None], pa.timestamp("ns")),
        }
    )
    rows, codes = loaded(parquet_bytes(table), InputFormat.PARQUET)
    assert codes == {1: "invalid_timestamp", 3: "invalid_string"}
    assert rows[2][8] == uuid.UUID(bytes=b"\xff" * 16)
