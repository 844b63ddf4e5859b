"""What an operator watches: readiness, metrics and machine-readable logs of real processes."""

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
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.uploads import upload
from support.waiting import wait_for_status_sync
from support.workers import queue_env

_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def queue_api(tmp_path: Path, pg_url: str) -> Iterator[BatchyardServer]:
    """An API-only server in queue mode on its own PostgreSQL database."""
    server = BatchyardServer(tmp_path / "data", env=queue_env(pg_url, tmp_path / "data"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_ready_checks_database_storage_and_queue_and_names_what_is_down(
    queue_api: BatchyardServer, pg_url: str, tmp_path: Path
) -> None:
    ready = httpx.get(f"{queue_api.url}/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["checks"]) == {"database", "storage", "queue"}

    blobs = tmp_path / "data" / "blobs"
    shutil.rmtree(blobs)
    blobs.write_text("not a directory")  # storage can no longer be written
    down = httpx.get(f"{queue_api.url}/ready", timeout=30)
    assert down.status_code == 503, down.text
    assert down.json()["down"] == ["storage"]

    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    down = httpx.get(f"{queue_api.url}/ready", timeout=30)
    assert down.status_code == 503, down.text
    assert set(down.json()["down"]) == {"database", "storage", "queue"}
    assert "127.0.0.1" not in down.text  # no addresses for whoever asks without a token
    assert httpx.get(f"{queue_api.url}/health", timeout=30).status_code == 200  # still alive


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchyardServer]:
    """An embedded server logging JSON at info level, with one import done through it."""
    data = tmp_path_factory.mktemp("json") / "data"
    server = BatchyardServer(data, env={"BATCHYARD_LOG_FORMAT": "json"}, log_level="info")
    server.start()
    try:
        yield server
    finally:
        server.stop()


TERMINAL_NAMES = {status.value for status in TERMINAL}


def wait_for_idle(http: httpx.Client) -> None:
    for listed in http.get("/batches").json()["batches"]:
        wait_for_status_sync(http, str(listed["batch"]))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_an_import_match_the_batch(
    json_server: BatchyardServer, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 5_000, bad_every=100)
    with httpx.Client(base_url=json_server.url, headers=_ADMIN, timeout=60) as http:
        assert http.post("/datasets", json=ORDERS_SCHEMA).status_code in (201, 409)
        wait_for_idle(http)  # other tests' batches on this server have ended
        before = _samples(http.get("/metrics").text)
        batch_id = str(upload(http, path)["batch"])
        during = _samples(http.get("/metrics").text)
        batch = wait_for_status_sync(http, batch_id)
        after = http.get("/metrics")

    def grew(name: str, *labels: tuple[str, str]) -> float:
        return samples[name, labels] - before.get((name, labels), 0.0)

    def unfinished(snapshot: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
        return sum(
            value
            for (name, labels), value in snapshot.items()
            if name == "batchyard_batches" and dict(labels)["status"] not in TERMINAL_NAMES
        )

    assert unfinished(during) - unfinished(before) == 1  # the batch, whatever its status then
    assert batch["status"] == "completed", batch
    assert after.headers["content-type"].startswith("text/plain")
    samples = _samples(after.text)
    assert grew("batchyard_batches", ("status", "completed")) == 1
    assert grew("batchyard_batches_ended_total", ("status", "completed")) == 1
    assert grew("batchyard_records_processed_total") == batch["processed_operations"] == 5_000
    assert grew("batchyard_records_failed_total") == batch["failed_operations"]
    assert batch["failed_operations"] == len(expected.bad) > 0
    assert grew("batchyard_input_bytes_total") == path.stat().st_size
    for stage in ("validating", "processing", "writing_results"):
        assert grew("batchyard_stage_duration_seconds_count", ("stage", stage)) == 1
    route = (("method", "GET"), ("route", "/batches/{batch_id}"), ("status", "200"))
    assert samples["batchyard_http_requests_total", route] >= 1


def test_json_logs_are_one_object_per_line_with_batch_and_request_ids(
    json_server: BatchyardServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=json_server.url, headers=_ADMIN, timeout=60) as http:
        missing = http.get("/batches/nope", headers={"X-Request-ID": "req-from-proxy-1"})
        minted = http.get("/health")
        http.post("/datasets", json=ORDERS_SCHEMA)  # 409 when the test above ran first
        path = tmp_path / "orders.csv"
        write_orders_csv(path, 300, bad_every=100)
        batch_id = str(upload(http, path)["batch"])
        wait_for_status_sync(http, batch_id)
    assert missing.headers["X-Request-ID"] == "req-from-proxy-1"
    assert len(minted.headers["X-Request-ID"]) == 32  # one made up when none was sent

    lines = json_server.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line, or this raises
    assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in records)
    about_batch = [r for r in records if r["batch_id"] == batch_id]
    assert any("Validated" in r["message"] for r in about_batch), about_batch
    assert all(r["request_id"] is None for r in about_batch)  # the pipeline is no request
