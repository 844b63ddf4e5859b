"""procrastinate's tables and functions, created in the metadata database on first start.

Every API process and worker calls this, so it runs under an advisory lock and only when the
schema is missing: procrastinate's schema file is not idempotent (CREATE TYPE, CREATE TABLE).
"""

from __future__ import annotations

import psycopg
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

#: pg_advisory_xact_lock key held while creating the queue schema ("bqueue" in ASCII).
_SCHEMA_LOCK = 0x627175657565


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://…``) as libpq's connection string."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"the job queue needs a PostgreSQL database, not {parsed.drivername!r}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def apply_queue_schema(conninfo: str) -> bool:
    """Create procrastinate's schema unless it exists; True if it was created now."""
    async with await psycopg.AsyncConnection.connect(conninfo) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cursor = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return False
        # No parameters: psycopg sends the script as is (no %-placeholders to escape).
        await conn.execute(SchemaManager.get_schema())
        return True
