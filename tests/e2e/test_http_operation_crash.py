"""At least once, with the same keys: an http batch in queue mode whose worker is killed with
SIGKILL mid-batch completes, every record reached the receiver, and every Idempotency-Key names
exactly one record; records of the chunk in flight may arrive twice, never under another key."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import httpx

from support.operation_receiver import OperationReceiver, answer_for
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.waiting import wait_for_status_sync
from support.workers import WorkerProcess, queue_env

RECORDS = 600
ITEMS = {
    "name": "items",
    "columns": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}],
}


def slowly(record_id: int) -> tuple[str, float | None]:
    return "slow", 0.02


def test_a_killed_worker_resends_with_the_same_keys(tmp_path: Path, pg_url: str) -> None:
    data_dir = tmp_path / "data"
    env = queue_env(
        pg_url,
        data_dir,
        BATCHYARD_CHUNK_RECORDS="100",
        BATCHYARD_ALLOW_PRIVATE_SOURCES="true",
    )
    api = BatchyardServer(data_dir, env=env).start()
    worker = WorkerProcess(data_dir, env, "worker").start()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, RECORDS + 1))
    try:
        with (
            OperationReceiver(slowly) as receiver,
            httpx.Client(base_url=api.url, headers=headers, timeout=60) as http,
        ):
            assert http.post("/datasets", json=ITEMS).status_code == 201
            created = http.post(
                "/batches",
                params={
                    "dataset": "items",
                    "operation": "http",
                    "options": json.dumps({"operation": {"url": receiver.url, "concurrency": 2}}),
                },
                content=body.encode(),
            )
            assert created.status_code == 202, created.text
            batch_id = created.json()["batch"]
            deadline = time.monotonic() + 60
            while len(receiver.requests()) < 250:  # mid-batch: some chunks committed, one sending
                assert time.monotonic() < deadline, "the receiver never got going"
                time.sleep(0.01)
            worker.kill()
            sent_before_kill = len(receiver.requests())
            worker.start()
            batch = wait_for_status_sync(http, batch_id, timeout=180)
            results = http.get(f"/batches/{batch_id}/results", params={"format": "jsonl"})
            seen = receiver.requests()
    finally:
        worker.stop()
        api.stop()

    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == RECORDS
    keys: dict[str, set[int]] = {}
    for request in seen:
        keys.setdefault(request.key, set()).add(request.record["id"])
    assert keys == {f"{batch_id}:{i}": {i} for i in range(1, RECORDS + 1)}
    sent = Counter(r.record["id"] for r in seen)
    assert len(seen) >= RECORDS and sent_before_kill < RECORDS
    again = {i for i, n in sent.items() if n > 1}
    assert again, "the kill landed mid-chunk: that chunk's records must have been sent again"
    # Only the chunks in flight at the kill (one per stream: 3 streams of 100 records) again.
    assert max(sent.values()) == 2 and len(again) <= 3 * 100
    rows = [json.loads(line) for line in results.text.splitlines()]
    assert [r["output"] for r in rows] == [
        answer_for({"id": i, "name": f"n{i}"}) for i in range(1, RECORDS + 1)
    ]
