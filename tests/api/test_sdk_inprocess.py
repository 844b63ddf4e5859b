"""The SDK (both clients) against the app in-process on each backend, via its transport hook."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from batchyard import AsyncClient, Client
from batchyard.api.app import create_app
from batchyard.client import (
    AuthenticationFailed,
    Batch,
    BatchNotFound,
    BatchStatus,
    DatasetExists,
    DatasetNotFound,
    HistoryEntry,
    InvalidTransition,
    ValidationFailed,
)
from batchyard.settings import Settings
from support.accounts import open_accounts
from support.inprocess import sync_transport
from support.servers import ADMIN_TOKEN, FileServer

URL = "http://batchyard.test"


@pytest.fixture
async def sdk(settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(ADMIN_TOKEN, URL, transport=transport) as client,
    ):
        await client.datasets.create(ORDERS_SCHEMA)
        yield client


@pytest.fixture
def sync_sdk(settings: Settings) -> Iterator[Client]:
    with (
        sync_transport(create_app(settings)) as transport,
        Client(ADMIN_TOKEN, URL, transport=transport) as client,
    ):
        client.datasets.create(ORDERS_SCHEMA)
        yield client


@pytest.fixture
def orders_csv(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 3_000, bad_every=100)
    assert len(expected.bad) == 30
    return path


async def test_async_upload_wait_history_log_and_files(sdk, orders_csv, tmp_path):
    uploaded: list[tuple[int, int | None]] = []
    created = await sdk.ingest.create_batch(
        "orders", file=orders_csv, hash="auto", on_upload=lambda n, t: uploaded.append((n, t))
    )
    assert isinstance(created, Batch) and created.dataset == "orders"
    assert created.hash and len(created.hash) == 64
    assert uploaded[-1] == (orders_csv.stat().st_size, orders_csv.stat().st_size)

    seen: list[Batch] = []
    done = await sdk.ingest.wait(created.id, timeout=120, on_progress=seen.append)
    assert done.status == BatchStatus.COMPLETED and done.is_terminal
    assert (done.total_operations, done.successful_operations, done.failed_operations) == (
        3000,
        2970,
        30,
    )
    assert not done.succeeded
    assert seen[-1] == done
    assert done.created_ts.tzinfo is UTC and done.completed_ts and done.completed_ts.tzinfo
    assert done.completed_ts >= done.created_ts

    history = await sdk.ingest.get_batch_status(created.id)
    assert all(isinstance(h, HistoryEntry) for h in history)
    assert history[0].status == BatchStatus.COMPLETED
    assert history[-1].status == BatchStatus.NEW
    assert [h.updated_ts for h in history] == sorted((h.updated_ts for h in history), reverse=True)
    assert "Inserted: 2970" in await sdk.ingest.get_log(created.id)

    results, failed = tmp_path / "results.csv", tmp_path / "failed.csv"
    await sdk.ingest.download_results(created.id, results)
    await sdk.ingest.download_failed_records(created.id, failed)
    with results.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3000 and sum(r["outcome"] == "failed" for r in rows) == 30
    with failed.open() as f:
        assert len(list(csv.DictReader(f))) == 30

    signed = await sdk.ingest.get_batch(created.id, download=True)
    assert signed.download and signed.download.validity_ts > done.completed_ts


async def test_async_errors_are_typed(sdk, settings):
    with pytest.raises(BatchNotFound) as missing:
        await sdk.ingest.get_batch("00000000-0000-0000-0000-000000000000")
    assert missing.value.status_code == 404 and missing.value.code == "batch_not_found"
    with pytest.raises(DatasetExists):
        await sdk.datasets.create(ORDERS_SCHEMA)
    with pytest.raises(DatasetNotFound):
        await sdk.datasets.get("nope")
    with pytest.raises(ValidationFailed) as invalid:
        await sdk.datasets.create({"name": "x", "columns": [{"name": "a", "type": "money"}]})
    assert "money" in invalid.value.message
    with pytest.raises(ValidationFailed):
        await sdk.ingest.create_batch("orders", sources=["ftp://example.com/a.csv"])
    with pytest.raises(ValueError, match="exactly one"):
        await sdk.ingest.create_batch("orders")

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("wrong-token", URL, transport=transport) as anonymous:
            with pytest.raises(AuthenticationFailed):
                await anonymous.datasets.list()


async def test_async_list_iterates_every_page_cancel_and_delete(sdk):
    ids = []
    for _ in range(3):
        batch = await sdk.ingest.create_batch("orders", file=io.BytesIO(b"id,email\n1,a@b.c\n"))
        ids.append(batch.id)
    for batch_id in ids:
        await sdk.ingest.wait(batch_id, timeout=120)
    listed = [b.id async for b in sdk.ingest.list_batches(dataset="orders", page_size=1)]
    assert listed == ids[::-1]
    completed = [b async for b in sdk.ingest.list_batches(status="completed")]
    assert len(completed) == 3

    with pytest.raises(InvalidTransition):
        await sdk.ingest.cancel(ids[0])
    deleting = await sdk.ingest.delete(ids[0])
    assert deleting.status == BatchStatus.DELETING
    with pytest.raises(BatchNotFound):
        await sdk.ingest.wait(ids[0], timeout=120, poll_interval=0.05)


async def test_async_sources_idempotency_and_datasets(sdk, orders_csv):
    with FileServer(orders_csv.parent) as files:
        url = f"{files.url}/{orders_csv.name}"
        first = await sdk.ingest.create_batch("orders", sources=[url], idempotency_key="k-1")
        again = await sdk.ingest.create_batch("orders", sources=[url], idempotency_key="k-1")
        assert again.id == first.id and first.sources[0].url == url
        done = await sdk.ingest.wait(first.id, timeout=120)
        wrong = await sdk.ingest.create_batch(
            "orders", sources=[{"url": url, "sha256": "0" * 64}], operation="upsert"
        )
        mismatch = await sdk.ingest.wait(wrong.id, timeout=120)
    assert mismatch.status == BatchStatus.HASH_MISMATCH and not mismatch.succeeded
    bad_upload = await sdk.ingest.create_batch("orders", file=orders_csv, hash="f" * 64)
    assert (await sdk.ingest.wait(bad_upload.id, timeout=120)).status == "hash_mismatch"
    assert done.successful_operations == 2970

    dataset = await sdk.datasets.get("orders")
    assert dataset.row_count == 2970 and dataset.primary_key == ["id"]
    assert [d.name for d in await sdk.datasets.list()] == ["orders"]

    sample = orders_csv.with_name("sample.csv")
    write_orders_csv(sample, 50, bad_every=0)
    schema = await sdk.datasets.infer(sample, name="orders_copy")
    assert [(c.type, c.scale) for c in schema.columns] == [
        ("integer", None),
        ("string", None),
        ("decimal", 2),  # amounts written with two decimals: exact, as ORDERS_SCHEMA has them
        ("string", None),
        ("timestamp", None),
        ("uuid", None),
    ]
    created = await sdk.datasets.create(schema)
    assert created.name == "orders_copy" and created.primary_key == ["id"]

    kept = await sdk.datasets.delete("orders", keep_table=True)
    assert kept.row_count == 2970
    with pytest.raises(DatasetNotFound):
        await sdk.datasets.get("orders")
    assert (await sdk.datasets.create(ORDERS_SCHEMA)).name == "orders"  # takes the rows over
    assert (await sdk.datasets.get("orders")).row_count == 2970
    dropped = await sdk.datasets.delete("orders")
    assert dropped.row_count == 2970
    assert (await sdk.datasets.create(ORDERS_SCHEMA)).name == "orders"
    assert (await sdk.datasets.get("orders")).row_count == 0  # a new, empty table


class _NoEvents(httpx.AsyncBaseTransport):
    """Answers /events with JSON, as a proxy that strips event streams would."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.event_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            self.event_requests += 1
            return httpx.Response(200, json={"not": "a stream"})
        return await self.inner.handle_async_request(request)


async def test_batches_name_their_owner_and_list_by_owner(settings):
    async with open_accounts(settings) as acc:
        transport = httpx.ASGITransport(app=acc.app)
        alice_token = await acc.add_user("alice", "member")
        async with (
            AsyncClient(ADMIN_TOKEN, URL, transport=transport) as admin,
            AsyncClient(alice_token, URL, transport=transport) as alice,
        ):
            await admin.datasets.create(ORDERS_SCHEMA)
            body = b"id,email\n1,a@b.c\n"
            mine = [await alice.ingest.create_batch("orders", file=io.BytesIO(body))]
            mine.append(await alice.ingest.create_batch("orders", file=io.BytesIO(body)))
            theirs = await admin.ingest.create_batch("orders", file=io.BytesIO(body))
            assert [b.owner for b in [*mine, theirs]] == ["alice", "alice", "admin"]
            seen: list[Batch] = []
            done = await alice.ingest.wait(mine[0].id, timeout=120, on_progress=seen.append)
            assert done.owner == "alice" and {b.owner for b in seen} == {"alice"}
            assert (await admin.ingest.get_batch(mine[1].id)).owner == "alice"

            by_owner = [b async for b in admin.ingest.list_batches(owner="alice", page_size=1)]
            assert [(b.id, b.owner) for b in by_owner] == [
                (mine[1].id, "alice"),
                (mine[0].id, "alice"),
            ]
            assert {b.owner async for b in admin.ingest.list_batches()} == {"alice", "admin"}
            assert [b.id async for b in alice.ingest.list_batches(owner="alice")] == [
                mine[1].id,
                mine[0].id,
            ]
            assert [b async for b in alice.ingest.list_batches(owner="admin")] == []


async def test_wait_falls_back_to_polling_without_events(settings, orders_csv):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = _NoEvents(httpx.ASGITransport(app=app))
        async with AsyncClient(ADMIN_TOKEN, URL, transport=transport) as client:
            await client.datasets.create(ORDERS_SCHEMA)
            batch = await client.ingest.create_batch("orders", file=orders_csv)
            done = await client.ingest.wait(batch.id, timeout=120, poll_interval=0.05)
    assert transport.event_requests == 1
    assert done.status == BatchStatus.COMPLETED and done.failed_operations == 30


def test_sync_client_in_process(sync_sdk, orders_csv, tmp_path):
    with orders_csv.open("rb") as f:
        created = sync_sdk.ingest.create_batch("orders", file=f, hash="auto")
    progress: list[Batch] = []
    done = sync_sdk.ingest.wait(created.id, timeout=120, on_progress=progress.append)
    assert done.status == BatchStatus.COMPLETED and done.failed_operations == 30
    assert progress and progress[-1].is_terminal
    assert sync_sdk.ingest.get_batch_status(created.id)[0].status == BatchStatus.COMPLETED
    assert [b.id for b in sync_sdk.ingest.list_batches(page_size=1)] == [created.id]
    mine = sync_sdk.ingest.list_batches(owner="admin", page_size=1)
    assert [(b.id, b.owner) for b in mine] == [(created.id, "admin")]
    assert list(sync_sdk.ingest.list_batches(owner="alice")) == []
    out = io.BytesIO()
    sync_sdk.ingest.download_failed_records(created.id, out)
    assert out.getvalue().count(b"\n") == 31
    with pytest.raises(BatchNotFound):
        sync_sdk.ingest.cancel("missing")
    assert sync_sdk.datasets.get("orders").row_count == 2970
