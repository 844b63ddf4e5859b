"""What batchyard itself keeps in its databases, read straight from them: tables, columns, rows.

The security tests find batchyard's own tables by looking (not from a list in the code), declare
datasets shaped like them, and compare a dump of every one before and after.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

#: A stored row as comparable text, in column order.
Row = tuple[str, ...]
_PG_SYSTEM = ("pg_catalog", "information_schema", "pg_toast")


@dataclass(frozen=True)
class OwnedTable:
    """One table of batchyard's: where it is, its columns (name, type, nullable), its key."""

    where: str  # a PostgreSQL schema, or the SQLite file's name
    name: str
    columns: tuple[tuple[str, str, bool], ...]
    primary_key: tuple[str, ...]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return "" if value is None else str(value)


class PostgresTables:
    """Every table outside PostgreSQL's own schemas in one database."""

    def __init__(self, url: str) -> None:
        self.url = url

    def tables(self) -> list[OwnedTable]:
        with psycopg.connect(self.url) as conn:
            names = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE' AND table_schema <> ALL(%s)"
                " AND table_schema NOT LIKE 'pg_temp%%' ORDER BY 1, 2",
                (list(_PG_SYSTEM),),
            ).fetchall()
            return [self._describe(conn, schema, name) for schema, name in names]

    def _describe(self, conn: psycopg.Connection[Any], schema: str, name: str) -> OwnedTable:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, name),
        ).fetchall()
        key = conn.execute(
            "SELECT k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)"
            " WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = %s"
            " AND c.table_name = %s ORDER BY k.ordinal_position",
            (schema, name),
        ).fetchall()
        return OwnedTable(
            schema,
            name,
            tuple((c, _pg_type(t), bool(n)) for c, t, n in columns),
            tuple(k for (k,) in key),
        )

    def rows(self, table: OwnedTable) -> list[Row]:
        with psycopg.connect(self.url) as conn:
            fetched = conn.execute(f'SELECT * FROM "{table.where}"."{table.name}"').fetchall()
        return sorted(tuple(_text(v) for v in row) for row in fetched)


class SqliteTables:
    """Every table of some SQLite files (the metadata database, the target's ledger)."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths

    def tables(self) -> list[OwnedTable]:
        found = []
        for path in self.paths:
            with sqlite3.connect(path) as conn:
                names = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                ).fetchall()
                for (name,) in names:
                    info = conn.execute("SELECT * FROM pragma_table_info(?)", (name,)).fetchall()
                    columns = tuple((c[1], _sqlite_type(c[2]), not c[3]) for c in info)
                    key = tuple(c[1] for c in sorted(info, key=lambda c: c[5]) if c[5])
                    found.append(OwnedTable(path.name, name, columns, key))
        return found

    def rows(self, table: OwnedTable) -> list[Row]:
        path = next(p for p in self.paths if p.name == table.where)
        with sqlite3.connect(path) as conn:
            fetched = conn.execute(f'SELECT * FROM "{table.name}"').fetchall()
        return sorted(tuple(_text(v) for v in row) for row in fetched)


def _pg_type(data_type: str) -> str:
    """The dataset column type closest to a PostgreSQL column's."""
    if data_type in ("bigint", "integer", "smallint"):
        return "integer"
    if data_type in ("double precision", "real"):
        return "float"
    if data_type == "boolean":
        return "boolean"
    if data_type.startswith("timestamp"):
        return "timestamp"
    if data_type in ("json", "jsonb"):
        return "json"
    return "string"


def _sqlite_type(declared: str) -> str:
    declared = declared.upper()
    if "INT" in declared:
        return "integer"
    if any(word in declared for word in ("REAL", "FLOAT", "DOUBLE")):
        return "float"
    if "BOOL" in declared:
        return "boolean"
    return "string"
