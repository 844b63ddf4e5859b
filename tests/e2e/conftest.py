"""End-to-end: the real ``batchyard serve`` process driven over HTTP, as a user runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from support.servers import ADMIN_TOKEN, BatchyardServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BatchyardServer]:
    running = BatchyardServer(
        tmp_path / "data", env={"BATCHYARD_CHUNK_BYTES": str(2 * 2**20)}
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def http(server: BatchyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    ) as client:
        yield client


@pytest.fixture
def orders(http: httpx.Client) -> None:
    response = http.post("/datasets", json=ORDERS_SCHEMA)
    assert response.status_code == 201, response.text
