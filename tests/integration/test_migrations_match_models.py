"""The schema the Alembic migrations build is exactly the one the SQLAlchemy models declare.

A model changed without a migration (or a migration that drifts from the models) shows up here as
a diff, on both backends, before it shows up as a broken upgrade in someone's database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from batchyard.runner.queue_schema import apply_queue_schema, libpq_url
from batchyard.store.database import MetadataStore
from batchyard.store.tables import metadata


def _owned_by_batchyard(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """procrastinate's tables share the PostgreSQL database; they are not ours to compare."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "include_object": _owned_by_batchyard},
    )
    return list(compare_metadata(context, metadata))


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("pg_url")).replace("postgresql://", "postgresql+psycopg://")


async def test_migrated_schema_has_no_diff_from_the_models(database_url: str) -> None:
    store = await MetadataStore.open(database_url)
    try:
        if store.dialect_name == "postgresql":  # the queue's tables live beside ours in production
            await apply_queue_schema(libpq_url(database_url))
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await store.close()
    assert diff == []


async def test_opening_twice_keeps_the_schema_and_the_queue_schema_is_applied_once(
    pg_url: str,
) -> None:
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    for _ in range(2):
        store = await MetadataStore.open(url)
        await store.close()
    assert await apply_queue_schema(libpq_url(url)) is True
    assert await apply_queue_schema(libpq_url(url)) is False
