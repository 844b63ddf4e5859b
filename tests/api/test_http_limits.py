"""The http operation's concurrency and rate_per_second hold for the whole batch, however many
streams apply its chunks (options.parallel_streams; on PostgreSQL they run side by side), as
the receiver sees them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from batchyard.settings import Settings
from support.operation_receiver import OperationReceiver
from support.waiting import wait_for_status

ITEMS = {
    "name": "items",
    "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": False}],
}
#: Records per chunk: a batch of a few hundred records is many chunks, shared by the streams.
CHUNK_RECORDS = 10


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"chunk_records": CHUNK_RECORDS})


async def sent(client: httpx.AsyncClient, records: int, operation: dict[str, Any]) -> None:
    """Send ``records`` records in three streams with ``operation`` settings; all arrive."""
    assert (await client.post("/datasets", json=ITEMS)).status_code == 201
    body = ("id\n" + "".join(f"{i}\n" for i in range(1, records + 1))).encode()
    options = {"operation": operation, "parallel_streams": 3}
    created = await client.post(
        "/batches",
        params={"dataset": "items", "operation": "http", "options": json.dumps(options)},
        content=body,
        headers={"Content-Type": "text/csv"},
    )
    assert created.status_code == 202, created.text
    batch = await wait_for_status(client, created.json()["batch"], within=120)
    assert (batch["status"], batch["successful_operations"]) == ("completed", records), batch


async def test_concurrency_holds_across_the_batchs_streams(client: httpx.AsyncClient) -> None:
    with OperationReceiver(lambda _: ("slow", 0.05)) as receiver:
        await sent(client, 120, {"url": receiver.url, "concurrency": 2})
    assert len(receiver.requests()) == 120
    assert receiver.most_in_flight == 2, "more requests at once than options.operation allows"


async def test_rate_holds_across_the_batchs_streams(client: httpx.AsyncClient) -> None:
    with OperationReceiver(lambda _: ("ok", None)) as receiver:
        await sent(client, 60, {"url": receiver.url, "rate_per_second": 20})
    started = sorted(receiver.started)
    assert len(started) == 60
    # At 20 a second, one second holds 20 starts (three streams each pacing themselves would
    # start up to 60); some slack for the receiver's threads, which share the server's GIL.
    busiest = max(
        sum(1 for later in started[i:] if later < first + 1.0) for i, first in enumerate(started)
    )
    span = started[-1] - started[0]
    assert busiest <= 25, f"{busiest} requests started within a second ({span:.2f} s in all)"
    assert span >= 2.5, span  # 60 starts at 20 a second span 2.95 s
