"""``create_app(settings)`` builds the whole HTTP service; nothing happens at import time."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from batchyard import __version__
from batchyard.api.docs import install_docs
from batchyard.api.errors import install_error_handlers
from batchyard.api.guards import RequestGuard
from batchyard.api.limits import Limits
from batchyard.api.middleware import RequestContext
from batchyard.api.routes import (
    batches,
    datasets,
    error_responses,
    events,
    files,
    health,
    metrics,
    operations,
    users,
)
from batchyard.service.auth import announce_admin_token, ensure_admin
from batchyard.service.container import open_services
from batchyard.service.webhooks import run_webhooks
from batchyard.settings import Settings
from batchyard.web import mount_dashboard


def create_app(
    settings: Settings, address: str | None = None, *, freeze_startup_objects: bool = False
) -> FastAPI:
    """``address``: where the server listens (``batchyard serve``), told to the operator with
    the first admin token.

    ``freeze_startup_objects`` (``batchyard serve``, one app per process): once started, the
    ~200k objects the libraries and the app made are moved out of the garbage collector's
    reach (``gc.freeze``). They live as long as the process anyway, and every full collection
    walks them all while every request in flight waits (0.7 s for one, measured on the shared
    2-core machine). Not for tests or embedders that build many apps in one process.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            token = await ensure_admin(services.store, settings, services.secret)
            if token:
                announce_admin_token(token, settings.data_dir / "admin-token", address)
            app.state.services = services
            await services.runner.start()
            if freeze_startup_objects:
                gc.collect()  # what startup left as garbage goes now, not frozen with the rest
                gc.freeze()
            async with run_webhooks(services):
                yield

    app = FastAPI(
        title="batchyard",
        version=__version__,
        summary=(
            "Bulk imports into your own database: validated, exactly once, with per-record results."
        ),
        lifespan=lifespan,
        # What the guards and the rate limit can answer on any route.
        responses=error_responses(413, 422, 429),
        docs_url=None,  # served from local assets: see api/docs.py
        redoc_url=None,
    )
    app.state.limits = Limits(settings)
    install_docs(app)
    install_error_handlers(app)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_upload_bytes)
    for module in (health, metrics, datasets, batches, files, events, operations, users):
        app.include_router(module.router)
    mount_dashboard(app)
    # Outermost, so every answer (a guard's 413 too) carries its request id.
    app.add_middleware(RequestContext)
    _complete_openapi(app)
    return app


def _complete_openapi(app: FastAPI) -> None:
    """Add the schemas hand-written request bodies refer to, so every $ref resolves."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build().setdefault("components", {}).setdefault("schemas", {})
            for name, schema in batches.COMPONENT_SCHEMAS.items():
                schemas.setdefault(name, schema)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
