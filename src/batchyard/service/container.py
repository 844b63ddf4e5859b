"""Everything the use cases need, built once per process from Settings (never at import time)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from batchyard.pipeline.context import PipelineContext
from batchyard.runner.embedded import EmbeddedRunner
from batchyard.runner.events import BatchEvents
from batchyard.service.auth import load_secret
from batchyard.settings import Settings
from batchyard.storage.blobs import BlobStore
from batchyard.storage.signing import UrlSigner
from batchyard.store.database import MetadataStore
from batchyard.targets import Target, open_target


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: MetadataStore
    blobs: BlobStore
    target: Target
    events: BatchEvents
    runner: EmbeddedRunner
    signer: UrlSigner
    secret: bytes


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Open the databases and storage, resume unfinished batches; close everything on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = load_secret(settings)
    store = await MetadataStore.open(settings.resolved_database_url())
    target = open_target(settings.resolved_target_url())
    events = BatchEvents()
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
        ctx = PipelineContext(
            settings=settings,
            store=store,
            blobs=BlobStore.from_settings(settings),
            target=target,
            http=http,
            notify=events.notify,
        )
        runner = EmbeddedRunner(ctx, settings.concurrent_batches)
        services = Services(
            settings, store, ctx.blobs, target, events, runner, UrlSigner(secret), secret
        )
        try:
            yield services
        finally:
            await runner.stop()
            target.close()
            await store.close()
