"""BATCHYARD_RETENTION_DAYS: ended batches are deleted once the period is over; rows stay."""

from __future__ import annotations

import asyncio
import time

import pytest

from batchyard.settings import Settings
from support.waiting import wait_for_status

RETENTION_SECONDS = 3.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"retention_days": RETENTION_SECONDS / 86_400})


async def test_an_ended_batch_is_deleted_after_the_retention_period_and_its_rows_stay(
    client, orders, settings
):
    response = await client.post(
        "/batches", params={"dataset": "orders"}, content=b"id,email\n1,a@x.io\n2,b@x.io\n"
    )
    batch = await wait_for_status(client, response.json()["batch"])
    ended = time.monotonic()
    assert batch["status"] == "completed"
    assert (await client.get(f"/batches/{batch['batch']}")).status_code == 200  # not yet

    while time.monotonic() - ended < RETENTION_SECONDS + 20:
        if (await client.get(f"/batches/{batch['batch']}")).status_code == 404:
            break
        await asyncio.sleep(0.1)
    # Counted from the batch's own end, not from when this client saw it: on a loaded machine
    # the poll that saw `completed` can return seconds after the batch ended.
    gone_after = time.time() - batch["completed_ts"]

    assert (await client.get(f"/batches/{batch['batch']}")).status_code == 404
    assert gone_after > RETENTION_SECONDS - 0.5  # …and not before the period was over
    assert (await client.get("/batches")).json()["batches"] == []
    assert (await client.get("/datasets/orders")).json()["row_count"] == 2
    assert not (settings.data_dir / "blobs" / "batches" / batch["batch"]).exists()
