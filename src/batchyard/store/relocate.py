"""Moves a PostgreSQL deployment from before the metadata schema into it, keeping every row.

Until then batchyard's tables, Alembic's version table and procrastinate's tables, types and
functions lived in ``public``, beside the datasets' tables, where a dataset named ``roles`` was
the roles table. The move is ``ALTER … SET SCHEMA``: instant, rows untouched, and indexes,
constraints, sequences and triggers go along with their tables. It runs before the migrations,
under their advisory lock, and only once: after it the version table is in the new schema.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.tables import SCHEMA

#: Where the old layout kept everything: the default schema of a fresh PostgreSQL database.
LEGACY_SCHEMA = "public"
#: The tables the revisions before the move created (frozen: later revisions create theirs in
#: the new schema directly).
LEGACY_TABLES = (
    "alembic_version",
    "users",
    "roles",
    "tokens",
    "datasets",
    "batches",
    "batch_history",
    "batch_log",
)

_HAS_OLD_LAYOUT = text("SELECT to_regclass(:old) IS NOT NULL AND to_regclass(:new) IS NULL")
_TO = f'"{SCHEMA}"'
#: One ALTER per object of procrastinate's still in the old schema; tables first, so that their
#: sequences move with them and are not listed twice.
_QUEUE_OBJECTS = (
    text(
        f"SELECT format('ALTER TABLE %I.%I SET SCHEMA {_TO}', n.nspname, c.relname)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = :old AND c.relkind IN ('r', 'p') AND c.relname LIKE 'procrastinate\\_%'"
    ),
    text(
        f"SELECT format('ALTER SEQUENCE %I.%I SET SCHEMA {_TO}', n.nspname, c.relname)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = :old AND c.relkind = 'S' AND c.relname LIKE 'procrastinate\\_%'"
    ),
    text(
        f"SELECT format('ALTER TYPE %I.%I SET SCHEMA {_TO}', n.nspname, t.typname)"
        " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname = :old AND t.typname LIKE 'procrastinate\\_%'"
        " AND (t.typtype = 'e' OR (t.typtype = 'c' AND t.typrelid IN"
        " (SELECT oid FROM pg_class WHERE relkind = 'c')))"
    ),
    text(
        f"SELECT format('ALTER FUNCTION %s SET SCHEMA {_TO}', p.oid::regprocedure)"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = :old AND p.proname LIKE 'procrastinate\\_%'"
    ),
)


async def create_own_schema(conn: AsyncConnection) -> None:
    """The metadata schema, created on first start.

    Looked up first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the database
    even when the schema is there, which an operator may have created beforehand instead.
    """
    exists = await conn.scalar(text("SELECT to_regnamespace(:name) IS NOT NULL"), {"name": SCHEMA})
    if not exists:
        await conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))


async def move_legacy_layout(conn: AsyncConnection) -> bool:
    """Move an old deployment's metadata and queue into the own schema; True if there was one."""
    params = {
        "old": f'"{LEGACY_SCHEMA}".alembic_version',
        "new": f'"{SCHEMA}".alembic_version',
    }
    if not await conn.scalar(_HAS_OLD_LAYOUT, params):
        return False
    for table in LEGACY_TABLES:
        exists = await conn.scalar(
            text("SELECT to_regclass(:name) IS NOT NULL"),
            {"name": f'"{LEGACY_SCHEMA}"."{table}"'},
        )
        if exists:
            await conn.execute(
                text(f'ALTER TABLE "{LEGACY_SCHEMA}"."{table}" SET SCHEMA "{SCHEMA}"')
            )
    for query in _QUEUE_OBJECTS:
        statements = await conn.scalars(query, {"old": LEGACY_SCHEMA})
        for statement in list(statements):
            await conn.execute(text(statement))
    return True
