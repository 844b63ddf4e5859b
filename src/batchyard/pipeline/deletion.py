"""Deleting a batch: its objects, its ledger rows, then its metadata (which makes it 404).

Metadata goes last so that a crash half-way leaves the batch visible in ``deleting`` and the
next start finishes the job, rather than a batch that looks gone while its files remain. Removing
objects is retried (a store can fail half-way through a prefix) and confirmed by a listing that
finds nothing; after the last attempt the batch stays ``deleting`` until the next try (the queue's
sweep, or the embedded runner's next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_exponential

from batchyard.domain.batches import LogLevel
from batchyard.pipeline import keys
from batchyard.pipeline.context import PipelineContext
from batchyard.storage.blobs import BlobStore
from batchyard.store import batches as batch_rows

logger = logging.getLogger("batchyard.pipeline")


#: Attempts at removing a batch's objects in one go (about two minutes of waits in all), and
#: the longest wait between two.
ATTEMPTS = 10
MAX_WAIT_SECONDS = 30.0


async def delete_batch_data(ctx: PipelineContext, batch_id: str) -> None:
    """Remove the batch's objects, its ledger rows, then its metadata (from then on: 404)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential(multiplier=0.5, max=MAX_WAIT_SECONDS),
        before_sleep=_log_retry(ctx, batch_id),
        reraise=True,
    )
    removed: int = await retrying(_empty_prefix, ctx.blobs, keys.batch_prefix(batch_id))
    await asyncio.to_thread(ctx.target.forget_batch, batch_id)
    async with ctx.store.begin() as conn:
        await batch_rows.delete_batch_rows(conn, batch_id)
    ctx.notify(batch_id)
    logger.info("batch %s deleted (%d objects removed)", batch_id, removed)


async def _empty_prefix(blobs: BlobStore, prefix: str) -> int:
    """Delete until a listing finds nothing left: a pass that stopped half-way simply goes on."""
    removed = 0
    while count := await blobs.delete_prefix(prefix):
        removed += count
    return removed


def _log_retry(ctx: PipelineContext, batch_id: str) -> Callable[[RetryCallState], Awaitable[None]]:
    async def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = str(error) or type(error).__name__
        message = (
            f"Removing the batch's files failed (attempt {state.attempt_number} of {ATTEMPTS}): "
            f"{reason}; retrying"
        )
        logger.warning("batch %s: %s", batch_id, message)
        with contextlib.suppress(Exception):  # the log is a courtesy; the retry is what matters
            async with ctx.store.begin() as conn:
                await batch_rows.append_log(conn, batch_id, LogLevel.WARNING, message)

    return before_sleep
