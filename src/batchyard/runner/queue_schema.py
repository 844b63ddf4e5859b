"""procrastinate's tables and functions, created in the metadata database on first start.

Every API process and worker calls this, so it runs under an advisory lock and only when the
schema is missing: procrastinate's schema file is not idempotent (CREATE TYPE, CREATE TABLE).
They live in batchyard's own schema, beside the metadata and out of reach of datasets: every
connection of the queue searches only that schema (procrastinate names no schema in its SQL).
"""

from __future__ import annotations

import psycopg
from procrastinate.schema import SchemaManager
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from batchyard.store.database import search_path_options
from batchyard.store.tables import SCHEMA

#: pg_advisory_xact_lock key held while creating the queue schema ("bqueue" in ASCII).
_SCHEMA_LOCK = 0x627175657565


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://…``) as libpq's connection string.

    Its sessions search only batchyard's schema, where the queue's tables and functions are.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"the job queue needs a PostgreSQL database, not {parsed.drivername!r}")
    existing = parsed.query.get("options")
    options = search_path_options(" ".join(existing) if isinstance(existing, tuple) else existing)
    plain = parsed.set(drivername="postgresql").difference_update_query(["options"])
    return make_conninfo(plain.render_as_string(hide_password=False), options=options)


async def apply_queue_schema(conninfo: str) -> bool:
    """Create procrastinate's schema unless it exists; True if it was created now.

    Its objects go to batchyard's schema, which opening the metadata store created.
    """
    async with await psycopg.AsyncConnection.connect(conninfo) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cursor = await conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f'"{SCHEMA}".procrastinate_jobs',)
        )
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return False
        # No parameters: psycopg sends the script as is (no %-placeholders to escape).
        await conn.execute(SchemaManager.get_schema())
        return True
