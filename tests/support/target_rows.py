"""What a dataset's table holds, read straight from the target database of a test's server."""

from __future__ import annotations

from typing import Any

import adbc_driver_sqlite.dbapi
import psycopg

from batchyard.settings import Settings


def stored(settings: Settings, table: str, order: str = "id") -> list[tuple[Any, ...]]:
    """The rows the dataset's table holds, read straight from the target database."""
    url = settings.resolved_target_url()
    query = f'SELECT * FROM "{table}" ORDER BY {order}'
    if url.startswith("sqlite"):
        # Through the same SQLite library as the server in this process (ADBC's): a second copy
        # of SQLite in one process releases the other's file locks, and its reads can miss commits.
        path = url.removeprefix("sqlite:///")
        with adbc_driver_sqlite.dbapi.connect(path) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            return [tuple(row) for row in cursor.fetchall()]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return [tuple(row) for row in conn.execute(query).fetchall()]


def execute(settings: Settings, statement: str) -> None:
    """Run ``statement`` in the target database, as someone changing it by hand would."""
    url = settings.resolved_target_url()
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        with adbc_driver_sqlite.dbapi.connect(path) as conn:
            with conn.cursor() as cursor:
                cursor.execute(statement)
            conn.commit()
        return
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(statement)


def has_table(settings: Settings, table: str) -> bool:
    """Whether the target database holds a table of that name."""
    url = settings.resolved_target_url()
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        with adbc_driver_sqlite.dbapi.connect(path) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            )
            return bool(cursor.fetchone()[0])
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f'"{table}"',)).fetchone()
        return found is not None and found[0] is not None
