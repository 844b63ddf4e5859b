"""What an operator watches, on a real queue-mode deployment: metrics, JSON logs, readiness."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv
from prometheus_client.parser import text_string_to_metric_families

from batchyard.domain.statuses import TERMINAL
from support.servers import ADMIN_TOKEN, BatchyardServer, free_port
from support.uploads import upload
from support.waiting import wait_for_status_sync
from support.workers import WorkerProcess, queue_env

_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_TERMINAL_NAMES = {status.value for status in TERMINAL}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Deployment:
    """An API-only server and one worker, both logging JSON at info level; the worker serves
    its metrics on ``metrics_port``."""

    def __init__(self, data: Path, pg_url: str) -> None:
        env = queue_env(pg_url, data, BATCHYARD_LOG_FORMAT="json")
        self.metrics_port = free_port()
        self.api = BatchyardServer(data, env=env, log_level="info")
        args = ["--log-level", "info", "--metrics-port", str(self.metrics_port)]
        self.worker = WorkerProcess(data, env, "worker", args=args)


@pytest.fixture
def deployment(tmp_path: Path, pg_url: str) -> Iterator[Deployment]:
    running = Deployment(tmp_path / "data", pg_url)
    try:
        running.api.start()
        running.worker.start()
        yield running
    finally:
        running.worker.stop()
        running.api.stop()


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _unfinished(samples: Samples) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "batchyard_batches" and dict(labels)["status"] not in _TERMINAL_NAMES
    )


def test_an_operator_watches_metrics_logs_and_readiness(
    deployment: Deployment, tmp_path: Path, pg_url: str
) -> None:
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 3_000, bad_every=100)
    with httpx.Client(base_url=deployment.api.url, headers=_ADMIN, timeout=60) as http:
        assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        batch_id = str(upload(http, path)["batch"])
        during = _samples(http.get("/metrics").text)
        batch = wait_for_status_sync(http, batch_id)
        answer = http.get("/metrics")
        echoed = http.get("/health", headers={"X-Request-ID": "req-from-proxy-1"})
    worker_url = f"http://127.0.0.1:{deployment.metrics_port}/metrics"
    from_worker = _samples(httpx.get(worker_url, timeout=30).text)
    deployment.worker.stop()  # before its database goes away below
    _check_readiness(deployment.api, pg_url, tmp_path / "data" / "blobs")
    deployment.api.stop()

    assert batch["status"] == "completed", batch
    assert batch["failed_operations"] == len(expected.bad) > 0
    assert _unfinished(during) == 1  # the batch, in whichever status it was then
    # the deployment's state, read from the database by the API
    assert answer.headers["content-type"].startswith("text/plain")
    from_api = _samples(answer.text)
    assert from_api["batchyard_batches", (("status", "completed"),)] == 1
    assert _unfinished(from_api) == 0
    assert from_api["batchyard_queue_live_workers", ()] == 1
    assert ("batchyard_queue_jobs", (("state", "queued"),)) in from_api
    assert ("batchyard_queue_oldest_job_age_seconds", ()) in from_api
    # what the API did: received the upload, answered requests by route template
    assert from_api["batchyard_input_bytes_total", ()] == path.stat().st_size
    route = (("method", "GET"), ("route", "/batches/{batch_id}"), ("status", "200"))
    assert from_api["batchyard_http_requests_total", route] >= 1
    # what the worker did: ran the batch
    assert from_worker["batchyard_batches_ended_total", (("status", "completed"),)] == 1
    assert from_worker["batchyard_records_processed_total", ()] == batch["processed_operations"]
    assert from_worker["batchyard_records_failed_total", ()] == batch["failed_operations"]
    for stage in ("validating", "processing", "writing_results"):
        assert from_worker["batchyard_stage_duration_seconds_count", (("stage", stage),)] == 1

    assert echoed.headers["X-Request-ID"] == "req-from-proxy-1"
    _check_json_logs(deployment, batch_id)


def _check_readiness(api: BatchyardServer, pg_url: str, blobs: Path) -> None:
    ready = httpx.get(f"{api.url}/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["checks"]) == {"database", "storage", "queue"}

    shutil.rmtree(blobs)
    blobs.write_text("not a directory")  # storage can no longer be written
    down = httpx.get(f"{api.url}/ready", timeout=30)
    assert down.status_code == 503, down.text
    assert down.json()["down"] == ["storage"]

    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    down = httpx.get(f"{api.url}/ready", timeout=30)
    assert down.status_code == 503, down.text
    assert set(down.json()["down"]) == {"database", "storage", "queue"}
    assert "127.0.0.1" not in down.text  # no addresses for whoever asks without a token
    assert httpx.get(f"{api.url}/health", timeout=30).status_code == 200  # still alive


def _check_json_logs(deployment: Deployment, batch_id: str) -> None:
    api_lines = deployment.api.log_path.read_text().splitlines()
    worker_lines = deployment.worker.log_path.read_text().splitlines()
    api_records = [json.loads(line) for line in api_lines]  # every line, or this raises
    worker_records = [json.loads(line) for line in worker_lines]
    for record in api_records + worker_records:
        assert {"timestamp", "level", "logger", "message", "batch_id", "request_id"} <= set(record)
    about_batch = [r for r in worker_records if r["batch_id"] == batch_id]
    assert any(r["message"].startswith(f"batch {batch_id}: Validated") for r in about_batch)
    assert all(r["request_id"] is None for r in about_batch)  # a worker's job is no request
    readiness = [r for r in api_records if r["logger"] == "batchyard.readiness"]
    assert readiness and all(len(r["request_id"]) == 32 for r in readiness)
