"""The embedded runner: the pipeline inside the server process, as asyncio tasks.

The batches table is the source of truth: on start every unfinished batch is picked up again,
and a batch is never run twice at once in this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.errors import BatchNotFound
from batchyard.domain.statuses import BatchStatus
from batchyard.pipeline.context import PipelineContext
from batchyard.pipeline.deletion import delete_batch_data
from batchyard.pipeline.run import run_batch
from batchyard.runner.base import share_gil_with_requests
from batchyard.runner.fairness import FairSlots
from batchyard.runner.retention import check_interval, expire_batches
from batchyard.store import batches as batch_rows

logger = logging.getLogger("batchyard.runner")


class EmbeddedRunner:
    """Runs at most ``concurrency`` batches at once, at most ``per_user`` of one user's, users
    taking turns (see FairSlots); deletes run beside them."""

    def __init__(self, ctx: PipelineContext, concurrency: int, per_user: int | None = None) -> None:
        self.ctx = ctx
        self._slots = FairSlots(concurrency, per_user or concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Resume every batch a previous run of the server left unfinished."""
        share_gil_with_requests()
        async with self.ctx.store.begin() as conn:
            active = await batch_rows.list_active_batch_ids(conn)
            deleting, _ = await batch_rows.list_batches(
                conn,
                owner_id=None,
                status=BatchStatus.DELETING,
                dataset=None,
                limit=10_000,
                cursor=None,
            )
        for batch_id in active:
            self.submit(batch_id)
        for batch in deleting:
            self.submit_delete(batch.id)
        if active:
            logger.info("resuming %d unfinished batch(es)", len(active))
        if self.ctx.settings.retention_days is not None:
            self._spawn("retention", self._expire_periodically(self.ctx.settings.retention_days))

    async def _expire_periodically(self, retention_days: float) -> None:
        """Delete batches past the retention period, looking every ``check_interval``."""
        while True:
            try:
                for batch_id in await expire_batches(self.ctx, self.enqueue_delete):
                    self.submit_delete(batch_id)
            except Exception:  # the metadata database away for a moment: look again later
                logger.warning("retention: could not look for expired batches", exc_info=True)
            await asyncio.sleep(check_interval(retention_days))

    async def enqueue(self, conn: AsyncConnection, batch_id: str) -> None:
        """Nothing to record: the batches table itself is this runner's queue (see start)."""

    async def enqueue_delete(self, conn: AsyncConnection, batch_id: str) -> None:
        """Nothing to record: a batch in ``deleting`` is found again on start."""

    async def abort(self, conn: AsyncConnection, batch_id: str) -> None:
        """Nothing to do: the pipeline reads the cancel between chunks, in this process."""

    def submit(self, batch_id: str) -> None:
        """Make sure the batch's pipeline is running (no-op if it already is)."""
        self._spawn(batch_id, self._run(batch_id))

    def submit_delete(self, batch_id: str) -> None:
        self._spawn(f"delete:{batch_id}", delete_batch_data(self.ctx, batch_id))

    def _spawn(self, name: str, work: Coroutine[object, object, None]) -> None:
        if name in self._tasks:
            work.close()
            return
        task = asyncio.create_task(work, name=f"batchyard:{name}")
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._done(name, t))

    def _done(self, name: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(name, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("task %s failed", name, exc_info=task.exception())

    async def _run(self, batch_id: str) -> None:
        async with self._slots.slot(await self._owner(batch_id)):
            await run_batch(self.ctx, batch_id)

    async def _owner(self, batch_id: str) -> str:
        """Whose turn the batch waits for ("" if it is gone: it ends at once when run)."""
        try:
            async with self.ctx.store.read() as conn:
                return (await batch_rows.get_batch(conn, batch_id, owner_id=None)).owner_id
        except BatchNotFound:
            return ""

    async def stop(self) -> None:
        """Stop running tasks; their batches resume from their status at the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
