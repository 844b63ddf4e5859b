"""``create_app(settings)`` builds the whole HTTP service; nothing happens at import time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from batchyard import __version__
from batchyard.api.docs import install_docs
from batchyard.api.errors import install_error_handlers
from batchyard.api.routes import batches, datasets, events, files, health, users
from batchyard.service.auth import announce_admin_token, ensure_admin
from batchyard.service.container import open_services
from batchyard.service.webhooks import run_webhooks
from batchyard.settings import Settings
from batchyard.web import mount_dashboard


def create_app(settings: Settings, address: str | None = None) -> FastAPI:
    """``address``: where the server listens (``batchyard serve``), told to the operator with
    the first admin token."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            token = await ensure_admin(services.store, settings, services.secret)
            if token:
                announce_admin_token(token, settings.data_dir / "admin-token", address)
            app.state.services = services
            await services.runner.start()
            async with run_webhooks(services):
                yield

    app = FastAPI(
        title="batchyard",
        version=__version__,
        summary=(
            "Bulk imports into your own database: validated, exactly once, with per-record results."
        ),
        lifespan=lifespan,
        docs_url=None,  # served from local assets: see api/docs.py
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    for module in (health, datasets, batches, files, events, users):
        app.include_router(module.router)
    mount_dashboard(app)
    return app
