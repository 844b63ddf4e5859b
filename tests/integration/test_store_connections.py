"""The metadata store's pools: a PostgreSQL connection that died while idle is replaced before
a read uses it (pinged only when idle, not at every checkout), and SQLite reads cannot write."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from batchyard.store import database
from batchyard.store.database import MetadataStore
from batchyard.store.tables import users


async def _backend_pid(store: MetadataStore) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(sa.text("SELECT pg_backend_pid()")) or 0)


async def test_a_connection_killed_while_idle_is_replaced_before_a_read(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await MetadataStore.open(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        pid = await _backend_pid(store)
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # Every pooled connection counts as idle now: the dead one is pinged and replaced.
        monkeypatch.setattr(database, "_PING_AFTER_IDLE_SECONDS", 0.0)
        for _ in range(3):  # whichever pooled connection the pool hands out
            assert await _backend_pid(store) != pid
    finally:
        await store.close()


async def test_sqlite_reads_cannot_write(tmp_path: Path) -> None:
    store = await MetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        with pytest.raises(OperationalError, match="readonly"):
            async with store.read() as conn:
                await conn.execute(sa.delete(users))
    finally:
        await store.close()
