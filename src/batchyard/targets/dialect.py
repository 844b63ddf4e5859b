"""What differs between target databases, behind one small interface.

Every statement names the dataset's table with its schema (``dataset_table``): on PostgreSQL the
datasets' schema, on SQLite ``main``. An unqualified name would be looked up in a search path
that starts with the session's temporary tables (and on PostgreSQL, the system catalogs), so a
dataset named like one of those would reach it.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager

import pyarrow as pa

from batchyard.domain.schema import Column, Dataset
from batchyard.targets.session import Session


def quote(name: str) -> str:
    """A name in double quotes: identifiers checked by check_identifier, or batchyard's own."""
    return f'"{name}"'


class Dialect(abc.ABC):
    """One target database kind: how to connect, which types, which SQL where they differ."""

    #: Starts the write transaction of transaction().
    begin_sql = "BEGIN"
    #: Types of record numbers and of the ledger's columns.
    integer_type = "INTEGER"
    blob_type = "BLOB"
    float_type = "REAL"
    #: Appended to CREATE TABLE.
    table_options = ""
    #: Whether processes on other machines may apply one batch's chunks side by side: the
    #: database has per-chunk locks that a participant can try without waiting (lock_chunk).
    shares_chunks = False

    @abc.abstractmethod
    def connect(self) -> Session:
        """A new session on its own connection."""

    @abc.abstractmethod
    def dataset_table(self, name: str) -> str:
        """The dataset ``name``'s table, schema-qualified and quoted, for SQL."""

    @property
    @abc.abstractmethod
    def ledger_table(self) -> str:
        """The chunk ledger, qualified and quoted: where no dataset's table can be."""

    @abc.abstractmethod
    def prepare(self, session: Session) -> None:
        """Create the schemas the target needs and move an older layout's ledger into place.

        Runs once per process, in a write transaction that holds the DDL lock.
        """

    def check_dataset_name(self, name: str) -> None:  # noqa: B027 (optional hook)
        """Refuse a name this database cannot give a table; every identifier is fine by default."""

    def ingest_dataset(self, session: Session, name: str, data: pa.Table) -> None:
        """Bulk-append ``data`` to the dataset's table (found the way dataset_table names it)."""
        session.ingest(name, data)

    @abc.abstractmethod
    def column_type(self, column: Column) -> str:
        """The SQL type of ``column``'s table column."""

    @abc.abstractmethod
    def convert(self, table: pa.Table, dataset: Dataset) -> pa.Table:
        """``table``'s columns in the form this database ingests."""

    @abc.abstractmethod
    def table_columns(self, session: Session, table: str) -> list[str] | None:
        """Column names of the dataset ``table``'s table, or None if there is no such table."""

    @abc.abstractmethod
    def delete_sql(self, table: str, stage: str, keys: tuple[str, ...], where: str) -> str:
        """DELETE the rows of the dataset ``table`` whose key is in the ``stage`` rows (alias s)
        ``where``."""

    def writer_lock(self) -> AbstractContextManager[object]:
        """Held around every write transaction (SQLite allows one writer per file)."""
        return _NO_LOCK

    def before_write(self, session: Session) -> None:  # noqa: B027 (optional hook)
        """Runs on ``session`` just before a write transaction begins, with writer_lock held."""

    def after_commit(self) -> None:  # noqa: B027 (optional hook)
        """Runs once a write transaction has committed (writer_lock still held)."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Stop what the dialect runs beside the sessions (the Target is closing)."""

    def serialize_ddl(self, session: Session) -> None:  # noqa: B027 (optional hook)
        """Make concurrent ensure_table calls wait for each other inside the transaction.

        Nothing to do by default: the SQLite writer lock already serializes them.
        """

    def lock_chunk(self, session: Session, batch_id: str, chunk_index: int, *, wait: bool) -> bool:
        """Lock the chunk until the transaction ends; False if another holds it and not ``wait``.

        Without chunk locks every participant simply queues for the one writer: always True.
        """
        return True


class _NoLock(AbstractContextManager[object]):
    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()
