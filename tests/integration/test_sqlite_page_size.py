"""SQLite targets: a new file gets large pages, a file that exists keeps its own and its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa

from batchyard.domain.batches import Operation
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.pipeline.chunks import RECORD_NUMBER
from batchyard.targets import open_target
from batchyard.targets.sqlite import PAGE_SIZE

ITEMS = Dataset(
    name="items",
    primary_key=("id",),
    columns=(Column("id", ColumnType.INTEGER, nullable=False), Column("name", ColumnType.STRING)),
)


def items(first: int, count: int) -> pa.Table:
    ids = list(range(first, first + count))
    return pa.table(
        {"id": ids, "name": [f"item {i}" for i in ids], RECORD_NUMBER: ids},
        schema=valid_schema(ITEMS),
    )


def insert(database: Path, index: int, records: pa.Table) -> None:
    target = open_target(f"sqlite:///{database}")
    try:
        target.ensure_table(ITEMS)
        with target.transaction() as tx:
            outcome = tx.apply_chunk(ITEMS, "b1", index, Operation.INSERT, records)
        assert outcome.failures.num_rows == 0
    finally:
        target.close()


def page_size_and_ids(database: Path) -> tuple[int, list[int]]:
    with sqlite3.connect(database) as conn:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        ids = [int(row[0]) for row in conn.execute('SELECT id FROM "items" ORDER BY id')]
    return size, ids


def test_a_new_target_file_has_the_large_pages(tmp_path: Path) -> None:
    database = tmp_path / "target.db"
    insert(database, 0, items(1, 500))
    assert page_size_and_ids(database) == (PAGE_SIZE, list(range(1, 501)))


def test_a_file_made_with_small_pages_keeps_them_and_its_rows(tmp_path: Path) -> None:
    database = tmp_path / "target.db"
    with sqlite3.connect(database) as conn:  # as a target made before the page size was set
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            'CREATE TABLE "items" ("id" INTEGER NOT NULL, "name" TEXT, PRIMARY KEY ("id")) STRICT'
        )
        conn.executemany('INSERT INTO "items" VALUES (?, ?)', [(0, "older")])
    conn.close()
    insert(database, 0, items(1, 500))
    insert(database, 1, items(501, 500))
    assert page_size_and_ids(database) == (4096, list(range(0, 1001)))
