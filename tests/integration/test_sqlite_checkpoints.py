"""SQLite targets checkpoint their log beside the writer: the log stays bounded, nothing is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_sqlite.dbapi
import pyarrow as pa
import pytest

from batchyard.domain.batches import Operation
from batchyard.domain.outcomes import ChunkOutcome
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.pipeline.chunks import RECORD_NUMBER
from batchyard.targets import Target, open_target, sqlite_checkpoints
from support.waiting import wait_until_sync

NOTES = Dataset(
    name="notes",
    primary_key=("id",),
    columns=(
        Column("id", ColumnType.INTEGER, nullable=False),
        Column("text", ColumnType.STRING),
    ),
)
#: Records per chunk: about 1 MB of text, so a few chunks pass a small log limit.
PER_CHUNK = 2_000
THREAD_NAME = "batchyard-sqlite-checkpoints"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "target.db"


@pytest.fixture
def target(database: Path) -> Iterator[Target]:
    opened = open_target(f"sqlite:///{database}")
    try:
        yield opened
    finally:
        opened.close()


def notes(index: int) -> pa.Table:
    first = index * PER_CHUNK + 1
    ids = list(range(first, first + PER_CHUNK))
    return pa.table(
        {"id": ids, "text": [f"note {i} " + "x" * 500 for i in ids], RECORD_NUMBER: ids},
        schema=valid_schema(NOTES),
    )


def apply_chunks(target: Target, count: int) -> None:
    target.ensure_table(NOTES)
    for index in range(count):
        with target.transaction() as tx:
            outcome = tx.apply_chunk(NOTES, "b1", index, Operation.INSERT, notes(index))
        assert outcome == ChunkOutcome(index, PER_CHUNK, outcome.failures)
        assert outcome.failures.num_rows == 0


def read_rows(database: Path) -> list[tuple[int, str]]:
    """What another connection finds in the file (ADBC: the driver batchyard writes with)."""
    with adbc_driver_sqlite.dbapi.connect(str(database)) as conn, conn.cursor() as cursor:
        cursor.execute('SELECT id, substr(text, 1, 12) FROM "notes" ORDER BY id')
        return [(int(row[0]), str(row[1])) for row in cursor.fetchall()]


def wal_bytes(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_committed_chunks_reach_the_database_file_without_the_writer_checkpointing(
    target: Target, database: Path
) -> None:
    target.ensure_table(NOTES)
    before = database.stat().st_size
    apply_chunks(target, 3)
    # Only the thread copies pages into the file: the writer's connections checkpoint never
    # (the log is far below the limit), and SQLite's automatic checkpoint is off.
    wait_until_sync(
        lambda: True if database.stat().st_size > before + 2 * PER_CHUNK * 500 else None,
        within=30,
        what="the background checkpoint copies the chunks into the database file",
    )
    assert len(read_rows(database)) == 3 * PER_CHUNK


def test_the_log_stays_near_its_limit_whatever_the_batch_size(
    target: Target, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 2 * 2**20
    monkeypatch.setattr(sqlite_checkpoints, "WAL_LIMIT_BYTES", limit)
    stalled = threading.Event()

    def never_due(self: sqlite_checkpoints.WalCheckpoints) -> bool:
        stalled.wait()
        return False

    # The thread never checkpoints: the writers alone bound the log.
    monkeypatch.setattr(sqlite_checkpoints.WalCheckpoints, "_next_due", never_due)
    try:
        apply_chunks(target, 12)  # about 12 MB in all
        # A writer checkpoints before beginning once the log passed the limit, and the log
        # then starts again from its beginning: at most the limit plus a chunk's pages.
        assert 0 < wal_bytes(database) < limit + 3 * 2**20
        last = 12 * PER_CHUNK
        assert read_rows(database)[-1] == (last, f"note {last} xxx"[:12])
    finally:
        stalled.set()


def test_close_stops_the_thread_and_keeps_every_commit(target: Target, database: Path) -> None:
    apply_chunks(target, 2)
    assert any(t.name == THREAD_NAME for t in threading.enumerate())
    target.close()
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())
    rows = read_rows(database)
    assert [row[0] for row in rows] == list(range(1, 2 * PER_CHUNK + 1))
    assert rows[0] == (1, "note 1 xxxxx")
