"""Transitions committed by one process reach another's status reads at once (queue mode).

Two metadata stores on one PostgreSQL database stand for a worker and an API process; the API's
status cache trusts what it read for an hour here, so only the announcement can refresh it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from batchyard.domain.batches import Batch, BatchOptions, InputFormat, Operation, Source, now
from batchyard.domain.statuses import BatchStatus
from batchyard.runner import batch_changes
from batchyard.runner.batch_changes import TransitionListener
from batchyard.runner.queue_schema import libpq_url
from batchyard.store import batches as rows
from batchyard.store.batches import TRANSITIONS_CHANNEL
from batchyard.store.database import MetadataStore
from batchyard.store.fresh import FreshCache

S = BatchStatus
WITHIN = 30.0


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[tuple[MetadataStore, MetadataStore]]:
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    worker, api = await MetadataStore.open(url), await MetadataStore.open(url)
    api.reads = FreshCache(ttl=3600)
    yield worker, api
    await api.close()
    await worker.close()


async def insert(store: MetadataStore) -> Batch:
    created = now()
    batch = Batch(
        id=str(uuid.uuid4()),
        owner_id="alice",
        dataset="orders",
        operation=Operation.INSERT,
        status=S.NEW,
        format=InputFormat.CSV,
        sources=(Source(None),),
        options=BatchOptions(),
        created_ts=created,
        updated_ts=created,
    )
    async with store.begin() as conn:
        await rows.insert_batch(conn, batch)
    return batch


class Heard:
    """What the listener reported, each kind with an event to wait on."""

    def __init__(self, api: MetadataStore) -> None:
        self.api = api
        self.changed: list[str] = []
        self.gaps = 0
        self.change = asyncio.Event()
        self.gap = asyncio.Event()

    def on_change(self, batch_id: str) -> None:
        self.api.reads.forget_batch(batch_id)
        self.changed.append(batch_id)
        self.change.set()

    def on_gap(self) -> None:
        self.api.reads.forget_all()
        self.gaps += 1
        self.gap.set()


async def cached_status(api: MetadataStore, batch_id: str) -> BatchStatus:
    async def load() -> Batch:
        async with api.read() as conn:
            return await rows.get_batch(conn, batch_id, owner_id=None)

    return (await api.reads.load(("batch", batch_id), load)).status


async def transition(store: MetadataStore, batch_id: str, to: BatchStatus) -> None:
    async with store.begin(writes_batch=batch_id) as conn:
        await rows.transition_batch(conn, batch_id, to)


async def transition_then_fail(store: MetadataStore, batch_id: str, to: BatchStatus) -> None:
    async with store.begin(writes_batch=batch_id) as conn:
        await rows.transition_batch(conn, batch_id, to)
        raise RuntimeError("rolled back")


@contextlib.asynccontextmanager
async def listening(api: MetadataStore, pg_url: str) -> AsyncIterator[Heard]:
    """A TransitionListener on ``pg_url`` telling ``api``'s Heard of every change, while inside."""
    heard = Heard(api)
    listener = TransitionListener(libpq_url(pg_url), heard.on_change, heard.on_gap)
    await listener.start()
    try:
        yield heard
    finally:
        await listener.stop()


async def test_a_transition_in_another_process_refreshes_the_status_read_at_once(
    stores: tuple[MetadataStore, MetadataStore], pg_url: str
) -> None:
    worker, api = stores
    async with listening(api, pg_url) as heard:
        batch = await insert(worker)
        assert await cached_status(api, batch.id) == S.NEW
        await transition(worker, batch.id, S.COPYING)
        await asyncio.wait_for(heard.change.wait(), WITHIN)
        assert heard.changed == [batch.id]
        assert await cached_status(api, batch.id) == S.COPYING


async def test_a_rolled_back_transition_is_not_announced(
    stores: tuple[MetadataStore, MetadataStore], pg_url: str
) -> None:
    worker, api = stores
    async with listening(api, pg_url) as heard:
        first, second = await insert(worker), await insert(worker)
        with pytest.raises(RuntimeError):
            await transition_then_fail(worker, first.id, S.COPYING)
        await transition(worker, second.id, S.COPYING)  # announcements arrive in commit order
        await asyncio.wait_for(heard.change.wait(), WITHIN)
        assert heard.changed == [second.id]


async def test_a_dropped_connection_forgets_everything_and_listens_again(
    stores: tuple[MetadataStore, MetadataStore], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, api = stores
    monkeypatch.setattr(batch_changes, "RELISTEN_SECONDS", 0.05)
    async with listening(api, pg_url) as heard:
        batch = await insert(worker)
        assert await cached_status(api, batch.id) == S.NEW
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = %s",
                (f'LISTEN "{TRANSITIONS_CHANNEL}"',),
            )
        await asyncio.wait_for(heard.gap.wait(), WITHIN)
        # The listener is back once it has forgotten again (the second gap: after re-listening).
        while heard.gaps < 2:
            heard.gap.clear()
            await asyncio.wait_for(heard.gap.wait(), WITHIN)
        await transition(worker, batch.id, S.COPYING)
        await asyncio.wait_for(heard.change.wait(), WITHIN)
        assert await cached_status(api, batch.id) == S.COPYING
