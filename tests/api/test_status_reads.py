"""Status reads are remembered (store.fresh): the owner rule holds on a remembered batch, a
write of this process shows at once, and one made by another process within the bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from benchmarks.datagen import ORDERS_SCHEMA
from prometheus_client import REGISTRY

from batchyard.settings import Settings
from batchyard.store.database import MetadataStore
from batchyard.store.fresh import STATUS_BOUND_SECONDS
from batchyard.store.tables import batches
from support.accounts import Accounts, open_accounts


@pytest.fixture
async def acc(settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(settings) as accounts:
        created = await accounts.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)
        assert created.status_code == 201, created.text
        await accounts.add_user("alice", "member")
        await accounts.add_user("bob", "member")
        yield accounts


async def _finished_batch(acc: Accounts) -> str:
    batch = await acc.upload("alice")
    return str((await acc.finished("alice", batch["batch"]))["batch"])


async def test_another_users_batch_is_not_found_even_while_remembered(acc: Accounts) -> None:
    batch_id = await _finished_batch(acc)
    for path in (f"/batches/{batch_id}", f"/batches/{batch_id}/history"):
        assert (await acc.call("admin", "GET", path)).status_code == 200  # now remembered
        refused = await acc.call("bob", "GET", path)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "batch_not_found"
        assert (await acc.call("alice", "GET", path)).status_code == 200


def _status_reads(kind: str, answer: str) -> float:
    value = REGISTRY.get_sample_value(
        "batchyard_status_reads_total", {"kind": kind, "answer": answer}
    )
    return value or 0.0


async def test_the_metrics_count_reads_answered_from_memory_and_reads_that_waited(
    acc: Accounts,
) -> None:
    batch_id = await _finished_batch(acc)
    path = f"/batches/{batch_id}"
    assert (await acc.call("alice", "DELETE", path)).status_code == 202  # a write: all forgotten
    waited, remembered = _status_reads("batch", "waited"), _status_reads("batch", "remembered")
    for _ in range(3):
        assert (await acc.call("alice", "GET", path)).status_code in (200, 404)
    # The first read after the write went to the database; the next two were answered from
    # memory (unless the machine was so slow that the value aged: then they waited too).
    assert _status_reads("batch", "waited") - waited >= 1
    assert _status_reads("batch", "waited") + _status_reads("batch", "remembered") == (
        waited + remembered + 3
    )
    assert _status_reads("token", "remembered") > 0


async def test_a_change_made_through_this_process_shows_at_once(acc: Accounts) -> None:
    batch_id = await _finished_batch(acc)
    path = f"/batches/{batch_id}"
    assert (await acc.call("alice", "GET", path)).json()["status"] == "completed"
    history = (await acc.call("alice", "GET", f"{path}/history")).json()
    assert (await acc.call("alice", "DELETE", path)).status_code == 202
    after = await acc.call("alice", "GET", path)
    assert after.status_code == 404 or after.json()["status"] == "deleting"
    after_history = await acc.call("alice", "GET", f"{path}/history")
    assert after_history.status_code == 404 or after_history.json() != history


async def test_a_change_made_by_another_process_shows_within_the_bound(
    acc: Accounts, settings: Settings
) -> None:
    batch_id = await _finished_batch(acc)
    path = f"/batches/{batch_id}"
    assert (await acc.call("alice", "GET", path)).json()["error_message"] is None
    elsewhere = await MetadataStore.open(settings.resolved_database_url())
    try:
        async with elsewhere.begin() as conn:
            change = sa.update(batches).where(batches.c.id == batch_id)
            await conn.execute(change.values(error_message="changed by another process"))
    finally:
        await elsewhere.close()
    changed_at = time.monotonic()
    while (await acc.call("alice", "GET", path)).json()["error_message"] is None:
        # Generous for a loaded machine; the documented bound is STATUS_BOUND_SECONDS.
        assert time.monotonic() - changed_at < STATUS_BOUND_SECONDS + 5
        await asyncio.sleep(0.05)


async def test_row_counts_of_both_dataset_reads_match_a_batch_as_soon_as_it_ends(
    acc: Accounts,
) -> None:
    async def counts() -> tuple[int, int]:
        one = (await acc.call("admin", "GET", "/datasets/orders")).json()["row_count"]
        listed = (await acc.call("admin", "GET", "/datasets")).json()["datasets"]
        return one, next(d["row_count"] for d in listed if d["name"] == "orders")

    assert await counts() == (0, 0)  # both remembered now
    batch = await acc.finished("alice", (await acc.upload("alice"))["batch"])
    assert batch["successful_operations"] > 0
    assert await counts() == (batch["successful_operations"],) * 2


async def test_an_import_forgets_its_own_batch_and_dataset_never_everything(
    acc: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploading and running a batch forgets what it changes (its own status and history, its
    dataset's row count), never every remembered read: each forget of everything sent every
    polling client of every batch to the database at once."""
    store = acc.services.store
    forgotten: list[tuple[str, str | None]] = []
    forget_batch = store.reads.forget_batch

    def forget_one(batch_id: str, dataset: str | None = None) -> None:
        forgotten.append((batch_id, dataset))
        forget_batch(batch_id, dataset)

    monkeypatch.setattr(store.reads, "forget_all", lambda: forgotten.append(("all", None)))
    monkeypatch.setattr(store.reads, "forget_batch", forget_one)
    batch = await acc.finished("alice", (await acc.upload("alice"))["batch"])
    assert batch["status"] == "completed"
    assert forgotten, "the batch's own writes forget its remembered reads"
    assert set(forgotten) == {(batch["batch"], "orders")}
