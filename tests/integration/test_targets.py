"""Target databases on SQLite and PostgreSQL: types, exactly-once ledger, the three operations."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from batchyard.domain.batches import Operation
from batchyard.domain.errors import InputRejected, InvalidRequest, InvalidSchema
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER
from batchyard.targets import Target, open_target
from batchyard.targets.target import TargetTransaction

ALL_TYPES = Dataset(
    name="everything",
    primary_key=("id",),
    columns=(
        Column("id", ColumnType.INTEGER, nullable=False),
        Column("name", ColumnType.STRING, max_length=20),
        Column("score", ColumnType.FLOAT),
        Column("amount", ColumnType.DECIMAL, precision=12, scale=2),
        Column("paid", ColumnType.BOOLEAN),
        Column("day", ColumnType.DATE),
        Column("ts", ColumnType.TIMESTAMP),
        Column("user_id", ColumnType.UUID),
        Column("doc", ColumnType.JSON),
    ),
)

ITEMS = Dataset(
    name="items",
    primary_key=("id",),
    columns=(
        Column("id", ColumnType.INTEGER, nullable=False),
        Column("label", ColumnType.STRING),
    ),
)

PAIRS = Dataset(
    name="pairs",
    primary_key=("a", "b"),
    columns=(
        Column("a", ColumnType.STRING, nullable=False),
        Column("b", ColumnType.INTEGER, nullable=False),
        Column("label", ColumnType.STRING),
    ),
)

UTC = dt.UTC
UID = uuid.UUID("5f0c6d7e-8a1b-4c2d-9e3f-0a1b2c3d4e5f")


@pytest.fixture
def target(target_url: str) -> Iterator[Target]:
    opened = open_target(target_url)
    try:
        yield opened
    finally:
        opened.close()


def chunk(dataset: Dataset, rows: list[dict[str, Any]], first: int = 1) -> pa.Table:
    """A valid table for ``dataset``: the rows, numbered from ``first``."""
    numbered = [{**row, RECORD_NUMBER: first + i} for i, row in enumerate(rows)]
    schema = valid_schema(dataset)
    filled = [{name: row.get(name) for name in schema.names} for row in numbered]
    return pa.Table.from_pylist(filled, schema=schema)


def items(*ids: int, label: str = "x", first: int = 1) -> pa.Table:
    return chunk(ITEMS, [{"id": i, "label": f"{label}{i}"} for i in ids], first)


def apply(
    target: Target,
    dataset: Dataset,
    table: pa.Table,
    *,
    index: int = 0,
    op: Operation = Operation.INSERT,
) -> Any:
    with target.transaction() as tx:
        return tx.apply_chunk(dataset, "batch-1", index, op, table)


def read(target_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows read through the target's own driver, outside the Target API."""
    target = open_target(target_url)
    try:
        with target._session() as session:
            return session.rows(sql)
    finally:
        target.close()


def crash_after(target: Target, chunks: list[pa.Table]) -> None:
    """Apply ``chunks`` in one transaction, then fail before it commits."""
    with target.transaction() as tx:
        for index, table in enumerate(chunks):
            tx.apply_chunk(ITEMS, "batch-1", index, Operation.INSERT, table)
        raise RuntimeError("crash")


def failed(outcome: Any) -> list[tuple[int, str]]:
    numbers = outcome.failures["record_number"].to_pylist()
    return list(zip(numbers, outcome.failures["code"].to_pylist(), strict=True))


def test_insert_round_trip_every_type(target: Target, target_url: str, backend: str) -> None:
    target.ensure_table(ALL_TYPES)
    ts = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    rows = [
        {
            "id": 1,
            "name": "Zoë",
            "score": 1.25,
            "amount": decimal.Decimal("1234567890.05"),
            "paid": True,
            "day": dt.date(2024, 2, 29),
            "ts": ts,
            "user_id": str(UID),
            "doc": '{"a": [1, 2]}',
        },
        {"id": 2},
    ]
    outcome = apply(target, ALL_TYPES, chunk(ALL_TYPES, rows))
    assert (outcome.index, outcome.succeeded, outcome.failures.num_rows) == (0, 2, 0)
    got = read(target_url, 'SELECT * FROM "everything" ORDER BY "id"')
    if backend == "postgresql":
        expected_first = (
            1,
            "Zoë",
            1.25,
            "1234567890.05",
            True,
            dt.date(2024, 2, 29),
            ts,
            UID,
            '{"a": [1, 2]}',
        )
    else:
        expected_first = (
            1,
            "Zoë",
            1.25,
            "1234567890.05",
            1,
            "2024-02-29",
            "2024-01-02T03:04:05.678901Z",
            str(UID),
            '{"a": [1, 2]}',
        )
    assert got[0] == expected_first
    assert got[1] == (2, *([None] * 8))
    assert target.row_count("everything") == 2


def test_replaying_a_committed_chunk_changes_nothing(target: Target, target_url: str) -> None:
    target.ensure_table(ITEMS)
    apply(target, ITEMS, items(1))
    first = apply(target, ITEMS, items(2, 2, 3, first=2), index=1)
    again = apply(target, ITEMS, items(7, 8, 9, first=2), index=1)
    assert again.succeeded == first.succeeded == 2
    assert again.failures.equals(first.failures)
    assert again.failures.schema == ERRORS_SCHEMA
    assert read(target_url, 'SELECT "id" FROM "items" ORDER BY "id"') == [(1,), (2,), (3,)]
    stored = target.committed_chunks("batch-1")
    assert sorted(stored) == [0, 1]
    assert stored[1].succeeded == 2
    assert stored[1].failures.equals(first.failures)
    assert stored[0].failures.num_rows == 0


def test_crash_before_commit_leaves_no_rows_and_no_ledger(target: Target) -> None:
    target.ensure_table(ITEMS)
    with pytest.raises(RuntimeError, match="crash"):
        crash_after(target, [items(1, 2, 3)])
    assert target.row_count("items") == 0
    assert target.committed_chunks("batch-1") == {}
    # The chunk is not marked done, so a retry applies it.
    assert apply(target, ITEMS, items(1, 2, 3)).succeeded == 3


def test_duplicate_keys_fail_exactly_the_repeated_records(target: Target, target_url: str) -> None:
    target.ensure_table(ITEMS)
    apply(target, ITEMS, items(1, 2, label="old"))
    # records 1..6: ids 3, 1 (exists), 4, 3 (repeat), 5, 2 (exists)
    outcome = apply(target, ITEMS, items(3, 1, 4, 3, 5, 2, label="new"), index=1)
    assert outcome.succeeded == 3
    assert failed(outcome) == [(2, "duplicate_key"), (4, "duplicate_key"), (6, "duplicate_key")]
    messages = outcome.failures["message"].to_pylist()
    assert messages[0] == "primary key (id)=(1) already exists"
    assert messages[1].startswith("primary key (id)=(3) already exists")
    assert outcome.failures["key"].to_pylist() == ["1", "3", "2"]
    rows = read(target_url, 'SELECT "id", "label" FROM "items" ORDER BY "id"')
    assert rows == [(1, "old1"), (2, "old2"), (3, "new3"), (4, "new4"), (5, "new5")]
    assert target.row_count("items") == 5


def test_composite_key_duplicates(target: Target) -> None:
    target.ensure_table(PAIRS)
    rows = [{"a": "x", "b": 1}, {"a": "x", "b": 2}, {"a": "x", "b": 1}, {"a": "y", "b": 1}]
    outcome = apply(target, PAIRS, chunk(PAIRS, rows))
    assert failed(outcome) == [(3, "duplicate_key")]
    assert outcome.failures["key"].to_pylist() == ["x,1"]
    assert outcome.failures["message"][0].as_py().startswith("primary key (a, b)=(x,1)")


def test_refusal_without_a_key_reason_pins_the_record(target: Target, target_url: str) -> None:
    with target._write() as session:
        session.execute(
            'CREATE TABLE "items" ("id" BIGINT NOT NULL PRIMARY KEY,'
            ' "label" TEXT CHECK (length("label") < 5))'
        )
    target.ensure_table(ITEMS)
    table = chunk(ITEMS, [{"id": 1, "label": "ok"}, {"id": 2, "label": "too long"}, {"id": 1}])
    outcome = apply(target, ITEMS, table)
    assert failed(outcome) == [(3, "duplicate_key"), (2, "rejected_by_target")]
    assert "refused by the target database" in outcome.failures["message"][1].as_py()
    assert read(target_url, 'SELECT "id" FROM "items"') == [(1,)]


def test_dataset_without_primary_key_accepts_repeats(target: Target) -> None:
    logs = Dataset("logs", (Column("line", ColumnType.STRING),))
    target.ensure_table(logs)
    outcome = apply(target, logs, chunk(logs, [{"line": "a"}, {"line": "a"}]))
    assert (outcome.succeeded, outcome.failures.num_rows) == (2, 0)
    with pytest.raises(InvalidRequest, match="primary key"):
        apply(target, logs, chunk(logs, [{"line": "a"}]), index=1, op=Operation.UPSERT)


def test_atomic_chunks_commit_together_or_not_at_all(target: Target) -> None:
    target.ensure_table(ITEMS)
    with pytest.raises(RuntimeError, match="crash"):
        crash_after(target, [items(1, 2), items(3, first=3)])
    assert target.row_count("items") == 0
    assert target.committed_chunks("batch-1") == {}
    with target.transaction() as tx:
        tx.apply_chunk(ITEMS, "batch-1", 0, Operation.INSERT, items(1, 2))
        tx.apply_chunk(ITEMS, "batch-1", 1, Operation.INSERT, items(3, first=3))
    assert target.row_count("items") == 3
    assert sorted(target.committed_chunks("batch-1")) == [0, 1]


def test_upsert_updates_inserts_and_last_repeat_wins(target: Target, target_url: str) -> None:
    target.ensure_table(ITEMS)
    apply(target, ITEMS, items(1, 2, label="old"))
    rows = [{"id": 2, "label": "first"}, {"id": 3, "label": "new"}, {"id": 2, "label": "last"}]
    outcome = apply(target, ITEMS, chunk(ITEMS, rows), index=1, op=Operation.UPSERT)
    assert (outcome.succeeded, outcome.failures.num_rows) == (3, 0)
    got = read(target_url, 'SELECT "id", "label" FROM "items" ORDER BY "id"')
    assert got == [(1, "old1"), (2, "last"), (3, "new")]


def test_upsert_every_type(target: Target, target_url: str) -> None:
    target.ensure_table(ALL_TYPES)
    row = {"id": 1, "user_id": str(UID), "doc": "[]", "ts": dt.datetime(2024, 1, 1, tzinfo=UTC)}
    apply(target, ALL_TYPES, chunk(ALL_TYPES, [row]), op=Operation.UPSERT)
    changed = {**row, "doc": '{"b": null}', "amount": decimal.Decimal("0.10")}
    outcome = apply(target, ALL_TYPES, chunk(ALL_TYPES, [changed]), index=1, op=Operation.UPSERT)
    assert outcome.succeeded == 1
    doc, amount = read(target_url, 'SELECT "doc", "amount" FROM "everything"')[0]
    assert (json.loads(doc), str(amount)) == ({"b": None}, "0.10")


def test_delete_existing_and_missing_keys(target: Target, target_url: str) -> None:
    target.ensure_table(ITEMS)
    apply(target, ITEMS, items(1, 2, 3))
    # Only the key matters for delete: the other columns may be null.
    table = chunk(ITEMS, [{"id": 2}, {"id": 9}, {"id": 3}, {"id": 2}])
    outcome = apply(target, ITEMS, table, index=1, op=Operation.DELETE)
    assert outcome.succeeded == 2
    assert failed(outcome) == [(2, "key_not_found"), (4, "key_not_found")]
    assert outcome.failures["message"][0].as_py() == "primary key (id)=(9) not found"
    assert read(target_url, 'SELECT "id" FROM "items"') == [(1,)]


def test_delete_by_uuid_key(target: Target) -> None:
    users = Dataset(
        "users",
        (Column("id", ColumnType.UUID, nullable=False), Column("born", ColumnType.TIMESTAMP)),
        primary_key=("id",),
    )
    target.ensure_table(users)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    apply(target, users, chunk(users, [{"id": i} for i in ids]))
    outcome = apply(
        target,
        users,
        chunk(users, [{"id": ids[1]}, {"id": str(UID)}]),
        index=1,
        op=Operation.DELETE,
    )
    assert failed(outcome) == [(2, "key_not_found")]
    assert outcome.failures["key"].to_pylist() == [str(UID)]
    assert target.row_count("users") == 2


def test_row_count_and_forget_batch(target: Target) -> None:
    assert target.row_count("items") == 0
    assert target.committed_chunks("batch-1") == {}
    target.forget_batch("batch-1")
    target.ensure_table(ITEMS)
    apply(target, ITEMS, items(1, 2))
    with target.transaction() as tx:
        tx.apply_chunk(ITEMS, "batch-2", 0, Operation.INSERT, items(3))
    target.forget_batch("batch-1")
    assert target.committed_chunks("batch-1") == {}
    assert sorted(target.committed_chunks("batch-2")) == [0]
    assert target.row_count("items") == 3


def test_ensure_table_is_idempotent_and_checks_columns(target: Target) -> None:
    target.ensure_table(ITEMS)
    target.ensure_table(ITEMS)
    other = Dataset("items", (Column("id", ColumnType.INTEGER), Column("price", ColumnType.FLOAT)))
    with pytest.raises(InputRejected, match=r"missing \['price'\], not declared \['label'\]"):
        target.ensure_table(other)


@pytest.mark.parametrize("name", ['items"; DROP TABLE x; --', "Items", "a b", "1st", ""])
def test_hostile_identifiers_are_rejected(target: Target, name: str) -> None:
    with pytest.raises(InvalidSchema):
        target.row_count(name)
    with pytest.raises(InvalidSchema):
        Dataset(name, (Column("id", ColumnType.INTEGER),))
    with pytest.raises(InvalidSchema):
        Column(name, ColumnType.INTEGER)


def test_open_target_rejects_other_schemes() -> None:
    for url in ("mysql://db/x", "sqlite:///:memory:", "file:///tmp/x.db"):
        with pytest.raises(InvalidRequest):
            open_target(url)


def test_transaction_type(target: Target) -> None:
    target.ensure_table(ITEMS)
    with target.transaction() as tx:
        assert isinstance(tx, TargetTransaction)
