"""One open connection to a target database, with the few statements the targets need.

Connections run in autocommit mode and batchyard issues BEGIN/COMMIT itself: that is the only way
to start SQLite write transactions as BEGIN IMMEDIATE (a deferred BEGIN that later upgrades to a
write lock can fail with SQLITE_BUSY instead of waiting), and it keeps both drivers alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import adbc_driver_manager
import pyarrow as pa


class DatabaseError(Exception):
    """The target database refused a statement (constraint, data, SQL errors) or failed it.

    Each kind of session raises it for its driver's database errors, so the code above the
    sessions catches one class whichever driver a target uses.
    """


_T = TypeVar("_T")


class Session:
    """An ADBC connection used by one thread at a time.

    Every statement gets a cursor of its own: an ADBC statement keeps its bound parameters after
    a failed execution, which would leak into the next statement run on the same cursor.
    """

    def __init__(self, connection: Any, placeholder: str) -> None:
        self.connection = connection
        self._placeholder = placeholder
        self._savepoints = itertools.count(1)

    def param(self, position: int) -> str:
        """The driver's placeholder for the 1-based parameter ``position``."""
        return self._placeholder.format(position)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(sql, params, lambda cursor: None)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(sql, params, lambda cursor: list(cursor.fetchall()))

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        table: pa.Table = self._run(sql, params, lambda cursor: cursor.fetch_arrow_table())
        return table

    def _run(self, sql: str, params: Sequence[Any], fetch: Callable[[Any], _T]) -> _T:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, parameters=tuple(params) if params else None)
            return fetch(cursor)
        except adbc_driver_manager.DatabaseError as exc:
            raise DatabaseError(str(exc)) from exc
        finally:
            cursor.close()

    def ingest(
        self, table_name: str, data: pa.Table, *, temporary: bool = False, schema: str | None = None
    ) -> None:
        """Bulk-append ``data`` (COPY on PostgreSQL) inside the current transaction."""
        if not data.num_rows:
            return
        cursor = self.connection.cursor()
        try:
            cursor.adbc_ingest(
                table_name, data, mode="append", temporary=temporary, db_schema_name=schema
            )
        except adbc_driver_manager.DatabaseError as exc:
            raise DatabaseError(str(exc)) from exc
        finally:
            cursor.close()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo only what the block did when the database refuses it; the error propagates."""
        name = f"batchyard_sp_{next(self._savepoints)}"
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except DatabaseError:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")

    def close(self) -> None:
        self.connection.close()
