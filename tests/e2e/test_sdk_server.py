"""The SDK (both clients) against the real ``batchyard serve`` process, on each backend."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from batchyard import AsyncClient, Client
from batchyard.client import (
    AuthenticationFailed,
    Batch,
    BatchNotFound,
    BatchStatus,
    InvalidTransition,
    TransportError,
)
from support.backend_server import serve_backend
from support.servers import ADMIN_TOKEN, BatchyardServer, free_port

ROWS = 40_000


@pytest.fixture
def server(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[BatchyardServer]:
    with serve_backend(tmp_path, backend, request) as running:
        with Client(ADMIN_TOKEN, running.url) as client:
            client.datasets.create(ORDERS_SCHEMA)
        yield running


@pytest.fixture
def orders_csv(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    assert len(write_orders_csv(path, ROWS, bad_every=1000).bad) == 40
    return path


def test_sync_client_follows_a_batch_live_from_env_defaults(
    server, orders_csv, tmp_path, monkeypatch
):
    monkeypatch.setenv("BATCHYARD_URL", server.url)
    monkeypatch.setenv("BATCHYARD_TOKEN", ADMIN_TOKEN)
    with Client() as client:
        sent: list[int] = []
        created = client.ingest.create_batch(
            "orders", file=orders_csv, hash="auto", on_upload=lambda n, _t: sent.append(n)
        )
        assert sent[-1] == orders_csv.stat().st_size and len(sent) >= 4  # streamed in blocks
        states: list[Batch] = []
        done = client.ingest.wait(created.id, timeout=180, on_progress=states.append)

        assert done.status == BatchStatus.COMPLETED
        assert (done.successful_operations, done.failed_operations) == (ROWS - 40, 40)
        assert states[-1] == done
        processed = [s.processed_operations for s in states]
        assert processed == sorted(processed)  # each change once, in order
        assert done.completed_ts and done.completed_ts.utcoffset() is not None

        history = client.ingest.get_batch_status(created.id)
        assert history[0].status == BatchStatus.COMPLETED and history[-1].status == "new"
        failed = tmp_path / "failed.csv"
        client.ingest.download_failed_records(created.id, failed)
        with failed.open() as f:
            assert len(list(csv.DictReader(f))) == 40
        assert client.datasets.get("orders").row_count == ROWS - 40


async def test_async_client_against_the_server(server, orders_csv, tmp_path):
    async with AsyncClient(ADMIN_TOKEN, server.url) as client:
        created = await client.ingest.create_batch("orders", file=orders_csv, hash="auto")
        progress: list[Batch] = []
        done = await client.ingest.wait(created.id, timeout=180, on_progress=progress.append)
        assert done.status == BatchStatus.COMPLETED and done.failed_operations == 40
        assert progress[-1] == done

        results = tmp_path / "results.csv"
        await client.ingest.download_results(created.id, results)
        with results.open() as f:
            assert sum(1 for _ in f) == ROWS + 1

        assert [b.id async for b in client.ingest.list_batches(page_size=1)] == [created.id]
        with pytest.raises(InvalidTransition):
            await client.ingest.cancel(created.id)
        await client.ingest.delete(created.id)
        with pytest.raises(BatchNotFound):
            await client.ingest.wait(created.id, timeout=60, poll_interval=0.05)

    async with AsyncClient("not-a-token", server.url) as stranger:
        with pytest.raises(AuthenticationFailed):
            await stranger.datasets.list()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_unreachable_server_is_a_transport_error(backend):
    with (
        Client(ADMIN_TOKEN, f"http://127.0.0.1:{free_port()}", timeout=5) as client,
        pytest.raises(TransportError, match="Could not talk to the server"),
    ):
        client.datasets.list()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_wait_ends_with_a_transport_error_when_the_server_dies(server, orders_csv):
    with Client(ADMIN_TOKEN, server.url, timeout=10) as client:
        batch = client.ingest.create_batch("orders", file=orders_csv)

        def crash(_: Batch) -> None:
            server.kill()

        with pytest.raises(TransportError):
            client.ingest.wait(batch.id, timeout=120, on_progress=crash)
