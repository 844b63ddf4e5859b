"""Runs the Alembic migrations shipped in this package, programmatically and without alembic.ini.

Every process that opens the store (server, workers, CLI) calls this, so on PostgreSQL the upgrade
takes an advisory lock: two processes starting at once must not both create the tables. On
PostgreSQL the tables live in a schema of their own (created here); a deployment from before that
is moved into it first (store/relocate.py).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from batchyard.store.relocate import create_own_schema, move_legacy_layout

#: Where Alembic finds env.py and versions/, as a package resource (works from a wheel).
SCRIPT_LOCATION = "batchyard.store:migrations"
#: Arbitrary constant naming the PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK_ID = 0x62617463  # "batc"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every migration not applied yet, in one transaction."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
            await create_own_schema(conn)
            await move_legacy_layout(conn)
        await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
