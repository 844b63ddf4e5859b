"""Deleting a batch in S3 mode: a storage failure half-way is retried, and the batch stays
visible (``deleting``) for as long as any of its objects remain."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import obstore
import pytest
from benchmarks.datagen import write_orders_csv

from batchyard.pipeline import deletion
from batchyard.settings import Settings
from batchyard.storage import blobs as blobs_module
from support.backend_settings import backend_settings
from support.s3server import STORAGE_BUCKET, S3Server
from support.waiting import wait_for_status


@pytest.fixture
def settings(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    s3_env: S3Server,
    s3_prefix: str,
) -> Settings:
    return backend_settings(
        backend,
        request,
        tmp_path,
        chunk_bytes=64 * 1024,
        storage_url=f"s3://{STORAGE_BUCKET}/{s3_prefix}",
        s3_endpoint=s3_env.endpoint,
    )


async def until(check: Any, what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_delete_failing_half_way_is_retried_and_never_looks_done(
    client: httpx.AsyncClient,
    orders: dict[str, object],
    s3_env: S3Server,
    s3_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "orders.csv"
    write_orders_csv(path, 5_000, bad_every=0)
    created = await client.post("/batches", params={"dataset": "orders"}, content=path.read_bytes())
    batch_id = created.json()["batch"]
    assert (await wait_for_status(client, batch_id))["status"] == "completed"
    prefix = f"{s3_prefix}/batches/{batch_id}/"

    async def staged_chunks_removed() -> bool:  # they go just after the batch ends
        staged = ("/chunks/", "/errors/", "/staged/")
        return not any(p in key for key in s3_env.keys(STORAGE_BUCKET, prefix) for p in staged)

    await until(staged_chunks_removed, "the staged chunks to be removed")
    stored = s3_env.keys(STORAGE_BUCKET, prefix)
    assert len(stored) == 5  # input, manifest, results, failed records, results summary

    # One key per delete request, and the storage fails from the second request on.
    monkeypatch.setattr(blobs_module, "DELETE_BATCH", 1)
    monkeypatch.setattr(deletion, "ATTEMPTS", 1000)
    monkeypatch.setattr(deletion, "MAX_WAIT_SECONDS", 0.2)
    real_delete = obstore.delete_async
    healed = asyncio.Event()
    calls = {"total": 0, "failed": 0}

    async def flaky_delete(store: Any, paths: Any) -> None:
        calls["total"] += 1
        if calls["total"] >= 2 and not healed.is_set():
            calls["failed"] += 1
            raise OSError("simulated storage outage")
        await real_delete(store, paths)

    monkeypatch.setattr(obstore, "delete_async", flaky_delete)
    assert (await client.delete(f"/batches/{batch_id}")).status_code == 202

    async def retried() -> bool:
        return calls["failed"] >= 3

    await until(retried, "three failed attempts")
    during = await client.get(f"/batches/{batch_id}")
    assert during.status_code == 200 and during.json()["status"] == "deleting"
    remaining = s3_env.keys(STORAGE_BUCKET, prefix)
    assert 0 < len(remaining) < len(stored)  # stopped half-way
    log = (await client.get(f"/batches/{batch_id}/log")).text
    assert "simulated storage outage" in log and "retrying" in log

    healed.set()

    async def gone() -> bool:
        return (await client.get(f"/batches/{batch_id}")).status_code == 404

    await until(gone, "the batch to be deleted")
    assert s3_env.keys(STORAGE_BUCKET, prefix) == []
