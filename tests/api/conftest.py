"""The HTTP contract, driven in-process (ASGI) on each backend with the real pipeline running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.api.app import create_app
from batchyard.settings import Settings
from support.backend_settings import backend_settings
from support.servers import ADMIN_TOKEN


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return backend_settings(
        backend, request, tmp_path, allow_private_sources=True, chunk_bytes=64 * 1024
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://batchyard.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as http:
            yield http


@pytest.fixture
async def orders(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.post("/datasets", json=ORDERS_SCHEMA)
    assert response.status_code == 201, response.text
    return dict(response.json())
