"""End-to-end: the real ``batchyard serve`` process driven over HTTP, as a user runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA
from playwright.sync_api import Browser, sync_playwright

from support.browser import OfflineContext, launch_chromium, offline_context
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


# The dashboard's browser tests: one Chromium per module, and each page kept on the server (any
# request that leaves it fails the test). Each module brings its own ``server``.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def offline(browser: Browser, server: BatchyardServer) -> Iterator[OfflineContext]:
    with offline_context(browser, server.url) as context:
        yield context
    assert context.blocked == [], f"the page tried to leave the server: {context.blocked}"
