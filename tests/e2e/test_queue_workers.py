"""Production mode with real processes: an API-only server and `batchyard worker` processes
sharing one PostgreSQL database through the job queue."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from support.servers import ADMIN_TOKEN, BatchyardServer
from support.uploads import upload
from support.waiting import wait_for_status_sync, wait_until_applying_sync
from support.workers import WorkerProcess, live_jobs_after, queue_deployment, queue_env

_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def deployment(
    tmp_path: Path, pg_url: str
) -> Iterator[tuple[BatchyardServer, list[WorkerProcess]]]:
    with queue_deployment(pg_url, tmp_path / "data", chunk_bytes=256 * 1024) as running:
        yield running


@pytest.fixture
def http(deployment: tuple[BatchyardServer, list[WorkerProcess]]) -> Iterator[httpx.Client]:
    api, _ = deployment
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
        assert client.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        yield client


def test_api_only_server_enqueues_and_workers_complete_the_batch(http, pg_url, tmp_path):
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 30_000, bad_every=100)
    batch = wait_for_status_sync(http, str(upload(http, path)["batch"]))

    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == expected.good
    assert batch["failed_operations"] == len(expected.bad)
    assert http.get("/datasets/orders").json()["row_count"] == expected.good
    results = http.get(f"/batches/{batch['batch']}/results").text.splitlines()
    assert len(results) == 30_001  # header + one line per record
    # the batch's job and its helpers succeeded (and were removed): none is left behind
    assert live_jobs_after(pg_url, within=10) == []


def test_a_dry_run_on_the_workers_writes_nothing_and_reports_what_a_real_run_would(
    http, pg_url, tmp_path
):
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 30_000, bad_every=100)
    dry = wait_for_status_sync(http, str(upload(http, path, options='{"dry_run": true}')["batch"]))

    assert dry["status"] == "completed" and dry["dry_run"] is True, dry
    assert dry["successful_operations"] == expected.good
    assert dry["failed_operations"] == len(expected.bad)
    assert http.get("/datasets/orders").json()["row_count"] == 0
    with psycopg.connect(pg_url) as conn:
        ledger = conn.execute(
            "SELECT count(*) FROM batchyard._batchyard_ledger WHERE batch_id = %s", (dry["batch"],)
        ).fetchone()
    assert ledger == (0,)  # no chunk of a dry run is ever recorded as applied
    real = wait_for_status_sync(http, str(upload(http, path)["batch"]))
    assert real["successful_operations"] == expected.good, real
    dry_results = http.get(f"/batches/{dry['batch']}/results").text.splitlines()
    real_results = http.get(f"/batches/{real['batch']}/results").text.splitlines()
    assert len(dry_results) == 30_001 and dry_results == real_results


#: The most a worker may hold at its peak, at default settings (issue #15).
WORKER_PEAK_RSS_BOUND = 300 * 10**6


def test_a_worker_stays_under_300_mb_at_default_settings(tmp_path, pg_url):
    """The worker processes that run a 500k-row (50 MB) batch between them, API-only server in
    front, each peak under 300 MB at default settings: chunks stream through them."""
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 500_000, bad_every=0)
    with (
        queue_deployment(pg_url, tmp_path / "data", chunk_bytes=None) as (api, workers),
        httpx.Client(base_url=api.url, headers=_ADMIN, timeout=120) as http,
    ):
        assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        batch = wait_for_status_sync(http, str(upload(http, path)["batch"]), timeout=300)
        peaks = [worker.peak_rss_bytes() for worker in workers]
    assert batch["status"] == "completed"
    assert batch["successful_operations"] == expected.good
    assert max(peaks) < WORKER_PEAK_RSS_BOUND, (
        f"workers' peak RSS: {[p // 10**6 for p in peaks]} MB"
    )


def test_a_big_batch_is_shared_by_both_workers(tmp_path, pg_url):
    """One job per worker at a time: the batch's own job holds one worker, so the chunks the
    other worker applies can only come from a helper job it took from the queue.

    With options.max_errors no chunk is applied before validation has finished (the limit
    promises nothing is applied when exceeded), so all 150 chunks are there to share."""
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 200_000, bad_every=101)
    args = ("--concurrency", "1", "--log-level", "info")
    with (
        queue_deployment(pg_url, tmp_path / "data", chunk_bytes=128 * 1024, worker_args=args) as (
            api,
            workers,
        ),
        httpx.Client(base_url=api.url, headers=_ADMIN, timeout=60) as http,
    ):
        assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        created = upload(http, path, options='{"max_errors": 5000}')
        batch = wait_for_status_sync(http, str(created["batch"]), timeout=180)
        log = http.get(f"/batches/{batch['batch']}/log").text
        worker_logs = [w.log_path.read_text() for w in workers]

    assert batch["status"] == "completed", log
    assert batch["successful_operations"] == expected.good, log
    assert batch["failed_operations"] == len(expected.bad)
    with psycopg.connect(pg_url) as conn:
        rows, keys = conn.execute("SELECT count(*), count(DISTINCT id) FROM orders").fetchone()
    assert rows == keys == expected.good  # shared, yet every record applied exactly once
    assert "helper job(s) that any worker may take" in log
    applied_by = [_chunks_applied(text, batch["batch"]) for text in worker_logs]
    assert all(applied_by), f"chunks applied per worker: {applied_by}\n{log}"


def _chunks_applied(worker_log: str, batch_id: str) -> int:
    """Chunks a worker's process log says it applied for the batch (own job or helpers)."""
    own = f"batch {batch_id}: Sharing" in worker_log
    helped = re.findall(rf"batch {batch_id}: Helper \S+ applied (\d+) chunk", worker_log)
    return int(own) + sum(int(n) for n in helped)


@pytest.mark.parametrize(
    ("options", "status"),
    [
        pytest.param("{}", "validating", id="chunks-applied-while-validating"),
        # max_errors holds every chunk back until validation ends: helpers share them then
        pytest.param('{"max_errors": 100}', "processing", id="chunks-shared-with-helpers"),
    ],
)
def test_cancel_stops_a_batch_running_in_another_process(http, tmp_path, options, status):
    path = tmp_path / "orders.csv"
    write_orders_csv(path, 200_000, bad_every=0)
    batch_id = str(upload(http, path, options=options)["batch"])
    wait_until_applying_sync(http, batch_id, status)

    response = http.post(f"/batches/{batch_id}/cancel")
    assert response.status_code == 202, f"the batch finished before the cancel: {response.text}"
    batch = wait_for_status_sync(http, batch_id, timeout=60)

    assert batch["status"] == "cancelled"
    history = [h["status"] for h in http.get(f"/batches/{batch_id}/history").json()]
    assert history[:3] == ["cancelled", "cancelling", "cancel"]
    loaded = http.get("/datasets/orders").json()["row_count"]
    assert loaded < 200_000
    assert loaded == batch["successful_operations"]  # what is reported is what was applied


def test_a_batch_left_by_a_killed_worker_finishes_on_the_other(http, deployment, tmp_path):
    _, workers = deployment
    workers[1].stop()  # one worker takes the batch, so killing it surely interrupts it
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 100_000, bad_every=0)
    batch_id = str(upload(http, path)["batch"])
    wait_for_status_sync(http, batch_id, {"validating", "processing"}, timeout=60)
    workers[0].kill()
    started = time.monotonic()
    workers[1].start()

    batch = wait_for_status_sync(http, batch_id, timeout=120)

    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == expected.good
    assert http.get("/datasets/orders").json()["row_count"] == expected.good
    log = http.get(f"/batches/{batch_id}/log").text
    assert time.monotonic() - started < 120, log


@contextlib.contextmanager
def _serving_alone(pg_url: str, data: Path, **env: str) -> Iterator[httpx.Client]:
    """`serve` working the queue with its own worker, the orders dataset declared."""
    settings = queue_env(pg_url, data, BATCHYARD_SERVE_WORKER="true", **env)
    server = BatchyardServer(data, env=settings).start()
    try:
        with httpx.Client(base_url=server.url, headers=_ADMIN, timeout=60) as http:
            assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
            yield http
    finally:
        server.stop()


def test_serve_with_its_own_worker_runs_the_queue_alone(tmp_path, pg_url):
    with _serving_alone(pg_url, tmp_path / "solo") as http:
        path = tmp_path / "orders.csv"
        expected = write_orders_csv(path, 5_000, bad_every=50)
        batch = wait_for_status_sync(http, str(upload(http, path)["batch"]))
        assert batch["status"] == "completed", batch
        assert batch["successful_operations"] == expected.good
        assert http.get("/datasets/orders").json()["row_count"] == expected.good


def test_workers_delete_batches_past_the_retention_period(tmp_path, pg_url):
    """In queue mode the workers' sweep applies BATCHYARD_RETENTION_DAYS (here 3 s)."""
    data = tmp_path / "retention"
    with _serving_alone(pg_url, data, BATCHYARD_RETENTION_DAYS=str(3 / 86_400)) as http:
        path = tmp_path / "orders.csv"
        expected = write_orders_csv(path, 2_000, bad_every=0)
        batch = wait_for_status_sync(http, str(upload(http, path)["batch"]))
        assert batch["status"] == "completed", batch
        deadline = time.monotonic() + 30
        while http.get(f"/batches/{batch['batch']}").status_code != 404:
            assert time.monotonic() < deadline, "the batch outlived its retention period"
            time.sleep(0.2)
        assert http.get("/datasets/orders").json()["row_count"] == expected.rows
        assert not list((data / "blobs").rglob(f"*{batch['batch']}*"))
        assert live_jobs_after(pg_url, within=10) == []  # the deletion job ran and ended
