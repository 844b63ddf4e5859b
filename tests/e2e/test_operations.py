"""What an operator watches: readiness, metrics and machine-readable logs of real processes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from support.servers import BatchyardServer
from support.workers import queue_env


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
