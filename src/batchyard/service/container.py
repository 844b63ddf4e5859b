"""Everything the use cases need, built once per process from Settings (never at import time)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import httpx

from batchyard.domain.batches import Batch
from batchyard.pipeline.context import PipelineContext
from batchyard.pipeline.http_guard import guarded_client, reach_of
from batchyard.runner.base import Runner
from batchyard.runner.embedded import EmbeddedRunner
from batchyard.runner.events import BatchEvents
from batchyard.service.auth import load_secret
from batchyard.settings import Settings
from batchyard.storage.blobs import BlobStore
from batchyard.storage.private import prepare_data_dir
from batchyard.storage.signing import UrlSigner
from batchyard.store import batch_reads
from batchyard.store.database import MetadataStore
from batchyard.store.tables import SCHEMA
from batchyard.targets import Target, open_target


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: MetadataStore
    blobs: BlobStore
    target: Target
    events: BatchEvents
    runner: Runner
    signer: UrlSigner
    secret: bytes


def _ignore(batch_id: str) -> None:
    """Workers have no event followers to wake: the API processes poll the store."""


@contextlib.asynccontextmanager
async def open_pipeline_context(
    settings: Settings, notify: Callable[[str], None] = _ignore
) -> AsyncIterator[PipelineContext]:
    """The databases, storage and HTTP client the pipeline needs (all a worker opens)."""
    prepare_data_dir(settings)
    store = await MetadataStore.open(settings.resolved_database_url())
    target = open_target(
        settings.resolved_target_url(), schema=settings.target_schema, own_schema=SCHEMA
    )
    try:
        timeout = httpx.Timeout(30.0, connect=10.0)
        async with guarded_client(reach_of(settings), timeout=timeout) as http:
            yield PipelineContext(
                settings=settings,
                store=store,
                blobs=BlobStore.from_settings(settings),
                target=target,
                http=http,
                notify=notify,
            )
    finally:
        target.close()
        await store.close()


def make_runner(ctx: PipelineContext) -> Runner:
    """The runner ``settings.runner`` names; the queue needs a PostgreSQL metadata database."""
    settings = ctx.settings
    if settings.runner == "embedded":
        return EmbeddedRunner(ctx, settings.concurrent_batches, settings.user_concurrent_batches)
    if ctx.store.dialect_name != "postgresql":
        raise ValueError(
            "BATCHYARD_RUNNER=queue needs BATCHYARD_DATABASE_URL to be a PostgreSQL database"
        )
    # Imported here: procrastinate and psycopg are about 9 MiB an embedded server never needs.
    from batchyard.runner.queue import QueueRunner

    return QueueRunner(ctx, work_here=settings.serve_worker)


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Open the databases and storage, resume unfinished batches; close everything on exit."""
    prepare_data_dir(settings)
    secret = load_secret(settings)
    events = BatchEvents()
    async with open_pipeline_context(settings, events.notify) as ctx:

        async def read_followed(batch_ids: Sequence[str]) -> dict[str, Batch]:
            async with ctx.store.read() as conn:
                return await batch_reads.get_batches(conn, batch_ids)

        events.attach(read_followed)
        runner = make_runner(ctx)
        services = Services(
            settings, ctx.store, ctx.blobs, ctx.target, events, runner, UrlSigner(secret), secret
        )
        try:
            yield services
        finally:
            await events.close()
            await runner.stop()
