"""A PostgreSQL target connection through psycopg, bulk appends as binary COPY from pg_copy.

ADBC's PostgreSQL driver spent about 0.7 s of CPU per million orders records writing its COPY
data, and before each COPY it looked the schema and the table's column types up (two more
round trips and two catalog queries per chunk); the data pg_copy encodes (with pgpq) goes to
``COPY … FROM STDIN (FORMAT binary)`` as it is. Statements use PostgreSQL's own ``$1``
placeholders (psycopg's raw cursors), as they did through ADBC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
import pyarrow as pa
from psycopg.types.string import TextLoader

from batchyard.domain.errors import PipelineError
from batchyard.targets import pg_copy
from batchyard.targets.dialect import quote
from batchyard.targets.session import DatabaseError, Session

_T = TypeVar("_T")
#: Read back as their text, exact and as ADBC gave them (psycopg would make Decimal and parse
#: JSON): what the targets read is counts, keys and the ledger, never these on the hot path.
_AS_TEXT = ("numeric", "json", "jsonb")


def connect_postgres(url: str) -> PostgresSession:
    """A connection in autocommit mode (the targets send BEGIN and COMMIT themselves)."""
    try:
        connection = psycopg.Connection.connect(
            url, autocommit=True, cursor_factory=psycopg.RawCursor, client_encoding="UTF8"
        )
    except psycopg.Error as exc:
        raise PipelineError(f"target database unavailable: {exc}") from exc
    for exact in _AS_TEXT:
        connection.adapters.register_loader(exact, TextLoader)
    return PostgresSession(connection)


class PostgresSession(Session):
    """A psycopg connection used by one thread at a time."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        super().__init__(connection, "${}")
        self._connection = connection

    def _run(self, sql: str, params: Sequence[Any], fetch: Callable[[Any], _T]) -> _T:
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, tuple(params) if params else None)
                return fetch(cursor)
        except psycopg.DatabaseError as exc:
            raise DatabaseError(str(exc)) from exc

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(sql, params, lambda cursor: list(cursor.fetchall()))

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """The result as an Arrow table (a handful of rows: pinned records, never a chunk)."""

        def fetch(cursor: Any) -> pa.Table:
            rows = cursor.fetchall()
            names = [column.name for column in cursor.description or ()]
            columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
            return pa.table([pa.array(list(values)) for values in columns], names=names)

        return self._run(sql, params, fetch)

    def ingest(
        self, table_name: str, data: pa.Table, *, temporary: bool = False, schema: str | None = None
    ) -> None:
        """Append ``data`` by binary COPY inside the current transaction (``temporary``: the
        name is a temporary table's, found first without a schema)."""
        if not data.num_rows:
            return
        table = quote(table_name) if schema is None else f"{quote(schema)}.{quote(table_name)}"
        columns = ", ".join(quote(name) for name in data.column_names)
        statement = f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
        try:
            with self._connection.cursor() as cursor, cursor.copy(statement) as copy:
                for part in pg_copy.encode(data):
                    copy.write(part)
        except psycopg.DatabaseError as exc:
            raise DatabaseError(str(exc)) from exc
