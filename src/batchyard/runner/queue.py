"""The queue runner: batches run as procrastinate jobs, shared by any number of worker processes.

The API process only records jobs (in the same transaction as the batch change that needs them);
workers run them. When the API process also works (``serve`` without ``--no-worker``), it runs a
worker of its own beside the HTTP server. Either way it hears the transitions workers commit
(runner/batch_changes.py), so its status reads and event streams show them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.pipeline.context import PipelineContext
from batchyard.runner.base import share_gil_with_requests
from batchyard.runner.batch_changes import TransitionListener
from batchyard.runner.queue_schema import apply_queue_schema, libpq_url
from batchyard.runner.queue_sql import DELETE_BATCH, RUN_BATCH, abort_running_jobs, defer_job
from batchyard.runner.queue_tasks import run_worker, sweep_orphans

logger = logging.getLogger("batchyard.runner")


class QueueRunner:
    """Jobs in the metadata database's procrastinate tables; a worker here if ``work_here``."""

    def __init__(self, ctx: PipelineContext, *, work_here: bool) -> None:
        self.ctx = ctx
        self.work_here = work_here
        self._stop = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._transitions = TransitionListener(
            libpq_url(ctx.settings.resolved_database_url()),
            self._changed,
            self._gap,
        )

    async def start(self) -> None:
        """Create the queue's schema if needed, queue orphaned batches, start the local worker."""
        await apply_queue_schema(libpq_url(self.ctx.settings.resolved_database_url()))
        await self._transitions.start()
        async with self.ctx.store.begin() as conn:
            queued = await sweep_orphans(conn)
        if queued:
            logger.info("queued %d unfinished batch(es) that had no job", queued)
        if self.work_here:
            share_gil_with_requests()
            self._worker = asyncio.create_task(
                run_worker(self.ctx, stop=self._stop, install_signal_handlers=False),
                name="batchyard:worker",
            )

    async def stop(self) -> None:
        """Stop the local worker: running jobs are aborted and retried by whoever runs next."""
        self._stop.set()
        if self._worker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self._transitions.stop()

    def _changed(self, batch_id: str) -> None:
        """Another process (or this one) committed a transition of the batch: read it again
        (the status reads served, and the checks of the pipeline working on it here)."""
        self.ctx.store.reads.forget_batch(batch_id)
        self.ctx.store.changes.changed(batch_id)
        self.ctx.notify(batch_id)

    def _gap(self) -> None:
        """Announcements may have been missed: every batch may have changed."""
        self.ctx.store.reads.forget_all()
        self.ctx.store.changes.changed_all()

    async def enqueue(self, conn: AsyncConnection, batch_id: str) -> None:
        await defer_job(conn, RUN_BATCH, batch_id)

    async def enqueue_delete(self, conn: AsyncConnection, batch_id: str) -> None:
        await defer_job(conn, DELETE_BATCH, batch_id)

    async def abort(self, conn: AsyncConnection, batch_id: str) -> None:
        """Abort the running job, and queue the one that finishes the cancel after it."""
        await abort_running_jobs(conn, batch_id)
        await defer_job(conn, RUN_BATCH, batch_id)

    def submit(self, batch_id: str) -> None:
        """Nothing to do: the job committed with the caller's transaction."""

    def submit_delete(self, batch_id: str) -> None:
        """Nothing to do: the job committed with the caller's transaction."""
