"""Exactly once under crashes: workers killed with SIGKILL at random moments while several batches
run, restarted at once; every batch must complete with the target holding exactly its rows."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from support.servers import ADMIN_TOKEN, BatchyardServer
from support.uploads import upload
from support.waiting import TERMINAL
from support.workers import WorkerProcess, live_jobs_after, queue_deployment

BATCHES = 10
ROWS = 50_000


def _split(path: Path, parts: int, rows: int) -> list[Path]:
    """Cut the generated file into ``parts`` files of consecutive records (disjoint ids)."""
    lines = path.read_bytes().split(b"\n")
    header, records = lines[0], lines[1 : rows + 1]
    per = rows // parts
    paths = []
    for n in range(parts):
        part = path.with_name(f"part-{n}.csv")
        part.write_bytes(b"\n".join([header, *records[n * per : (n + 1) * per]]) + b"\n")
        paths.append(part)
    return paths


#: Kills per test: enough to land in every stage, few enough to finish on 2 busy cores.
MAX_KILLS = 5


class Killer(threading.Thread):
    """Kills a random worker every 1-3 s with SIGKILL and starts it again, MAX_KILLS times."""

    def __init__(self, workers: list[WorkerProcess], seed: int) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.rng = random.Random(seed)
        self.done = threading.Event()
        self.kills = 0

    def run(self) -> None:
        while self.kills < MAX_KILLS and not self.done.wait(self.rng.uniform(1.0, 3.0)):
            worker = self.rng.choice(self.workers)
            worker.kill()
            self.kills += 1
            worker.start()


@pytest.fixture
def deployment(
    tmp_path: Path, pg_url: str
) -> Iterator[tuple[BatchyardServer, list[WorkerProcess]]]:
    with queue_deployment(pg_url, tmp_path / "data", chunk_bytes=128 * 1024) as running:
        yield running


def _wait_all(http: httpx.Client, ids: list[str], within: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + within
    while True:
        batches = [http.get(f"/batches/{batch_id}").json() for batch_id in ids]
        if all(b["status"] in TERMINAL for b in batches):
            return batches
        if time.monotonic() > deadline:
            raise TimeoutError(f"not finished after {within}s: {[b['status'] for b in batches]}")
        time.sleep(0.2)


@pytest.mark.slow
def test_kill_minus_9_at_random_moments_loses_and_duplicates_nothing(deployment, pg_url, tmp_path):
    api, workers = deployment
    source = tmp_path / "orders.csv"
    expected = write_orders_csv(source, BATCHES * ROWS, bad_every=97)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    killer = Killer(workers, seed=int(time.time()))
    with httpx.Client(base_url=api.url, headers=headers, timeout=60) as http:
        assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        killer.start()
        try:
            ids = [
                str(upload(http, part)["batch"]) for part in _split(source, BATCHES, BATCHES * ROWS)
            ]
            batches = _wait_all(http, ids, within=240)
        finally:
            killer.done.set()
            killer.join()
        logs = {b["batch"]: http.get(f"/batches/{b['batch']}/log").text for b in batches}

    assert killer.kills >= 2, "the test must actually kill workers"
    per = ROWS
    with psycopg.connect(pg_url) as conn:
        total = conn.execute("SELECT count(*), count(DISTINCT id) FROM orders").fetchone()
        for n, batch in enumerate(batches):
            assert batch["status"] == "completed", (batch, logs[batch["batch"]])
            first, last = n * per + 1, (n + 1) * per
            bad = sum(1 for number in expected.bad if first <= number <= last)
            in_table = conn.execute(
                "SELECT count(*) FROM orders WHERE id BETWEEN %s AND %s", (first, last)
            ).fetchone()
            assert batch["successful_operations"] == per - bad == in_table[0], logs[batch["batch"]]
            assert batch["failed_operations"] == bad
            assert batch["processed_operations"] == batch["total_operations"] == per
            missing = conn.execute(
                "SELECT count(*) FROM generate_series(%s::bigint, %s::bigint) AS g(id)"
                " WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = g.id)",
                (first, last),
            ).fetchone()
            assert missing[0] == bad  # every valid key present, every invalid one absent
    assert total[0] == total[1] == expected.good  # no duplicate keys, nothing lost
    # A helper killed with its worker may outlive its batch: the sweep hands it back within
    # seconds, and it ends at once. Nothing may stay queued or running for good.
    assert live_jobs_after(pg_url, within=30) == []
