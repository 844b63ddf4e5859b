"""SQLite targets: one file, one writer per process, WAL so readers never wait for it.

Durability: WAL with synchronous=NORMAL. A committed chunk (its rows and its ledger row) survives
a crash of the process (kill -9); an OS crash or power loss can lose the last commits, always a
chunk's rows together with its ledger row, so the chunk is applied again on resume, never twice.
The file is never left corrupt. Checkpoints run beside the writer (sqlite_checkpoints).

The file holds the datasets' tables and the chunk ledger; the ledger's name is not an
identifier (it has a space), so no dataset can be named like it. The metadata is another file.
"""

from __future__ import annotations

import threading
from pathlib import Path

import adbc_driver_sqlite.dbapi
import pyarrow as pa

from batchyard.domain.errors import InvalidSchema
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.targets import values
from batchyard.targets.dialect import Dialect, quote
from batchyard.targets.session import Session
from batchyard.targets.sqlite_checkpoints import WalCheckpoints

#: How long a writer of another process may hold the file before a statement gives up.
BUSY_TIMEOUT_MS = 60_000
#: Page size of a database file batchyard creates. Bulk appends touch a quarter as many pages
#: as with SQLite's 4 KiB default (fewer page fetches, log frames and their checksums, interior
#: cells): the writer's CPU per million records is about a tenth lower (docs/production.md). A
#: file that exists keeps its own page size (a WAL file's cannot change).
PAGE_SIZE = 16_384

_TYPES = {
    ColumnType.INTEGER: "INTEGER",
    ColumnType.FLOAT: "REAL",
    ColumnType.BOOLEAN: "INTEGER",
}

#: The ledger's table: a name outside the identifiers datasets may have.
LEDGER_NAME = "batchyard ledger"
#: Its name before: an identifier, which a dataset could share.
LEGACY_LEDGER_NAME = "_batchyard_ledger"
#: Names SQLite keeps for its own tables (sqlite_master, sqlite_sequence…).
_RESERVED_PREFIX = "sqlite_"

_locks: dict[Path, threading.Lock] = {}
_checkpoint_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def writer_lock_for(path: Path) -> threading.Lock:
    """The process-wide lock of one database file, keyed by its resolved path."""
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _checkpoint_lock_for(path: Path) -> threading.Lock:
    """The process-wide lock around checkpoints of one database file."""
    with _locks_guard:
        return _checkpoint_locks.setdefault(path, threading.Lock())


class SqliteDialect(Dialect):
    """STRICT tables, so SQLite refuses a wrong type like PostgreSQL would."""

    begin_sql = "BEGIN IMMEDIATE"
    table_options = " STRICT"

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self._lock = writer_lock_for(self.path)
        self._checkpoints = WalCheckpoints(self.path, self.connect, _checkpoint_lock_for(self.path))

    def connect(self) -> Session:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = adbc_driver_sqlite.dbapi.connect(str(self.path), autocommit=True)
        session = Session(connection, "?")
        session.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before the file's first write only
        session.rows("PRAGMA journal_mode=WAL")
        session.rows(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # With WAL, NORMAL survives a process crash (kill -9); only an OS crash can lose the last
        # commits, and then a chunk's rows and its ledger row are lost together.
        session.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run beside the writer instead of inside its COMMIT, and the log file's
        # size is the log's (sqlite_checkpoints).
        session.rows("PRAGMA wal_autocheckpoint=0")
        session.rows("PRAGMA journal_size_limit=0")
        return session

    def dataset_table(self, name: str) -> str:
        return f"main.{quote(name)}"

    @property
    def ledger_table(self) -> str:
        return f"main.{quote(LEDGER_NAME)}"

    def prepare(self, session: Session) -> None:
        if self.table_columns(session, LEGACY_LEDGER_NAME) and not self.table_columns(
            session, LEDGER_NAME
        ):  # a ledger from before the rename: keep its chunks' outcomes
            session.execute(
                f"ALTER TABLE main.{quote(LEGACY_LEDGER_NAME)} RENAME TO {quote(LEDGER_NAME)}"
            )

    def check_dataset_name(self, name: str) -> None:
        if name.startswith(_RESERVED_PREFIX):
            raise InvalidSchema(
                f"dataset names starting with {_RESERVED_PREFIX} are reserved by SQLite,"
                " the target database (a PostgreSQL target accepts them)"
            )

    def column_type(self, column: Column) -> str:
        return _TYPES.get(column.type, "TEXT")

    def convert(self, table: pa.Table, dataset: Dataset) -> pa.Table:
        return values.for_sqlite(table, dataset)

    def table_columns(self, session: Session, table: str) -> list[str] | None:
        rows = session.rows("SELECT name FROM pragma_table_info(?, 'main')", (table,))
        return [str(row[0]) for row in rows] or None

    def delete_sql(self, table: str, stage: str, keys: tuple[str, ...], where: str) -> str:
        columns = ", ".join(quote(k) for k in keys)
        selected = ", ".join(f"s.{quote(k)}" for k in keys)
        return (
            f"DELETE FROM {self.dataset_table(table)} WHERE ({columns}) IN"
            f" (SELECT {selected} FROM {stage} s WHERE {where})"
        )

    def writer_lock(self) -> threading.Lock:
        return self._lock

    def before_write(self, session: Session) -> None:
        self._checkpoints.before_write(session)

    def after_commit(self) -> None:
        self._checkpoints.committed()

    def close(self) -> None:
        self._checkpoints.close()
