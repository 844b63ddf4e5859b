"""/metrics access and request ids in JSON log lines, through the app in-process."""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from batchyard.api.app import create_app
from batchyard.cli.logs import log_handler
from batchyard.settings import Settings
from support.servers import ADMIN_TOKEN

SCRAPE_TOKEN = "scrape-secret-0123456789"


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN, metrics_token=SCRAPE_TOKEN
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://by.test") as http:
            yield http


async def test_metrics_token_guards_the_scrape_when_set(app_client: httpx.AsyncClient) -> None:
    anonymous = await app_client.get("/metrics")
    admin = await app_client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    scraper = await app_client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert anonymous.status_code == admin.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    assert scraper.status_code == 200
    assert 'batchyard_batches{status="completed"} 0.0' in scraper.text


async def test_a_request_logs_with_its_request_id(
    app_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    blobs = tmp_path / "data" / "blobs"
    shutil.rmtree(blobs)
    blobs.write_text("not a directory")  # /ready logs a warning about storage
    stream = io.StringIO()
    handler = log_handler("json", stream)
    logger = logging.getLogger("batchyard")
    logger.addHandler(handler)
    try:
        answer = await app_client.get("/ready", headers={"X-Request-ID": "probe-7"})
    finally:
        logger.removeHandler(handler)
    assert answer.status_code == 503
    assert answer.headers["X-Request-ID"] == "probe-7"
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    warning = next(r for r in records if r["logger"] == "batchyard.readiness")
    assert warning["request_id"] == "probe-7"
    assert warning["level"] == "WARNING"
    assert "storage" in warning["message"]
