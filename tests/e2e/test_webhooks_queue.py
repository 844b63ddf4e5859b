"""Webhooks in production mode: workers run the batch, the API process delivers the webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from batchyard.service.webhooks import SIGNATURE_HEADER, verify
from support.receiver import Receiver
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.uploads import upload
from support.waiting import wait_for_status_sync
from support.workers import WorkerProcess, queue_env


@pytest.fixture
def http(tmp_path: Path, pg_url: str) -> Iterator[httpx.Client]:
    data = tmp_path / "data"
    env = queue_env(pg_url, data, BATCHYARD_WEBHOOK_BACKOFF="0.1")
    api = BatchyardServer(data, env=env)
    worker = WorkerProcess(data, env, "worker")
    try:
        api.start()
        worker.start()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
            assert client.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
            yield client
    finally:
        worker.stop()
        api.stop()


def test_worker_run_batch_is_announced_with_a_signed_retried_webhook(http, tmp_path):
    path = tmp_path / "orders.csv"
    write_orders_csv(path, 2_000, bad_every=100)
    secret = http.get("/me/webhook-secret").json()["secret"]
    with Receiver(fail_first=1) as receiver:
        batch_id = str(upload(http, path, notify_url=f"{receiver.url}/done")["batch"])
        assert wait_for_status_sync(http, batch_id)["status"] == "completed"
        deadline = time.monotonic() + 60
        log = ""
        while "delivered" not in log and time.monotonic() < deadline:
            time.sleep(0.1)
            log = http.get(f"/batches/{batch_id}/log").text

    assert [d.status for d in receiver.deliveries] == [503, 204]
    delivery = receiver.succeeded()[0]
    signature = next(
        v for k, v in delivery.headers.items() if k.lower() == SIGNATURE_HEADER.lower()
    )
    assert verify(secret, signature, delivery.body)
    assert "(attempt 1/6): HTTP 503" in log and "(attempt 2/6) delivered: HTTP 204" in log
