"""The metadata store's datasets, users and tokens on real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batchyard.domain.errors import Conflict, DatasetExists, DatasetNotFound
from batchyard.domain.schema import Dataset
from batchyard.store import datasets, users
from batchyard.store.database import MetadataStore

ORDERS = {
    "name": "orders",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "email", "type": "string", "max_length": 200, "pattern": "^[^@]+@[^@]+$"},
        {"name": "amount", "type": "decimal", "precision": 12, "scale": 2, "min": 0},
        {"name": "status", "type": "string", "enum": ["new", "paid"]},
        {"name": "ts", "type": "timestamp", "min": "2020-01-01T00:00:00Z"},
        {"name": "user_id", "type": "uuid"},
        {"name": "extra", "type": "json"},
    ],
}


@pytest.fixture
async def store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[MetadataStore]:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
    else:
        url = str(request.getfixturevalue("pg_url")).replace(
            "postgresql://", "postgresql+psycopg://"
        )
    opened = await MetadataStore.open(url)
    yield opened
    await opened.close()


async def test_datasets_round_trip(store: MetadataStore) -> None:
    orders = Dataset.from_dict(ORDERS, created_ts=1_700_000_000.5, owner_id="alice")
    events = Dataset.from_dict({"name": "events", "columns": [{"name": "a", "type": "string"}]})
    async with store.begin() as conn:
        await datasets.insert_dataset(conn, orders)
        await datasets.insert_dataset(conn, events)
        with pytest.raises(DatasetExists):
            await datasets.insert_dataset(conn, orders)
    async with store.begin() as conn:
        stored = await datasets.get_dataset(conn, "orders")
        listed = await datasets.list_datasets(conn)
        with pytest.raises(DatasetNotFound):
            await datasets.get_dataset(conn, "nope")
    assert stored == orders
    assert stored.to_dict() == orders.to_dict()
    assert (stored.created_ts, stored.owner_id) == (1_700_000_000.5, "alice")
    assert [d.name for d in listed] == ["events", "orders"]
    assert listed[0].created_ts is not None  # stamped on insert when the dataset had none


async def test_user_names_are_unique(store: MetadataStore) -> None:
    async with store.begin() as conn:
        alice = await users.create_user(conn, "alice", "member")
        with pytest.raises(Conflict):
            await users.create_user(conn, "alice", "admin")
        # The conflict left the transaction usable.
        assert await users.get_user_by_name(conn, "alice") == alice
        assert await users.get_user_by_name(conn, "bob") is None
    assert alice.role == "member"


async def test_only_live_tokens_of_enabled_users_authenticate(store: MetadataStore) -> None:
    now = 1_700_000_000.0
    async with store.begin() as conn:
        alice = await users.create_user(conn, "alice", "member")
        bob = await users.create_user(conn, "bob", "admin")
        await users.add_token(conn, alice.user_id, "h-forever")
        await users.add_token(conn, alice.user_id, "h-until-later", expires_ts=now + 60)
        await users.add_token(conn, alice.user_id, "h-expired", expires_ts=now)
        revoked = await users.add_token(conn, alice.user_id, "h-revoked")
        assert await users.revoke_token(conn, revoked, now=now)
        assert not await users.revoke_token(conn, revoked, now=now)
        await users.add_token(conn, bob.user_id, "h-bob")
        await users.set_user_disabled(conn, bob.user_id, disabled=True)

    async def who(token_hash: str) -> users.Principal | None:
        async with store.begin() as conn:
            return await users.principal_for_token_hash(conn, token_hash, now=now)

    assert await who("h-forever") == alice
    assert await who("h-until-later") == alice
    for dead in ("h-expired", "h-revoked", "h-bob", "h-unknown"):
        assert await who(dead) is None
    async with store.begin() as conn:
        await users.set_user_disabled(conn, bob.user_id, disabled=False)
    assert await who("h-bob") == bob
