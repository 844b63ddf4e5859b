"""What workers run: a batch's pipeline, its helpers, a batch's deletion, and the periodic sweep.

A processing insert batch fans out: its own job queues helper jobs (up to its parallel_streams,
itself included) that any worker may take, and they apply its chunks side by side. A batch's
job that finds its owner already running their share of batches queues itself again for later
(``wait_for_turn``), so one user's backlog never takes every worker.

The sweep is what keeps invariant 3 (nothing is stuck) when workers die: it hands the jobs of
workers whose heartbeat stopped back to the queue, and queues a job for any batch that still has
work but no job at all (one whose job ended by an error outside the pipeline, say). Resuming is
safe at any point because the pipeline resumes from the batch's status and the target's ledger
skips chunks already committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import procrastinate
from procrastinate.exceptions import ProcrastinateException
from procrastinate.job_context import JobContext
from procrastinate.worker import Worker
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.errors import BatchNotFound
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline.context import PipelineContext
from batchyard.pipeline.deletion import delete_batch_data
from batchyard.pipeline.run import help_batch, run_batch
from batchyard.runner.queue_schema import libpq_url
from batchyard.runner.queue_sql import (
    DELETE_BATCH,
    HELP_BATCH,
    QUEUE,
    RUN_BATCH,
    SWEEP,
    batches_with_live_jobs,
    defer_helpers,
    defer_job,
    owner_jobs,
)
from batchyard.runner.retention import expire_batches
from batchyard.store import batches as batch_rows

logger = logging.getLogger("batchyard.worker")

#: A job that raised outside the pipeline's own error handling (metadata database down…) is
#: tried again this many times, a little later each time; the sweep queues it again after that.
_RETRY = procrastinate.RetryStrategy(max_attempts=5, linear_wait=2)
#: Seconds a stopping worker lets its jobs finish before aborting them (they resume elsewhere).
_SHUTDOWN_GRACE = 10.0
#: Batches whose run has not begun: they wait for their owner's turn; others go on at once.
_NOT_STARTED = frozenset({BatchStatus.NEW, BatchStatus.COPIED})


def build_app(ctx: PipelineContext) -> procrastinate.App:
    """A procrastinate app whose tasks run ``ctx``'s pipeline."""
    settings = ctx.settings
    ctx = dataclasses.replace(ctx, request_helpers=_helpers_on_queue(ctx))
    helper_name = f"{socket.gethostname()}:{os.getpid()}"
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=libpq_url(settings.resolved_database_url())
        )
    )

    @app.task(name=RUN_BATCH, queue=QUEUE, retry=_RETRY, pass_context=True)
    async def run_batch_job(context: JobContext, batch_id: str) -> None:
        if await wait_for_turn(ctx, batch_id, context.job.id):
            return
        await run_batch(ctx, batch_id)

    # No retry: a helper that fails leaves its chunks to the batch's own job.
    @app.task(name=HELP_BATCH, queue=QUEUE)
    async def help_batch_job(batch_id: str) -> None:
        await help_batch(ctx, batch_id, helper_name)

    @app.task(name=DELETE_BATCH, queue=QUEUE, retry=_RETRY)
    async def delete_batch_job(batch_id: str) -> None:
        await delete_batch_data(ctx, batch_id)

    # No lock on the sweep: a sweep job of a dead worker would hold it forever. Two sweeps at
    # once are harmless (a retry that lost the race is skipped; an extra batch job is a no-op).
    @app.periodic(cron=f"* * * * * */{settings.queue_sweep_seconds}")
    @app.task(name=SWEEP, queue=QUEUE)
    async def sweep(timestamp: int) -> None:
        retried = await retry_stalled_jobs(app, settings.queue_stalled_seconds)
        async with ctx.store.begin() as conn:
            queued = await sweep_orphans(conn)
        await expire_batches(ctx, _queue_delete)
        if retried or queued:
            logger.warning("sweep: %d stalled job(s) retried, %d batch(es) queued", retried, queued)

    return app


async def wait_for_turn(ctx: PipelineContext, batch_id: str, job_id: int | None) -> bool:
    """Whether the batch waits: its owner already runs ``user_concurrent_batches`` batches.

    Its job is then queued again a heartbeat later, behind other users' batches (see
    defer_job), and this one ends. Only a batch that has not started waits: one under way
    (resumed after a crash, cancelling) goes on. Of two of a user's jobs that start at once,
    the later queued waits, so they do not both step back.
    """
    async with ctx.store.begin() as conn:
        try:
            batch = await batch_rows.get_batch(conn, batch_id, owner_id=None)
        except BatchNotFound:
            return False
        if batch.status not in _NOT_STARTED:
            return False
        running = await owner_jobs(conn, batch_id, ("doing",), before=job_id)
        if running < ctx.settings.user_concurrent_batches:
            return False
        await defer_job(conn, RUN_BATCH, batch_id, delay=ctx.settings.queue_heartbeat_seconds)
    return True


async def _queue_delete(conn: AsyncConnection, batch_id: str) -> None:
    await defer_job(conn, DELETE_BATCH, batch_id)


def _helpers_on_queue(ctx: PipelineContext) -> Callable[[str, int], Awaitable[int]]:
    """How a batch's own job asks for helpers: jobs any worker takes from the queue."""

    async def request_helpers(batch_id: str, wanted: int) -> int:
        async with ctx.store.begin() as conn:
            return await defer_helpers(conn, batch_id, wanted)

    return request_helpers


async def retry_stalled_jobs(app: procrastinate.App, stalled_seconds: float) -> int:
    """Put the jobs of workers silent for ``stalled_seconds`` back in the queue; how many."""
    retried = 0
    stalled = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=stalled_seconds
    )
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ProcrastinateException:
            continue  # another sweep (or the worker itself, back to life) got there first
        logger.warning("job %s (%s, %s) of a dead worker retried", job.id, job.task_name, job.lock)
        retried += 1
    return retried


async def sweep_orphans(conn: AsyncConnection) -> int:
    """Queue a job for every batch that has work left but no job; how many were queued.

    An upload still in ``copying`` is skipped: the API process receiving its body owns it, and
    queues its job once the body is stored (a retry in ``copying`` is the pipeline's: queued).
    """
    # Batches are read before jobs: a job that ends in between makes its batch look orphaned
    # (a harmless extra job), never the other way round.
    unfinished = await batch_rows.list_unfinished_batches(conn)
    live = await batches_with_live_jobs(conn)
    queued = 0
    for batch in unfinished:
        if batch.id in live or (batch.copied_by_api and batch.status == BatchStatus.COPYING):
            continue
        task = DELETE_BATCH if batch.status == BatchStatus.DELETING else RUN_BATCH
        await defer_job(conn, task, batch.id)
        queued += 1
    return queued


async def run_worker(
    ctx: PipelineContext,
    *,
    stop: asyncio.Event | None = None,
    install_signal_handlers: bool = True,
    concurrency: int | None = None,
) -> None:
    """Work on the queue until SIGINT/SIGTERM (or ``stop`` is set)."""
    settings = ctx.settings
    app = build_app(ctx)
    async with app.open_async():
        worker = Worker(
            app=app,
            queues=[QUEUE],
            name=f"batchyard@{socket.gethostname()}",
            concurrency=concurrency or settings.worker_concurrency,
            install_signal_handlers=install_signal_handlers,
            update_heartbeat_interval=settings.queue_heartbeat_seconds,
            stalled_worker_timeout=settings.queue_stalled_seconds,
            shutdown_graceful_timeout=_SHUTDOWN_GRACE,
            fetch_job_polling_interval=settings.queue_heartbeat_seconds,
            abort_job_polling_interval=settings.queue_heartbeat_seconds,
            delete_jobs="successful",
        )
        # procrastinate's Worker.run/stop carry no annotations; their types are these.
        run = cast("Callable[[], Coroutine[Any, Any, None]]", worker.run)
        stop_worker = cast("Callable[[], None]", worker.stop)
        running = asyncio.create_task(run(), name="batchyard:procrastinate")
        if stop is None:
            await running
            return
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not running.done():
            stop_worker()
        with contextlib.suppress(asyncio.CancelledError):
            await running
